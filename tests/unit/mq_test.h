/* mq_test.h — a tiny unit-test harness: assertions that print both operands (libuv's task.h)
 * and a registry of test functions run in order by the executable's main().
 *
 * Usage:  TEST(name) { ASSERT_EQ(1 + 1, 2); }  ...  TEST_MAIN(test_a, test_b)
 * Running `test_x name` runs only that test. The last line is "N passed, N failed".
 */
#ifndef MQ_TEST_H
#define MQ_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int mq_test_failed; /* set by a failing assertion in the current test */

#define TEST(name) static void name(void)

#define MQ_TEST_FAIL_(...)                                                                         \
    do {                                                                                           \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                          \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        mq_test_failed = 1;                                                                        \
        return;                                                                                    \
    } while (0)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            MQ_TEST_FAIL_("assertion failed: %s", #cond);                                          \
    } while (0)

#define ASSERT_OP_(a, op, b)                                                                       \
    do {                                                                                           \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                                              \
        if (!(a_ op b_))                                                                           \
            MQ_TEST_FAIL_("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, a_, b_);               \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_OP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_OP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_OP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_OP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_OP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_OP_(a, >=, b)
#define ASSERT_OK(rc)   ASSERT_OP_(rc, ==, 0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            MQ_TEST_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, a_ ? a_ : "(null)",                \
                          b_ ? b_ : "(null)");                                                     \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0)                                                            \
            MQ_TEST_FAIL_("memory differs: %s vs %s (%zu bytes)", #a, #b, (size_t)(n));            \
    } while (0)

struct mq_test_case {
    const char *name;
    void (*fn)(void);
};

int mq_test_run(const struct mq_test_case *cases, size_t n, int argc, char **argv);

#define MQ_TEST_CASE_(fn) {#fn, fn},
#define TEST_MAIN(...)                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const struct mq_test_case cases[] = {MQ_TEST_FOREACH_(MQ_TEST_CASE_, __VA_ARGS__)}; \
        return mq_test_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);                   \
    }

/* A bounded FOREACH over up to 64 arguments. */
#define MQ_TEST_FOREACH_(m, ...) MQ_TEST_FE_N_(__VA_ARGS__, MQ_TEST_FE_SEQ_)(m, __VA_ARGS__)
#define MQ_TEST_FE_SEQ_                                                                            \
    64, 63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42,    \
        41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,    \
        19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1
#define MQ_TEST_FE_N_(...) MQ_TEST_FE_PICK_(__VA_ARGS__)
#define MQ_TEST_FE_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16,    \
                         _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30,     \
                         _31, _32, _33, _34, _35, _36, _37, _38, _39, _40, _41, _42, _43, _44,     \
                         _45, _46, _47, _48, _49, _50, _51, _52, _53, _54, _55, _56, _57, _58,     \
                         _59, _60, _61, _62, _63, _64, N, ...)                                     \
    MQ_TEST_FE_##N

#define MQ_TEST_FE_1(m, a)       m(a)
#define MQ_TEST_FE_2(m, a, ...)  m(a) MQ_TEST_FE_1(m, __VA_ARGS__)
#define MQ_TEST_FE_3(m, a, ...)  m(a) MQ_TEST_FE_2(m, __VA_ARGS__)
#define MQ_TEST_FE_4(m, a, ...)  m(a) MQ_TEST_FE_3(m, __VA_ARGS__)
#define MQ_TEST_FE_5(m, a, ...)  m(a) MQ_TEST_FE_4(m, __VA_ARGS__)
#define MQ_TEST_FE_6(m, a, ...)  m(a) MQ_TEST_FE_5(m, __VA_ARGS__)
#define MQ_TEST_FE_7(m, a, ...)  m(a) MQ_TEST_FE_6(m, __VA_ARGS__)
#define MQ_TEST_FE_8(m, a, ...)  m(a) MQ_TEST_FE_7(m, __VA_ARGS__)
#define MQ_TEST_FE_9(m, a, ...)  m(a) MQ_TEST_FE_8(m, __VA_ARGS__)
#define MQ_TEST_FE_10(m, a, ...) m(a) MQ_TEST_FE_9(m, __VA_ARGS__)
#define MQ_TEST_FE_11(m, a, ...) m(a) MQ_TEST_FE_10(m, __VA_ARGS__)
#define MQ_TEST_FE_12(m, a, ...) m(a) MQ_TEST_FE_11(m, __VA_ARGS__)
#define MQ_TEST_FE_13(m, a, ...) m(a) MQ_TEST_FE_12(m, __VA_ARGS__)
#define MQ_TEST_FE_14(m, a, ...) m(a) MQ_TEST_FE_13(m, __VA_ARGS__)
#define MQ_TEST_FE_15(m, a, ...) m(a) MQ_TEST_FE_14(m, __VA_ARGS__)
#define MQ_TEST_FE_16(m, a, ...) m(a) MQ_TEST_FE_15(m, __VA_ARGS__)
#define MQ_TEST_FE_17(m, a, ...) m(a) MQ_TEST_FE_16(m, __VA_ARGS__)
#define MQ_TEST_FE_18(m, a, ...) m(a) MQ_TEST_FE_17(m, __VA_ARGS__)
#define MQ_TEST_FE_19(m, a, ...) m(a) MQ_TEST_FE_18(m, __VA_ARGS__)
#define MQ_TEST_FE_20(m, a, ...) m(a) MQ_TEST_FE_19(m, __VA_ARGS__)
#define MQ_TEST_FE_21(m, a, ...) m(a) MQ_TEST_FE_20(m, __VA_ARGS__)
#define MQ_TEST_FE_22(m, a, ...) m(a) MQ_TEST_FE_21(m, __VA_ARGS__)
#define MQ_TEST_FE_23(m, a, ...) m(a) MQ_TEST_FE_22(m, __VA_ARGS__)
#define MQ_TEST_FE_24(m, a, ...) m(a) MQ_TEST_FE_23(m, __VA_ARGS__)
#define MQ_TEST_FE_25(m, a, ...) m(a) MQ_TEST_FE_24(m, __VA_ARGS__)
#define MQ_TEST_FE_26(m, a, ...) m(a) MQ_TEST_FE_25(m, __VA_ARGS__)
#define MQ_TEST_FE_27(m, a, ...) m(a) MQ_TEST_FE_26(m, __VA_ARGS__)
#define MQ_TEST_FE_28(m, a, ...) m(a) MQ_TEST_FE_27(m, __VA_ARGS__)
#define MQ_TEST_FE_29(m, a, ...) m(a) MQ_TEST_FE_28(m, __VA_ARGS__)
#define MQ_TEST_FE_30(m, a, ...) m(a) MQ_TEST_FE_29(m, __VA_ARGS__)
#define MQ_TEST_FE_31(m, a, ...) m(a) MQ_TEST_FE_30(m, __VA_ARGS__)
#define MQ_TEST_FE_32(m, a, ...) m(a) MQ_TEST_FE_31(m, __VA_ARGS__)
#define MQ_TEST_FE_33(m, a, ...) m(a) MQ_TEST_FE_32(m, __VA_ARGS__)
#define MQ_TEST_FE_34(m, a, ...) m(a) MQ_TEST_FE_33(m, __VA_ARGS__)
#define MQ_TEST_FE_35(m, a, ...) m(a) MQ_TEST_FE_34(m, __VA_ARGS__)
#define MQ_TEST_FE_36(m, a, ...) m(a) MQ_TEST_FE_35(m, __VA_ARGS__)
#define MQ_TEST_FE_37(m, a, ...) m(a) MQ_TEST_FE_36(m, __VA_ARGS__)
#define MQ_TEST_FE_38(m, a, ...) m(a) MQ_TEST_FE_37(m, __VA_ARGS__)
#define MQ_TEST_FE_39(m, a, ...) m(a) MQ_TEST_FE_38(m, __VA_ARGS__)
#define MQ_TEST_FE_40(m, a, ...) m(a) MQ_TEST_FE_39(m, __VA_ARGS__)
#define MQ_TEST_FE_41(m, a, ...) m(a) MQ_TEST_FE_40(m, __VA_ARGS__)
#define MQ_TEST_FE_42(m, a, ...) m(a) MQ_TEST_FE_41(m, __VA_ARGS__)
#define MQ_TEST_FE_43(m, a, ...) m(a) MQ_TEST_FE_42(m, __VA_ARGS__)
#define MQ_TEST_FE_44(m, a, ...) m(a) MQ_TEST_FE_43(m, __VA_ARGS__)
#define MQ_TEST_FE_45(m, a, ...) m(a) MQ_TEST_FE_44(m, __VA_ARGS__)
#define MQ_TEST_FE_46(m, a, ...) m(a) MQ_TEST_FE_45(m, __VA_ARGS__)
#define MQ_TEST_FE_47(m, a, ...) m(a) MQ_TEST_FE_46(m, __VA_ARGS__)
#define MQ_TEST_FE_48(m, a, ...) m(a) MQ_TEST_FE_47(m, __VA_ARGS__)
#define MQ_TEST_FE_49(m, a, ...) m(a) MQ_TEST_FE_48(m, __VA_ARGS__)
#define MQ_TEST_FE_50(m, a, ...) m(a) MQ_TEST_FE_49(m, __VA_ARGS__)
#define MQ_TEST_FE_51(m, a, ...) m(a) MQ_TEST_FE_50(m, __VA_ARGS__)
#define MQ_TEST_FE_52(m, a, ...) m(a) MQ_TEST_FE_51(m, __VA_ARGS__)
#define MQ_TEST_FE_53(m, a, ...) m(a) MQ_TEST_FE_52(m, __VA_ARGS__)
#define MQ_TEST_FE_54(m, a, ...) m(a) MQ_TEST_FE_53(m, __VA_ARGS__)
#define MQ_TEST_FE_55(m, a, ...) m(a) MQ_TEST_FE_54(m, __VA_ARGS__)
#define MQ_TEST_FE_56(m, a, ...) m(a) MQ_TEST_FE_55(m, __VA_ARGS__)
#define MQ_TEST_FE_57(m, a, ...) m(a) MQ_TEST_FE_56(m, __VA_ARGS__)
#define MQ_TEST_FE_58(m, a, ...) m(a) MQ_TEST_FE_57(m, __VA_ARGS__)
#define MQ_TEST_FE_59(m, a, ...) m(a) MQ_TEST_FE_58(m, __VA_ARGS__)
#define MQ_TEST_FE_60(m, a, ...) m(a) MQ_TEST_FE_59(m, __VA_ARGS__)
#define MQ_TEST_FE_61(m, a, ...) m(a) MQ_TEST_FE_60(m, __VA_ARGS__)
#define MQ_TEST_FE_62(m, a, ...) m(a) MQ_TEST_FE_61(m, __VA_ARGS__)
#define MQ_TEST_FE_63(m, a, ...) m(a) MQ_TEST_FE_62(m, __VA_ARGS__)
#define MQ_TEST_FE_64(m, a, ...) m(a) MQ_TEST_FE_63(m, __VA_ARGS__)

#endif
