/* mqbench.c — mqbench, the load generator of mqfs: the command line (one table of
 * subcommands, one of options) and the `rtt` subcommand (loopback TCP ping-pong, the floor that
 * latencies are read against). Producing and consuming live in produce.c and consume.c.
 *
 * Every subcommand prints live progress once a second on stderr and ends with one stdout line
 * `RESULT key=value ...`. Exit status: 0 when the run completed without errors, 1 when it
 * failed or counted errors, 2 on a usage error.
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench/bench_util.h"
#include "tools/mqbench/mqbench.h"

static const char usage_text[] =
    "usage: mqbench produce -n NAMESRV -t TOPIC [options]\n"
    "       mqbench consume -n NAMESRV -t TOPIC -g GROUP [--raw] [options]\n"
    "       mqbench rtt [--duration S] [--size BYTES]\n"
    "\n"
    "  -n, --namesrv ADDR    NameServer(s), \"host:port[;host:port]\"\n"
    "  -t, --topic NAME      topic (auto-created by the broker on first send)\n"
    "  -g, --group NAME      consumer group (consume), producer group (produce)\n"
    "  -c, --threads N       produce: concurrent callers; consume: consumers in the group, or\n"
    "                        pulling threads with --raw (default 1)\n"
    "      --clients C       produce: producer instances (one connection each) the callers\n"
    "                        share round-robin (default 1)\n"
    "  -s, --size BYTES      body size (default 100)\n"
    "  -b, --batch K         messages per mqc_send_batch (default 1: single sends); with\n"
    "                        --mode async, mqc_send_batch_async (-w batches in flight)\n"
    "  -m, --mode MODE       sync | async | oneway (default sync)\n"
    "  -d, --duration S      run for S seconds (\"10\", \"500ms\"; default 5)\n"
    "  -N, --count N         stop after N messages in total (\"2m\" = 2 000 000)\n"
    "  -q, --queues Q        sync single sends: spread over the first Q writable queues\n"
    "                        (default: every queue, the library's round robin)\n"
    "  -w, --window W        async: sends in flight per caller (default 1024)\n"
    "      --raw             consume: one mqc_pull loop per queue from offset 0, no group\n"
    "      --pull-batch K    consume: messages per pull (default 1024)\n"
    "      --idle S          consume: stop after S seconds without a message (default 3)\n"
    "      --timeout-ms MS   send timeout per attempt (default 3000)\n"
    "  -h, --help            this text\n"
    "\n"
    "Last stdout line: RESULT tps=... mbps=... p50_us=... p99_us=... p999_us=... errors=...\n"
    "Latency: produce = per call (per batch with -b; send to broker reply with async);\n"
    "consume --raw = per pull; rtt = per round trip.\n";

static int usage(int status)
{
    fputs(usage_text, status ? stderr : stdout);
    return status;
}

static int mb_rtt(const struct mb_opts *o)
{
    static struct bench_snap s;
    double secs = o->duration_s > 0 ? o->duration_s : 2;
    int rc = bench_tcp_rtt(secs, o->size, &s);
    if (rc) {
        fprintf(stderr, "mqbench rtt: %s\n", strerror(-rc));
        return 1;
    }
    printf("RESULT rtt_p50_us=%.1f rtt_p99_us=%.1f rtt_p999_us=%.1f round_trips=%llu "
           "rps=%.0f size=%zu\n",
           bench_snap_pct_us(&s, 0.5), bench_snap_pct_us(&s, 0.99), bench_snap_pct_us(&s, 0.999),
           (unsigned long long)s.n, (double)s.n / secs, o->size);
    return 0;
}

static const struct {
    const char *name;
    int (*run)(const struct mb_opts *o);
    int needs; /* 1: namesrv and topic; 2: and group */
} commands[] = {
    {"produce", mb_produce, 1},
    {"consume", mb_consume, 2},
    {"rtt", mb_rtt, 0},
};

enum { OPT_RAW = 256, OPT_PULL_BATCH, OPT_IDLE, OPT_CLIENTS, OPT_TIMEOUT };

static const struct option long_opts[] = {
    {"namesrv", required_argument, NULL, 'n'},
    {"topic", required_argument, NULL, 't'},
    {"group", required_argument, NULL, 'g'},
    {"threads", required_argument, NULL, 'c'},
    {"clients", required_argument, NULL, OPT_CLIENTS},
    {"size", required_argument, NULL, 's'},
    {"batch", required_argument, NULL, 'b'},
    {"mode", required_argument, NULL, 'm'},
    {"duration", required_argument, NULL, 'd'},
    {"count", required_argument, NULL, 'N'},
    {"queues", required_argument, NULL, 'q'},
    {"window", required_argument, NULL, 'w'},
    {"raw", no_argument, NULL, OPT_RAW},
    {"pull-batch", required_argument, NULL, OPT_PULL_BATCH},
    {"idle", required_argument, NULL, OPT_IDLE},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* A positive integer option in [1, max]; -1 when not. */
static long pos_int(const char *s, long max)
{
    int64_t v = bench_parse_count(s);
    return v >= 1 && v <= max ? (long)v : -1;
}

static int parse(int argc, char **argv, struct mb_opts *o)
{
    static const char *const modes[] = {"sync", "async", "oneway"};
    int c;
    long v = 0;
    while ((c = getopt_long(argc, argv, "n:t:g:c:s:b:m:d:N:q:w:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->namesrv = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 'c':
            v = o->threads = (int)pos_int(optarg, 4096);
            break;
        case OPT_CLIENTS:
            v = o->clients = (int)pos_int(optarg, 256);
            break;
        case 's':
            v = pos_int(optarg, 64 << 20), o->size = (size_t)v;
            break;
        case 'b':
            v = o->batch = (int)pos_int(optarg, 1 << 16);
            break;
        case 'w':
            v = o->window = (int)pos_int(optarg, 1 << 20);
            break;
        case 'q':
            v = o->queues = (int)pos_int(optarg, 1 << 16);
            break;
        case OPT_PULL_BATCH:
            v = o->pull_batch = (int)pos_int(optarg, 4096);
            break;
        case OPT_TIMEOUT:
            v = o->timeout_ms = (int)pos_int(optarg, 600000);
            break;
        case OPT_RAW:
            o->raw = 1;
            break;
        case 'N':
            v = (long)(o->count = bench_parse_count(optarg));
            break;
        case 'd':
            v = (o->duration_s = bench_parse_secs(optarg)) > 0 ? 1 : -1;
            break;
        case OPT_IDLE:
            v = (o->idle_s = bench_parse_secs(optarg)) > 0 ? 1 : -1;
            break;
        case 'm':
            v = -1;
            for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
                if (strcmp(optarg, modes[i]) == 0)
                    o->mode = (enum mb_mode)i, v = 1;
            break;
        case 'h':
            exit(usage(0));
        default:
            return -1;
        }
        if (v < 0) {
            fprintf(stderr, "mqbench: bad value for option %s: %s\n", argv[optind - 1], optarg);
            return -1;
        }
    }
    if (o->batch > 1 && o->mode == MB_ONEWAY) {
        fprintf(stderr, "mqbench: --batch needs --mode sync or async\n");
        return -1;
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
    /* Batches of up to 4 MiB are encoded and framed for every call: keep such blocks in the
     * heap instead of mapping (and faulting in) fresh memory for each one, as mqfs does. */
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    if (argc < 2)
        return usage(2);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return usage(0);
    struct mb_opts o = {
        .group = NULL,
        .threads = 1,
        .clients = 1,
        .size = 100,
        .batch = 1,
        .mode = MB_SYNC,
        .duration_s = 5,
        .window = 1024,
        .pull_batch = 1024,
        .idle_s = 3,
        .timeout_ms = 3000,
    };
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (parse(argc - 1, argv + 1, &o))
            return usage(2);
        if (commands[i].needs >= 1 && (!o.namesrv || !o.topic)) {
            fprintf(stderr, "mqbench %s: -n NAMESRV and -t TOPIC are required\n", argv[1]);
            return 2;
        }
        if (commands[i].needs >= 2 && !o.group) {
            fprintf(stderr, "mqbench %s: -g GROUP is required\n", argv[1]);
            return 2;
        }
        return commands[i].run(&o);
    }
    fprintf(stderr, "mqbench: unknown subcommand '%s'\n", argv[1]);
    return usage(2);
}
