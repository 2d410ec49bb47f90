/* example.h — the command line every example shares, so each example file shows only the
 * client calls: -n namesrv -t topic -c count, plus the few options some examples use.
 *
 *   -n ADDR   NameServers (default $NAMESRV_ADDR, else 127.0.0.1:9876)
 *   -t TOPIC  topic (default TopicTest)
 *   -c N      messages (default 10; consumer: 0 = until SIGTERM or idle)
 *   -g GROUP  producer or consumer group
 *   -T TAG    tag of sent messages / -e EXPR tag expression of a subscription
 *   -q SQL    consumer: subscribe with an SQL92 expression over properties instead of -e
 *   -s BYTES  body size (bodies are padded with a fixed pattern, see example_body)
 *   -z ALGO   compression of bodies over 4 KiB: zstd (default), zlib or none
 *   -i MS     pause between sends
 *   -b N      batch size / -k N order ids / -r MS rebalance period / -w MS idle exit
 *   -v        consumer: print the owned queues whenever they change
 * Header-only (static inline functions) so every example stays one file plus this one. */
#ifndef MQ_EXAMPLE_H
#define MQ_EXAMPLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/mqclient.h"

struct example_args {
    const char *namesrv, *topic, *group, *tag, *expr, *sql;
    long count, size, interval_ms, batch, orders, rebalance_ms, idle_ms;
    long retry_level; /* -L: consumers retry each first delivery later at this level (-1: no) */
    int compress_type;
    size_t compress_over;
    int verbose;
};

static inline void example_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-n namesrv] [-t topic] [-c count] [-g group] [-T tag] [-e expr] [-q sql]\n"
            "          [-s bodyBytes] [-z zstd|zlib|none] [-i intervalMs] [-b batch] [-k orders]\n"
            "          [-r rebalanceMs] [-w idleMs] [-L retryLevel] [-v]\n",
            prog);
}

/* Parses argv into a; exits 2 on a usage error. */
static inline void example_args(int argc, char **argv, struct example_args *a)
{
    memset(a, 0, sizeof(*a));
    a->namesrv = getenv("NAMESRV_ADDR") ? getenv("NAMESRV_ADDR") : "127.0.0.1:9876";
    a->topic = "TopicTest";
    a->expr = "*";
    a->count = 10;
    a->batch = 10;
    a->orders = 4;
    a->compress_over = MQC_COMPRESS_OVER_DEFAULT; /* -z none: 0, never */
    a->retry_level = -1;
    int opt;
    while ((opt = getopt(argc, argv, "n:t:c:g:T:e:q:s:z:i:b:k:r:w:L:vh")) != -1) {
        switch (opt) {
        case 'n':
            a->namesrv = optarg;
            break;
        case 't':
            a->topic = optarg;
            break;
        case 'g':
            a->group = optarg;
            break;
        case 'T':
            a->tag = optarg;
            break;
        case 'e':
            a->expr = optarg;
            break;
        case 'c':
            a->count = atol(optarg);
            break;
        case 's':
            a->size = atol(optarg);
            break;
        case 'i':
            a->interval_ms = atol(optarg);
            break;
        case 'b':
            a->batch = atol(optarg);
            break;
        case 'k':
            a->orders = atol(optarg);
            break;
        case 'r':
            a->rebalance_ms = atol(optarg);
            break;
        case 'w':
            a->idle_ms = atol(optarg);
            break;
        case 'q':
            a->sql = optarg;
            break;
        case 'v':
            a->verbose = 1;
            break;
        case 'L':
            a->retry_level = atol(optarg);
            break;
        case 'z':
            if (strcmp(optarg, "zlib") == 0)
                a->compress_type = MQC_COMPRESS_ZLIB;
            else if (strcmp(optarg, "none") == 0)
                a->compress_over = 0;
            else if (strcmp(optarg, "zstd") != 0) {
                example_usage(argv[0]);
                exit(2);
            }
            break;
        default:
            example_usage(argv[0]);
            exit(opt == 'h' ? 0 : 2);
        }
    }
    if (a->count < 0 || a->batch <= 0 || a->orders <= 0) {
        example_usage(argv[0]);
        exit(2);
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per message, visible at once */
}

/* Body of message i: "<prefix>-<i>", padded to `size` bytes with a fixed pattern
 * ('a' + (j * 7) % 26 at position j): tests recompute it. Returns a malloc'd buffer. */
static inline char *example_body(const char *prefix, long i, long size, size_t *len)
{
    char head[128];
    int n = snprintf(head, sizeof(head), "%s-%ld", prefix, i);
    size_t total = size > n ? (size_t)size : (size_t)n;
    char *b = malloc(total + 1);
    if (!b)
        return NULL;
    memcpy(b, head, (size_t)n);
    for (size_t j = (size_t)n; j < total; j++)
        b[j] = (char)('a' + (j * 7) % 26);
    b[total] = '\0';
    *len = total;
    return b;
}

static inline void example_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0)
        ;
}

#endif
