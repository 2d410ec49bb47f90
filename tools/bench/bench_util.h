/* bench_util.h — what every load generator here shares (mqbench, mqbench-redis, mqbench-nats):
 * a fixed-size log-linear latency histogram, per-thread counters that a monitor reads once a
 * second for live progress, the stop rule (--duration or --count), the final `RESULT` line, and
 * the loopback TCP round trip that latencies are read against.
 *
 * Threads: each worker owns one struct bench_slot and is its only writer (relaxed atomic loads
 * and stores, no read-modify-write); the monitor (the main thread) only reads slots. Nothing
 * allocates per sample.
 */
#ifndef MQ_BENCH_UTIL_H
#define MQ_BENCH_UTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Log-linear buckets over nanoseconds: values below 2^BENCH_SUB_BITS get a bucket each; above,
 * every power of two is split into 2^BENCH_SUB_BITS equal buckets (relative error <= 1/32). */
#define BENCH_SUB_BITS 5
#define BENCH_SUB      (1u << BENCH_SUB_BITS)
#define BENCH_BUCKETS  ((64 - BENCH_SUB_BITS + 1) * BENCH_SUB)

/* One writer's histogram. */
struct bench_hist {
    _Atomic uint64_t b[BENCH_BUCKETS];
};

/* A reader's merged copy (the monitor's; also what bench_tcp_rtt fills). */
struct bench_snap {
    uint64_t b[BENCH_BUCKETS];
    uint64_t n;
};

void bench_hist_add(struct bench_hist *h, uint64_t ns);
/* Adds h's counts into s. */
void bench_snap_add(struct bench_snap *s, const struct bench_hist *h);
/* The value (in µs) below which a fraction p (0..1) of the samples lie; 0 when empty. */
double bench_snap_pct_us(const struct bench_snap *s, double p);

/* One worker's counters; cache-line aligned so workers do not share lines. */
struct bench_slot {
    _Atomic uint64_t msgs, bytes, errors;
    _Atomic uint64_t last_ns; /* consumers: when the slot last saw a message (bench_mark) */
    struct bench_hist hist;
} __attribute__((aligned(64)));

/* Single-writer increment (the slot's owner only). */
static inline void bench_inc(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

/* A run: the workers' slots, the stop rule and the clock. */
struct bench_run {
    const char *name;         /* progress prefix, e.g. "produce" */
    struct bench_slot *slots; /* owned: bench_run_init allocates, bench_run_destroy frees */
    size_t nslots;
    double duration_s;    /* stop after this long (when count == 0) */
    uint64_t count;       /* stop after this many messages (0: use duration) */
    int show_latency;     /* progress lines carry p50/p99 */
    int clock_from_first; /* consumers: the clock starts at the first message (bench_mark) */
    _Atomic uint64_t claimed;
    _Atomic uint64_t first_ns;
    _Atomic int stop;
    _Atomic int workers_left;
    uint64_t t0_ns, end_ns;
};

uint64_t bench_now_ns(void);
/* Allocates nslots slots; workers = how many threads call bench_worker_done. -ENOMEM. */
int bench_run_init(struct bench_run *r, const char *name, size_t nslots, int workers);
void bench_run_destroy(struct bench_run *r);
/* Claims up to `want` messages to send under --count (all of them under --duration). Returns
 * how many to send now: 0 means stop. */
uint64_t bench_claim(struct bench_run *r, uint64_t want);
/* Whether a consumer has seen enough: `seen` by this worker is not tracked; consumers call
 * bench_consumed after adding to their slot and stop when it returns 1. */
int bench_consumed(struct bench_run *r, uint64_t n);
/* Consumers: messages arrived at `now` for slot s. The first call of the run starts the clock
 * when clock_from_first; the clock then stops at the last call (idle waits are not counted). */
void bench_mark(struct bench_run *r, struct bench_slot *s, uint64_t now);
/* A worker is finished (its in-flight work drained). The last one stamps the end time. */
void bench_worker_done(struct bench_run *r);
/* Runs on the main thread from start to finish: one progress line a second on stderr, sets
 * stop at the deadline, returns when every worker is done. */
void bench_monitor(struct bench_run *r);
/* Prints `RESULT tps=... mbps=... p50_us=... p99_us=... p999_us=... errors=... msgs=... secs=...
 * client_cpu_s=...` (the process's user + system CPU time so far), then `extra` (may be NULL
 * or ""; "key=value ..." pairs). Returns the error count. */
uint64_t bench_result(struct bench_run *r, const char *extra);
/* The process's user + system CPU time so far (every thread), in seconds. */
double bench_cpu_s(void);

/* Ping-pong of `size`-byte messages over a fresh loopback TCP connection (TCP_NODELAY) for
 * `seconds`; round trips go into *out. Returns 0 or -errno. */
int bench_tcp_rtt(double seconds, size_t size, struct bench_snap *out);

/* Starts n worker threads fn(args + i * stride), runs bench_monitor until they are done and
 * joins them. When a thread cannot start, the run stops and the missing workers count as done.
 * Returns how many started (n when all did). */
int bench_run_workers(struct bench_run *r, int n, void *(*fn)(void *), void *args, size_t stride);

/* The options the peer load generators (mqbench-redis, mqbench-nats) share, with mqbench's
 * letters: -H host, -p port, -c threads, -s size, -b batch, -d duration, -N count, --idle. */
struct bench_peer_opts {
    const char *host;
    int port, threads, batch;
    size_t size;
    double duration_s, idle_s;
    int64_t count;
};
#define BENCH_OPT_IDLE 0x100 /* getopt code of --idle */
/* Applies option c (getopt's return) with argument arg. Returns 1 when applied, 0 when c is
 * not one of them, -1 on a bad value (after printing "<prog>: bad value: ..."). */
int bench_peer_opt(struct bench_peer_opts *o, int c, const char *arg, const char *prog);
/* The start of a peer tool's main: argv[1] must be produce or consume (--help prints usage).
 * Returns 1 produce, 0 consume, or -1 with *exit_code set (0 for --help, 2 for usage). */
int bench_peer_mode(int argc, char **argv, const char *usage, int *exit_code);

/* Parses "10", "10s", "500ms"; -1 on error. Counts accept k/m suffixes ("2m" = 2 000 000). */
double bench_parse_secs(const char *s);
int64_t bench_parse_count(const char *s);

#endif
