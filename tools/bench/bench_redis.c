/* bench_redis.c — mqbench-redis: the Redis Streams side of tools/bench/compare.sh, with the
 * flags and the RESULT line of mqbench.
 *
 *   mqbench-redis produce [-H host] -p port [-k stream] [--threads N] [--size B]
 *                 [--pipeline D] [--duration S | --count N]
 *   mqbench-redis consume [-H host] -p port [-k stream] [--batch C] [--duration S | --count N]
 *
 * produce: N threads, one connection each, every thread writing D `XADD stream * f <body>`
 * commands at once (hiredis's output buffer, one write) and then reading the D replies
 * (--pipeline 1 is one call at a time per connection, the single-send shape). Latency: from
 * the pipeline's write to each reply. consume: one connection reading the stream from its
 * start with `XREAD COUNT C STREAMS stream <last id>` (no consumer group, nothing acked);
 * latency per XREAD. Exit status 0 / 1 (errors) / 2 (usage).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "tools/bench/bench_util.h"

static struct bench_peer_opts opt = {"127.0.0.1", 6379, 1, 1000, 100, 5, 3, 0};
static const char *opt_key = "mqbench";
static int opt_pipeline = 64;

struct worker {
    struct bench_run *run;
    struct bench_slot *slot;
    redisContext *ctx;
    char *body;
};

static void *produce_main(void *arg)
{
    struct worker *w = arg;
    uint64_t n;
    while ((n = bench_claim(w->run, (uint64_t)opt_pipeline)) > 0) {
        uint64_t t0 = bench_now_ns();
        for (uint64_t i = 0; i < n; i++)
            redisAppendCommand(w->ctx, "XADD %s * f %b", opt_key, w->body, opt.size);
        for (uint64_t i = 0; i < n; i++) {
            redisReply *r = NULL;
            if (redisGetReply(w->ctx, (void **)&r) != REDIS_OK) {
                fprintf(stderr, "mqbench-redis: %s\n", w->ctx->errstr);
                bench_inc(&w->slot->errors, n - i);
                goto out;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                bench_inc(&w->slot->errors, 1);
            } else {
                bench_hist_add(&w->slot->hist, bench_now_ns() - t0);
                bench_inc(&w->slot->msgs, 1);
                bench_inc(&w->slot->bytes, opt.size);
            }
            freeReplyObject(r);
        }
    }
out:
    bench_worker_done(w->run);
    return NULL;
}

/* Counts the entries of one XREAD reply ([[key, [[id, [f, v]], ...]]]) and remembers the last
 * id. Returns how many entries, or -1 on an unexpected shape. */
static long read_entries(const redisReply *r, struct bench_slot *s, char *last, size_t cap)
{
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2)
        return -1;
    const redisReply *es = r->element[0]->element[1];
    uint64_t bytes = 0;
    for (size_t i = 0; i < es->elements; i++) {
        const redisReply *e = es->element[i];
        if (e->elements != 2 || e->element[1]->elements < 2)
            return -1;
        bytes += e->element[1]->element[1]->len;
        if (i + 1 == es->elements)
            snprintf(last, cap, "%s", e->element[0]->str);
    }
    bench_inc(&s->msgs, es->elements);
    bench_inc(&s->bytes, bytes);
    return (long)es->elements;
}

static void *consume_main(void *arg)
{
    struct worker *w = arg;
    char last[64] = "0-0";
    uint64_t seen = 0;
    for (;;) {
        uint64_t t0 = bench_now_ns();
        redisReply *r =
            redisCommand(w->ctx, "XREAD COUNT %d STREAMS %s %s", opt.batch, opt_key, last);
        if (!r) {
            fprintf(stderr, "mqbench-redis: %s\n", w->ctx->errstr);
            bench_inc(&w->slot->errors, 1);
            break;
        }
        uint64_t t1 = bench_now_ns();
        long n = read_entries(r, w->slot, last, sizeof(last));
        freeReplyObject(r);
        if (n < 0) {
            fprintf(stderr, "mqbench-redis: unexpected XREAD reply\n");
            bench_inc(&w->slot->errors, 1);
            break;
        }
        bench_hist_add(&w->slot->hist, t1 - t0);
        if (n > 0) {
            bench_mark(w->run, w->slot, t1);
            seen = t1;
            if (bench_consumed(w->run, (uint64_t)n))
                break;
        } else if ((double)(t1 - (seen ? seen : w->run->t0_ns)) / 1e9 > opt.idle_s) {
            break;
        }
        if (atomic_load_explicit(&w->run->stop, memory_order_relaxed))
            break;
    }
    bench_worker_done(w->run);
    return NULL;
}

static const char usage_text[] =
    "usage: mqbench-redis produce|consume [-H host] -p port [-k stream] [options]\n"
    "  -c, --threads N     produce: connections, one thread each (default 1)\n"
    "  -s, --size B        body bytes (default 100)\n"
    "  -P, --pipeline D    produce: XADDs written at once per connection (default 64)\n"
    "  -b, --batch C       consume: XREAD COUNT (default 1000)\n"
    "  -d, --duration S    seconds (default 5)\n"
    "  -N, --count N       stop after N messages (\"1m\")\n"
    "      --idle S        consume: stop after S seconds without entries (default 3)\n"
    "Last stdout line: RESULT tps=... mbps=... p50_us=... p99_us=... errors=...\n";

static int parse(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", required_argument, NULL, 'H'},  {"port", required_argument, NULL, 'p'},
        {"key", required_argument, NULL, 'k'},   {"threads", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},  {"pipeline", required_argument, NULL, 'P'},
        {"batch", required_argument, NULL, 'b'}, {"duration", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'N'}, {"idle", required_argument, NULL, BENCH_OPT_IDLE},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "H:p:k:c:s:P:b:d:N:h", lo, NULL)) != -1) {
        int rc = bench_peer_opt(&opt, c, optarg, "mqbench-redis");
        if (rc < 0)
            return -1;
        if (rc > 0)
            continue;
        if (c == 'k') {
            opt_key = optarg;
        } else if (c == 'P') {
            opt_pipeline = (int)bench_parse_count(optarg);
            if (opt_pipeline <= 0 || opt_pipeline > (1 << 30)) {
                fprintf(stderr, "mqbench-redis: bad value: %s\n", optarg);
                return -1;
            }
        } else if (c == 'h') {
            fputs(usage_text, stdout);
            exit(0);
        } else {
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
    int status = 1, produce = bench_peer_mode(argc, argv, usage_text, &status);
    if (produce < 0)
        return status;
    int started = 0;
    if (parse(argc - 1, argv + 1)) {
        fputs(usage_text, stderr);
        return 2;
    }
    int n = produce ? opt.threads : 1;
    struct worker *ws = calloc((size_t)n, sizeof(*ws));
    struct bench_run run;
    memset(&run, 0, sizeof(run));
    if (!ws || bench_run_init(&run, produce ? "redis produce" : "redis consume", (size_t)n, n))
        goto out;
    for (int i = 0; i < n; i++) {
        ws[i].ctx = redisConnect(opt.host, opt.port);
        if (!ws[i].ctx || ws[i].ctx->err) {
            fprintf(stderr, "mqbench-redis: connect %s:%d: %s\n", opt.host, opt.port,
                    ws[i].ctx ? ws[i].ctx->errstr : "out of memory");
            goto out;
        }
        ws[i].body = malloc(opt.size);
        if (!ws[i].body)
            goto out;
        memset(ws[i].body, 'x', opt.size);
        ws[i].run = &run;
        ws[i].slot = &run.slots[i];
    }
    run.count = (uint64_t)opt.count;
    run.duration_s = opt.duration_s;
    run.show_latency = 1;
    run.clock_from_first = !produce;
    started = bench_run_workers(&run, n, produce ? produce_main : consume_main, ws, sizeof(*ws));
    char extra[128];
    if (produce)
        snprintf(extra, sizeof(extra), "threads=%d pipeline=%d size=%zu", n, opt_pipeline,
                 opt.size);
    else
        snprintf(extra, sizeof(extra), "batch=%d", opt.batch);
    status = started == n && bench_result(&run, extra) == 0 ? 0 : 1;
out:
    for (int i = 0; ws && i < n; i++) {
        if (ws[i].ctx)
            redisFree(ws[i].ctx);
        free(ws[i].body);
    }
    free(ws);
    bench_run_destroy(&run);
    return status;
}
