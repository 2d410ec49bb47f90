/* test_bench.c — the load generators' shared arithmetic (tools/bench/bench_util.c): histogram
 * percentiles within the bucket error, the --count stop rule, option values, and the loopback
 * round trip producing samples. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/mq_test.h"
#include "tools/bench/bench_util.h"

/* |got - want| within 1/32 of want (one sub-bucket) plus 1 ns for the exact small buckets. */
static int close_to(double got_us, double want_us)
{
    return fabs(got_us - want_us) <= want_us / 32.0 + 0.001;
}

TEST(test_hist_percentiles)
{
    struct bench_hist *h = calloc(1, sizeof(*h));
    struct bench_snap *s = calloc(1, sizeof(*s));
    ASSERT(h && s);
    ASSERT(bench_snap_pct_us(s, 0.5) == 0); /* empty */
    for (uint64_t v = 1; v <= 100000; v++)
        bench_hist_add(h, v * 1000); /* 1 µs .. 100 ms, uniform */
    bench_snap_add(s, h);
    ASSERT_EQ(s->n, 100000);
    ASSERT(close_to(bench_snap_pct_us(s, 0.50), 50000));
    ASSERT(close_to(bench_snap_pct_us(s, 0.99), 99000));
    ASSERT(close_to(bench_snap_pct_us(s, 0.001), 100));
    /* tiny and huge values land in buckets without overflow */
    memset(s, 0, sizeof(*s));
    memset(h, 0, sizeof(*h));
    bench_hist_add(h, 0);
    bench_hist_add(h, 7);
    bench_hist_add(h, UINT64_MAX);
    bench_snap_add(s, h);
    ASSERT_EQ(s->n, 3);
    ASSERT(bench_snap_pct_us(s, 0.0) == 0);
    ASSERT(bench_snap_pct_us(s, 0.5) == 0.007);
    ASSERT(bench_snap_pct_us(s, 1.0) > 1e12);
    free(h);
    free(s);
}

TEST(test_claim_count)
{
    struct bench_run r;
    ASSERT_OK(bench_run_init(&r, "t", 1, 1));
    r.count = 250;
    uint64_t total = 0, n;
    while ((n = bench_claim(&r, 100)) > 0)
        total += n;
    ASSERT_EQ(total, 250);
    bench_run_destroy(&r);

    ASSERT_OK(bench_run_init(&r, "t", 1, 1));
    r.count = 10;
    ASSERT_EQ(bench_consumed(&r, 4), 0);
    ASSERT_EQ(bench_consumed(&r, 6), 1);
    ASSERT_EQ(atomic_load(&r.stop), 1);
    bench_run_destroy(&r);
}

TEST(test_parse_values)
{
    ASSERT(bench_parse_secs("5") == 5);
    ASSERT(bench_parse_secs("500ms") == 0.5);
    ASSERT(bench_parse_secs("2m") == 120);
    ASSERT(bench_parse_secs("x") < 0);
    ASSERT_EQ(bench_parse_count("2m"), 2000000);
    ASSERT_EQ(bench_parse_count("10k"), 10000);
    ASSERT_EQ(bench_parse_count("42"), 42);
    ASSERT_EQ(bench_parse_count("4q"), -1);
    ASSERT_EQ(bench_parse_count("-3"), -1);
}

TEST(test_tcp_rtt)
{
    struct bench_snap *s = calloc(1, sizeof(*s));
    ASSERT(s);
    ASSERT_OK(bench_tcp_rtt(0.05, 64, s));
    ASSERT_GT(s->n, 0);
    ASSERT(bench_snap_pct_us(s, 0.5) > 0);
    free(s);
}

TEST_MAIN(test_hist_percentiles, test_claim_count, test_parse_values, test_tcp_rtt)
