/* bench_nats.c — mqbench-nats: the NATS JetStream side of tools/bench/compare.sh, with the
 * flags and the RESULT line of mqbench.
 *
 *   mqbench-nats produce [-H host] -p port [--stream S] [--subject X] [--threads N]
 *                [--clients C] [--size B] [--mode async|sync] [--window W]
 *                [--duration S | --count N]
 *   mqbench-nats consume [-H host] -p port [--stream S] [--subject X] [--batch K]
 *                [--ack all|each|none] [--duration S | --count N]
 *
 * The stream (file storage, one subject) is created when missing. produce: N threads share C
 * connections round-robin; async uses js_PublishAsync with at most W unacknowledged publishes
 * per connection (the library's MaxPending), sync uses js_Publish (one call in flight per
 * thread). Latency: call to ack (async: the send time travels in the body's first 8 bytes and
 * the ack handler, which runs on one thread per connection, records it). consume: a durable
 * pull consumer fetching K at a time (natsSubscription_Fetch), acking the last of each batch
 * (AckAll policy) by default; latency per fetch. Exit status 0 / 1 (errors) / 2 (usage).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "tools/bench/bench_util.h"

static struct bench_peer_opts opt = {"127.0.0.1", 4222, 1, 1000, 100, 5, 3, 0};
static struct { /* NATS's own */
    const char *stream, *subject, *ack;
    int clients, window, async;
} nopt = {"MQBENCH", "mqbench.data", "all", 1, 4096, 1};

struct conn {
    natsConnection *nc;
    jsCtx *js;
    struct bench_slot *cb_slot; /* written by this connection's ack handler only */
};

struct worker {
    struct bench_run *run;
    struct bench_slot *slot;
    struct conn *c;
    char *body;
};

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct conn *c = closure;
    uint64_t t0 = 0;
    if (natsMsg_GetDataLength(msg) >= (int)sizeof(t0))
        memcpy(&t0, natsMsg_GetData(msg), sizeof(t0));
    if (pa && !pae) {
        bench_hist_add(&c->cb_slot->hist, bench_now_ns() - t0);
        bench_inc(&c->cb_slot->msgs, 1);
        bench_inc(&c->cb_slot->bytes, (uint64_t)natsMsg_GetDataLength(msg));
    } else {
        bench_inc(&c->cb_slot->errors, 1);
    }
    natsMsg_Destroy(msg);
}

static void *produce_main(void *arg)
{
    struct worker *w = arg;
    natsStatus last = NATS_OK;
    while (bench_claim(w->run, 1) > 0) {
        uint64_t t0 = bench_now_ns();
        if (opt.size >= sizeof(t0))
            memcpy(w->body, &t0, sizeof(t0));
        natsStatus s;
        if (nopt.async) {
            s = js_PublishAsync(w->c->js, nopt.subject, w->body, (int)opt.size, NULL);
        } else {
            jsPubAck *pa = NULL;
            jsErrCode jerr = 0;
            s = js_Publish(&pa, w->c->js, nopt.subject, w->body, (int)opt.size, NULL, &jerr);
            jsPubAck_Destroy(pa);
            if (s == NATS_OK) {
                bench_hist_add(&w->slot->hist, bench_now_ns() - t0);
                bench_inc(&w->slot->msgs, 1);
                bench_inc(&w->slot->bytes, opt.size);
            }
        }
        if (s != NATS_OK) {
            bench_inc(&w->slot->errors, 1);
            if (s != last)
                fprintf(stderr, "mqbench-nats: publish: %s\n", natsStatus_GetText(s));
            last = s;
        }
    }
    if (nopt.async) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 30000;
        if (js_PublishAsyncComplete(w->c->js, &po) != NATS_OK)
            fprintf(stderr, "mqbench-nats: acks still pending after 30 s\n");
    }
    bench_worker_done(w->run);
    return NULL;
}

static void *consume_main(void *arg)
{
    struct worker *w = arg;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = !strcmp(nopt.ack, "none")   ? js_AckNone
                          : !strcmp(nopt.ack, "each") ? js_AckExplicit
                                                      : js_AckAll;
    so.Config.MaxAckPending = -1;
    natsStatus s = js_PullSubscribe(&sub, w->c->js, nopt.subject, "mqbench", NULL, &so, &jerr);
    uint64_t seen = 0;
    while (s == NATS_OK && !atomic_load_explicit(&w->run->stop, memory_order_relaxed)) {
        natsMsgList list = {0};
        uint64_t t0 = bench_now_ns();
        s = natsSubscription_Fetch(&list, sub, opt.batch, 1000, &jerr);
        uint64_t t1 = bench_now_ns();
        if (s == NATS_TIMEOUT) {
            s = NATS_OK;
            if ((double)(t1 - (seen ? seen : w->run->t0_ns)) / 1e9 > opt.idle_s)
                break;
            continue;
        }
        if (s != NATS_OK)
            break;
        uint64_t bytes = 0;
        for (int i = 0; i < list.Count; i++) {
            bytes += (uint64_t)natsMsg_GetDataLength(list.Msgs[i]);
            if (so.Config.AckPolicy == js_AckExplicit ||
                (so.Config.AckPolicy == js_AckAll && i + 1 == list.Count))
                natsMsg_Ack(list.Msgs[i], NULL);
        }
        bench_hist_add(&w->slot->hist, t1 - t0);
        bench_mark(w->run, w->slot, t1);
        bench_inc(&w->slot->msgs, (uint64_t)list.Count);
        bench_inc(&w->slot->bytes, bytes);
        seen = t1;
        int enough = bench_consumed(w->run, (uint64_t)list.Count);
        natsMsgList_Destroy(&list);
        if (enough)
            break;
    }
    if (s != NATS_OK) {
        fprintf(stderr, "mqbench-nats: consume: %s (%d)\n", natsStatus_GetText(s), (int)jerr);
        bench_inc(&w->slot->errors, 1);
    }
    natsSubscription_Destroy(sub);
    bench_worker_done(w->run);
    return NULL;
}

/* Connects c, with a JetStream context whose acks land in cb_slot. */
static natsStatus conn_open(struct conn *c, struct bench_slot *cb_slot)
{
    char url[128];
    snprintf(url, sizeof(url), "nats://%s:%d", opt.host, opt.port);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = nopt.window;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = c;
    jo.PublishAsync.StallWait = 30000;
    c->cb_slot = cb_slot;
    natsStatus s = natsConnection_ConnectTo(&c->nc, url);
    return s != NATS_OK ? s : natsConnection_JetStream(&c->js, c->nc, &jo);
}

/* Creates the stream (file storage) unless it exists. */
static natsStatus ensure_stream(jsCtx *js)
{
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[] = {nopt.subject};
    jsStreamConfig_Init(&sc);
    sc.Name = nopt.stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    natsStatus s = js_AddStream(&si, js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    return s != NATS_OK && jerr == JSStreamNameExistErr ? NATS_OK : s;
}

static const char usage_text[] =
    "usage: mqbench-nats produce|consume [-H host] -p port [options]\n"
    "      --stream S       stream name (default MQBENCH; file storage, created when missing)\n"
    "      --subject X      subject (default mqbench.data)\n"
    "  -c, --threads N      produce: publishing threads (default 1)\n"
    "      --clients C      produce: connections the threads share (default 1)\n"
    "  -s, --size B         body bytes (default 100; >= 8 carries the send time)\n"
    "  -m, --mode M         produce: async (js_PublishAsync, default) | sync (js_Publish)\n"
    "  -w, --window W       async: unacknowledged publishes per connection (default 4096)\n"
    "  -b, --batch K        consume: messages per fetch (default 1000)\n"
    "      --ack A          consume: all (ack the last of each fetch, default) | each | none\n"
    "  -d, --duration S     seconds (default 5)\n"
    "  -N, --count N        stop after N messages (\"1m\")\n"
    "      --idle S         consume: stop after S seconds without messages (default 3)\n"
    "Last stdout line: RESULT tps=... mbps=... p50_us=... p99_us=... errors=...\n";

enum { O_STREAM = BENCH_OPT_IDLE + 1, O_SUBJECT, O_CLIENTS, O_ACK };

static int parse(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"stream", required_argument, NULL, O_STREAM},
        {"subject", required_argument, NULL, O_SUBJECT},
        {"threads", required_argument, NULL, 'c'},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"size", required_argument, NULL, 's'},
        {"mode", required_argument, NULL, 'm'},
        {"window", required_argument, NULL, 'w'},
        {"batch", required_argument, NULL, 'b'},
        {"ack", required_argument, NULL, O_ACK},
        {"duration", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'N'},
        {"idle", required_argument, NULL, BENCH_OPT_IDLE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "H:p:c:s:m:w:b:d:N:h", lo, NULL)) != -1) {
        int64_t v = bench_peer_opt(&opt, c, optarg, "mqbench-nats");
        if (v < 0)
            return -1;
        if (v > 0)
            continue;
        v = 1;
        switch (c) {
        case O_STREAM:
            nopt.stream = optarg;
            break;
        case O_SUBJECT:
            nopt.subject = optarg;
            break;
        case O_ACK:
            nopt.ack = optarg;
            v = strcmp(optarg, "all") && strcmp(optarg, "each") && strcmp(optarg, "none") ? -1 : 1;
            break;
        case 'm':
            nopt.async = !strcmp(optarg, "async");
            v = nopt.async || !strcmp(optarg, "sync") ? 1 : -1;
            break;
        case O_CLIENTS:
            v = nopt.clients = (int)bench_parse_count(optarg);
            break;
        case 'w':
            v = nopt.window = (int)bench_parse_count(optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            return -1;
        }
        if (v <= 0 || v > (1 << 30)) {
            fprintf(stderr, "mqbench-nats: bad value: %s\n", optarg);
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
    int nt = produce ? opt.threads : 1, nc = produce && nopt.clients < nt ? nopt.clients : 1;
    struct worker *ws = calloc((size_t)nt, sizeof(*ws));
    struct conn *cs = calloc((size_t)nc, sizeof(*cs));
    struct bench_run run;
    memset(&run, 0, sizeof(run));
    if (nats_Open(-1) != NATS_OK || !ws || !cs ||
        bench_run_init(&run, produce ? "nats produce" : "nats consume", (size_t)(nt + nc), nt))
        goto out;
    for (int i = 0; i < nc; i++) {
        natsStatus s = conn_open(&cs[i], &run.slots[nt + i]);
        if (s == NATS_OK && i == 0)
            s = ensure_stream(cs[i].js);
        if (s != NATS_OK) {
            fprintf(stderr, "mqbench-nats: %s:%d: %s\n", opt.host, opt.port, natsStatus_GetText(s));
            goto out;
        }
    }
    for (int i = 0; i < nt; i++) {
        ws[i].body = malloc(opt.size);
        if (!ws[i].body)
            goto out;
        memset(ws[i].body, 'x', opt.size);
        ws[i].run = &run;
        ws[i].slot = &run.slots[i];
        ws[i].c = &cs[i % nc];
    }
    run.count = (uint64_t)opt.count;
    run.duration_s = opt.duration_s;
    run.show_latency = 1;
    run.clock_from_first = !produce;
    started = bench_run_workers(&run, nt, produce ? produce_main : consume_main, ws, sizeof(*ws));
    char extra[160];
    if (produce)
        snprintf(extra, sizeof(extra), "mode=%s threads=%d clients=%d window=%d size=%zu",
                 nopt.async ? "async" : "sync", nt, nc, nopt.window, opt.size);
    else
        snprintf(extra, sizeof(extra), "batch=%d ack=%s", opt.batch, nopt.ack);
    status = started == nt && bench_result(&run, extra) == 0 ? 0 : 1;
out:
    for (int i = 0; cs && i < nc; i++) {
        jsCtx_Destroy(cs[i].js);
        natsConnection_Destroy(cs[i].nc);
    }
    for (int i = 0; ws && i < nt; i++)
        free(ws[i].body);
    free(cs);
    free(ws);
    bench_run_destroy(&run);
    nats_Close();
    return status;
}
