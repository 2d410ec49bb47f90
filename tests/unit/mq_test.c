/* mq_test.c — the runner behind mq_test.h. */
#include "tests/unit/mq_test.h"

#include <time.h>

int mq_test_failed;

int mq_test_run(const struct mq_test_case *cases, size_t n, int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
            continue;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        mq_test_failed = 0;
        cases[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        printf("%s %s (%.1f ms)\n", mq_test_failed ? "FAIL" : "ok  ", cases[i].name, ms);
        fflush(stdout);
        if (mq_test_failed)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
