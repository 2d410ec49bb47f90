/* bench_util.c — histogram, counters, monitor, RESULT line and the loopback TCP round trip
 * shared by the load generators (see bench_util.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tools/bench/bench_util.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- histogram ---- */

static unsigned bucket_of(uint64_t v)
{
    if (v < BENCH_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= BENCH_SUB_BITS */
    unsigned shift = e - BENCH_SUB_BITS;
    return (shift + 1) * BENCH_SUB + (unsigned)((v >> shift) & (BENCH_SUB - 1));
}

/* The middle of a bucket's value range, in ns. */
static double bucket_mid(unsigned i)
{
    if (i < BENCH_SUB)
        return i;
    unsigned shift = i / BENCH_SUB - 1;
    double lo = (double)((uint64_t)(BENCH_SUB + i % BENCH_SUB) << shift);
    return lo + (double)((uint64_t)1 << shift) / 2.0;
}

void bench_hist_add(struct bench_hist *h, uint64_t ns)
{
    bench_inc(&h->b[bucket_of(ns)], 1);
}

void bench_snap_add(struct bench_snap *s, const struct bench_hist *h)
{
    for (unsigned i = 0; i < BENCH_BUCKETS; i++) {
        uint64_t c = atomic_load_explicit(&h->b[i], memory_order_relaxed);
        s->b[i] += c;
        s->n += c;
    }
}

double bench_snap_pct_us(const struct bench_snap *s, double p)
{
    if (s->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(p * (double)s->n);
    if (rank >= s->n)
        rank = s->n - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_BUCKETS; i++) {
        seen += s->b[i];
        if (seen > rank)
            return bucket_mid(i) / 1000.0;
    }
    return 0;
}

/* ---- runs ---- */

int bench_run_init(struct bench_run *r, const char *name, size_t nslots, int workers)
{
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->slots = aligned_alloc(64, nslots * sizeof(*r->slots));
    if (!r->slots)
        return -ENOMEM;
    memset(r->slots, 0, nslots * sizeof(*r->slots));
    r->nslots = nslots;
    atomic_store(&r->workers_left, workers);
    r->t0_ns = bench_now_ns();
    return 0;
}

void bench_run_destroy(struct bench_run *r)
{
    free(r->slots);
    r->slots = NULL;
}

uint64_t bench_claim(struct bench_run *r, uint64_t want)
{
    if (atomic_load_explicit(&r->stop, memory_order_relaxed))
        return 0;
    if (r->count == 0)
        return want;
    uint64_t got = atomic_fetch_add(&r->claimed, want);
    if (got >= r->count)
        return 0;
    return got + want > r->count ? r->count - got : want;
}

int bench_consumed(struct bench_run *r, uint64_t n)
{
    if (atomic_load_explicit(&r->stop, memory_order_relaxed))
        return 1;
    if (r->count == 0)
        return 0;
    if (atomic_fetch_add(&r->claimed, n) + n >= r->count) {
        atomic_store(&r->stop, 1);
        return 1;
    }
    return 0;
}

void bench_mark(struct bench_run *r, struct bench_slot *s, uint64_t now)
{
    if (atomic_load_explicit(&r->first_ns, memory_order_relaxed) == 0) {
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&r->first_ns, &zero, now);
    }
    atomic_store_explicit(&s->last_ns, now, memory_order_relaxed);
}

/* When the measured interval starts. */
static uint64_t start_ns(struct bench_run *r)
{
    uint64_t f = atomic_load(&r->first_ns);
    return r->clock_from_first && f ? f : r->t0_ns;
}

void bench_worker_done(struct bench_run *r)
{
    if (atomic_fetch_sub(&r->workers_left, 1) == 1)
        r->end_ns = bench_now_ns();
}

int bench_run_workers(struct bench_run *r, int n, void *(*fn)(void *), void *args, size_t stride)
{
    pthread_t *th = calloc((size_t)n, sizeof(*th));
    int started = 0;
    r->t0_ns = bench_now_ns();
    for (; th && started < n; started++) {
        if (pthread_create(&th[started], NULL, fn, (char *)args + (size_t)started * stride))
            break;
    }
    if (started < n) {
        atomic_store(&r->stop, 1);
        atomic_fetch_sub(&r->workers_left, n - started);
    }
    bench_monitor(r);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    return started;
}

struct totals {
    uint64_t msgs, bytes, errors;
};

static void sum_slots(const struct bench_run *r, struct totals *t, struct bench_snap *s)
{
    memset(t, 0, sizeof(*t));
    if (s)
        memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < r->nslots; i++) {
        const struct bench_slot *sl = &r->slots[i];
        t->msgs += atomic_load_explicit(&sl->msgs, memory_order_relaxed);
        t->bytes += atomic_load_explicit(&sl->bytes, memory_order_relaxed);
        t->errors += atomic_load_explicit(&sl->errors, memory_order_relaxed);
        if (s)
            bench_snap_add(s, &sl->hist);
    }
}

void bench_monitor(struct bench_run *r)
{
    /* static: two snapshots are 30 KiB, more than a worker-sized stack should carry */
    static struct bench_snap prev, cur, delta;
    struct totals pt = {0}, ct;
    memset(&prev, 0, sizeof(prev));
    uint64_t last = r->t0_ns, next = r->t0_ns + 1000000000u;
    while (atomic_load(&r->workers_left) > 0) {
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
        uint64_t now = bench_now_ns();
        if (r->count == 0 && r->duration_s > 0 && (double)(now - r->t0_ns) / 1e9 >= r->duration_s)
            atomic_store(&r->stop, 1);
        if (now < next)
            continue;
        next += 1000000000u;
        sum_slots(r, &ct, r->show_latency ? &cur : NULL);
        double dt = (double)(now - last) / 1e9;
        fprintf(stderr, "%s %5.1fs: %9.0f msgs/s %8.1f MB/s", r->name,
                (double)(now - r->t0_ns) / 1e9, (double)(ct.msgs - pt.msgs) / dt,
                (double)(ct.bytes - pt.bytes) / dt / 1e6);
        if (r->show_latency) {
            delta.n = cur.n - prev.n;
            for (unsigned i = 0; i < BENCH_BUCKETS; i++)
                delta.b[i] = cur.b[i] - prev.b[i];
            fprintf(stderr, "  p50 %8.1f us  p99 %8.1f us", bench_snap_pct_us(&delta, 0.50),
                    bench_snap_pct_us(&delta, 0.99));
            prev = cur;
        }
        fprintf(stderr, "  errors %llu\n", (unsigned long long)ct.errors);
        pt = ct;
        last = now;
    }
}

uint64_t bench_result(struct bench_run *r, const char *extra)
{
    static struct bench_snap s;
    struct totals t;
    sum_slots(r, &t, &s);
    uint64_t end = r->end_ns ? r->end_ns : bench_now_ns();
    if (r->clock_from_first && atomic_load(&r->first_ns)) {
        end = 0;
        for (size_t i = 0; i < r->nslots; i++) {
            uint64_t l = atomic_load_explicit(&r->slots[i].last_ns, memory_order_relaxed);
            end = l > end ? l : end;
        }
    }
    double secs = (double)(end - start_ns(r)) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    double cpu = bench_cpu_s(); /* every thread of the process, set-up included */
    printf("RESULT tps=%.0f mbps=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%llu "
           "msgs=%llu secs=%.2f client_cpu_s=%.2f%s%s\n",
           (double)t.msgs / secs, (double)t.bytes / secs / 1e6, bench_snap_pct_us(&s, 0.50),
           bench_snap_pct_us(&s, 0.99), bench_snap_pct_us(&s, 0.999), (unsigned long long)t.errors,
           (unsigned long long)t.msgs, secs, cpu, extra && *extra ? " " : "", extra ? extra : "");
    fflush(stdout);
    return t.errors;
}

/* ---- loopback TCP round trip ---- */

static int full_io(int fd, char *p, size_t n, int wr)
{
    for (size_t done = 0; done < n;) {
        ssize_t k =
            wr ? send(fd, p + done, n - done, MSG_NOSIGNAL) : recv(fd, p + done, n - done, 0);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

struct echo_arg {
    int lfd;
    size_t size;
};

static void *echo_main(void *arg)
{
    struct echo_arg *a = arg;
    int fd = accept(a->lfd, NULL, NULL), one = 1;
    char *buf = malloc(a->size);
    if (fd >= 0 && buf) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        while (full_io(fd, buf, a->size, 0) == 0 && full_io(fd, buf, a->size, 1) == 0)
            ;
    }
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

int bench_tcp_rtt(double seconds, size_t size, struct bench_snap *out)
{
    int rc = 0, one = 1, cfd = -1;
    char *buf = NULL;
    struct bench_hist *h = NULL;
    pthread_t echo;
    int started = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    struct echo_arg ea = {socket(AF_INET, SOCK_STREAM, 0), size ? size : 1};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ea.lfd < 0 || bind(ea.lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(ea.lfd, 1) ||
        getsockname(ea.lfd, (struct sockaddr *)&sa, &sl)) {
        rc = -errno;
        goto out;
    }
    if ((rc = -pthread_create(&echo, NULL, echo_main, &ea)) != 0)
        goto out;
    started = 1;
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa))) {
        rc = -errno;
        goto out;
    }
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    buf = calloc(1, ea.size);
    h = calloc(1, sizeof(*h));
    if (!buf || !h) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t t0 = bench_now_ns(), now = t0;
    while ((double)(now - t0) / 1e9 < seconds) {
        if (full_io(cfd, buf, ea.size, 1) || full_io(cfd, buf, ea.size, 0)) {
            rc = -EIO;
            goto out;
        }
        uint64_t t = bench_now_ns();
        bench_hist_add(h, t - now);
        now = t;
    }
    memset(out, 0, sizeof(*out));
    bench_snap_add(out, h);
out:
    if (cfd >= 0)
        close(cfd);
    if (started) {
        shutdown(ea.lfd, SHUT_RDWR); /* unblocks an accept that never got its connection */
        pthread_join(echo, NULL);
    }
    if (ea.lfd >= 0)
        close(ea.lfd);
    free(buf);
    free(h);
    return rc;
}

/* ---- option values ---- */

double bench_parse_secs(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        return v / 1000;
    if (*end == 0 || strcmp(end, "s") == 0)
        return v;
    if (strcmp(end, "m") == 0)
        return v * 60;
    return -1;
}

int64_t bench_parse_count(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return -1;
    switch (*end) {
    case 0:
        break;
    case 'k':
    case 'K':
        v *= 1e3;
        end++;
        break;
    case 'm':
    case 'M':
        v *= 1e6;
        end++;
        break;
    default:
        return -1;
    }
    return *end ? -1 : (int64_t)v;
}

int bench_peer_opt(struct bench_peer_opts *o, int c, const char *arg, const char *prog)
{
    int64_t v;
    switch (c) {
    case 'H':
        o->host = arg;
        return 1;
    case 'p':
        v = o->port = (int)bench_parse_count(arg);
        break;
    case 'c':
        v = o->threads = (int)bench_parse_count(arg);
        break;
    case 's':
        v = (int64_t)(o->size = (size_t)bench_parse_count(arg));
        break;
    case 'b':
        v = o->batch = (int)bench_parse_count(arg);
        break;
    case 'N':
        v = o->count = bench_parse_count(arg);
        break;
    case 'd':
        v = (o->duration_s = bench_parse_secs(arg)) > 0 ? 1 : -1;
        break;
    case BENCH_OPT_IDLE:
        v = (o->idle_s = bench_parse_secs(arg)) > 0 ? 1 : -1;
        break;
    default:
        return 0;
    }
    if (v <= 0 || v > (1 << 30)) {
        fprintf(stderr, "%s: bad value: %s\n", prog, arg);
        return -1;
    }
    return 1;
}

int bench_peer_mode(int argc, char **argv, const char *usage, int *exit_code)
{
    if (argc >= 2 && !strcmp(argv[1], "produce"))
        return 1;
    if (argc >= 2 && !strcmp(argv[1], "consume"))
        return 0;
    int help = argc >= 2 && !strcmp(argv[1], "--help");
    fputs(usage, help ? stdout : stderr);
    *exit_code = help ? 0 : 2;
    return -1;
}

double bench_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
