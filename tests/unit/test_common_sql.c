/* test_common_sql.c — the SQL92 selector (common/mq_sql.c): each operator, the three-valued
 * logic, numbers against property strings, RocketMQ's compile-time refusals, syntax errors and
 * the size and depth limits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_sql.h"
#include "mq_test.h"

#define COMPILE_FAILED (-100)

static int get(void *arg, const char *name, const char **val, size_t *vlen)
{
    const char *spec = arg; /* "a=1;b=x" */
    size_t nl = strlen(name);
    for (const char *p = spec; *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        if (eq && eq < end && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            *val = eq + 1;
            *vlen = (size_t)(end - eq - 1);
            return 0;
        }
        p = *end ? end + 1 : end;
    }
    return -1;
}

static int res(const char *expr, const char *props)
{
    struct mq_sql *q;
    char err[256];
    if (mq_sql_compile(expr, strlen(expr), &q, err, sizeof(err)))
        return COMPILE_FAILED;
    int r = (int)mq_sql_eval(q, get, (void *)props);
    mq_sql_free(q);
    return r;
}

#define T MQ_SQL_TRUE
#define F MQ_SQL_FALSE
#define N MQ_SQL_NULL
#define E MQ_SQL_ERROR

TEST(test_sql_comparisons)
{
    ASSERT_EQ(res("a = 'x'", "a=x"), T);
    ASSERT_EQ(res("a = 'x'", "a=y"), F);
    ASSERT_EQ(res("a <> 'x'", "a=y"), T);
    ASSERT_EQ(res("a <> 'x'", "a=x"), F);
    ASSERT_EQ(res("a = 5", "a=5"), T);
    ASSERT_EQ(res("a = 5", "a=+5"), T);    /* Integer.valueOf */
    ASSERT_EQ(res("a = 5.0", "a=5"), T);   /* Double.valueOf */
    ASSERT_EQ(res("a = '5.0'", "a=5"), F); /* strings compare as strings */
    ASSERT_EQ(res("a > 3", "a=10"), T);
    ASSERT_EQ(res("a > 3", "a=3"), F);
    ASSERT_EQ(res("a >= 3", "a=3"), T);
    ASSERT_EQ(res("a < 3", "a=-7"), T);
    ASSERT_EQ(res("a <= 3", "a=4"), F);
    ASSERT_EQ(res("a > 2.5", "a=2.75"), T);
    ASSERT_EQ(res("a > 2.5", "a=1e1"), T);
    ASSERT_EQ(res("3 < a", "a=4"), T); /* the constant on the left */
    ASSERT_EQ(res("a > 3000000000", "a=3000000001"), T);
    ASSERT_EQ(res("a > b", "a=10;b=9.5"), T); /* two properties: compared as doubles */
    ASSERT_EQ(res("a > -2", "a=-1"), T);
    ASSERT_EQ(res("-a < 0", "a=1"), N); /* a negated string is NULL */
    ASSERT_EQ(res("a = TRUE", "a=TrUe"), T);
    ASSERT_EQ(res("a = FALSE", "a=yes"), T); /* Boolean.valueOf */
    ASSERT_EQ(res("TAGS = 'TagA'", "TAGS=TagA"), T);
    ASSERT_EQ(res("Ab = 'x'", "ab=x"), N); /* property names are case-sensitive */
}

TEST(test_sql_numbers_that_do_not_parse)
{
    /* RocketMQ's evaluation throws: the message is not matched, whatever else the expression
     * says, except where the left side decided first */
    ASSERT_EQ(res("a > 3", "a=abc"), E);
    ASSERT_EQ(res("a = 3", "a=3.5"), E);        /* Integer.valueOf("3.5") */
    ASSERT_EQ(res("a > 3", "a=5000000000"), E); /* out of an Integer's range */
    ASSERT_EQ(res("a > b", "a=1;b=x"), E);
    ASSERT_EQ(res("a > 3 OR b = 'x'", "a=abc;b=x"), E);
    ASSERT_EQ(res("b = 'x' OR a > 3", "a=abc;b=x"), T); /* short-circuit */
    ASSERT_EQ(res("a > 1.5", "a= 2.5 "), T);            /* Double.valueOf trims */
    ASSERT_EQ(res("a > 1.5", "a=2.5d"), T);
    ASSERT_EQ(res("a > 1.5", "a=inf"), E);
    ASSERT_EQ(res("a > 1.5", "a=Infinity"), T);
}

TEST(test_sql_null_and_three_valued_logic)
{
    ASSERT_EQ(res("a = 'x'", ""), N);
    ASSERT_EQ(res("a > 1", ""), N);
    ASSERT_EQ(res("a IS NULL", ""), T);
    ASSERT_EQ(res("a IS NULL", "a=1"), F);
    ASSERT_EQ(res("a IS NOT NULL", "a="), T); /* present, empty */
    ASSERT_EQ(res("a IS NOT NULL", ""), F);
    ASSERT_EQ(res("NOT (a = 'x')", ""), N);
    ASSERT_EQ(res("a = 'x' AND b = 'y'", "b=y"), N);
    ASSERT_EQ(res("a = 'x' AND b = 'y'", "b=z"), F);
    ASSERT_EQ(res("a = 'x' OR b = 'y'", "b=y"), T);
    ASSERT_EQ(res("a = 'x' OR b = 'y'", "b=z"), N);
    ASSERT_EQ(res("a = 'x' OR b = 'y'", "a=q;b=z"), F);
    ASSERT_EQ(res("TRUE AND NULL", ""), N);
    ASSERT_EQ(res("FALSE AND NULL", ""), F);
    ASSERT_EQ(res("NULL OR TRUE", ""), T);
    ASSERT_EQ(res("NOT NULL", ""), N);
    ASSERT_EQ(res("TRUE", ""), T);
    ASSERT_EQ(res("a", "a=true"), F); /* a property as a condition: a string is not TRUE */
    ASSERT_EQ(res("a", ""), N);
    ASSERT_EQ(res("a = b", ""), T);   /* null = null, as RocketMQ's equality says */
    ASSERT_EQ(res("'x' = a", ""), F); /* constant = missing: FALSE, not unknown */
    ASSERT_EQ(res("a = 1 AND b = 2 AND c = 3 AND d = 4", "a=1;b=2;c=3;d=4"), T);
    ASSERT_EQ(res("a = 1 AND b = 2 AND c = 3 AND d = 4", "a=1;b=2;c=3;d=5"), F);
    ASSERT_EQ(res("a = 1 OR b = 2 OR c = 3", "c=3"), T);
    ASSERT_EQ(res("(a = 1 OR b = 2) AND c = 3", "b=2;c=3"), T);
    ASSERT_EQ(res("a = 1 OR b = 2 AND c = 3", "a=1;c=4"), T); /* AND binds tighter */
}

TEST(test_sql_between_in_and_strings)
{
    ASSERT_EQ(res("a BETWEEN 1 AND 3", "a=1"), T);
    ASSERT_EQ(res("a BETWEEN 1 AND 3", "a=3"), T);
    ASSERT_EQ(res("a BETWEEN 1 AND 3", "a=4"), F);
    ASSERT_EQ(res("a BETWEEN 1 AND 3", ""), N);
    ASSERT_EQ(res("a NOT BETWEEN 1 AND 3", "a=4"), T);
    ASSERT_EQ(res("a NOT BETWEEN 1 AND 3", "a=2"), F);
    ASSERT_EQ(res("a BETWEEN -1.5 AND 1.5 AND b = 'x'", "a=0;b=x"), T);
    ASSERT_EQ(res("a IN ('x', 'y')", "a=y"), T);
    ASSERT_EQ(res("a IN ('x', 'y')", "a=z"), F);
    ASSERT_EQ(res("a IN ('x')", ""), N);
    ASSERT_EQ(res("a NOT IN ('x', 'y')", "a=z"), T);
    ASSERT_EQ(res("a NOT IN ('x', 'y')", "a=x"), F);
    ASSERT_EQ(res("a = 'it''s'", "a=it's"), T);
    ASSERT_EQ(res("a CONTAINS 'ell'", "a=hello"), T);
    ASSERT_EQ(res("a CONTAINS 'xyz'", "a=hello"), F);
    ASSERT_EQ(res("a NOT CONTAINS 'xyz'", "a=hello"), T);
    ASSERT_EQ(res("a NOT CONTAINS 'xyz'", ""), F); /* missing: FALSE for the NOT form too */
    ASSERT_EQ(res("a CONTAINS ''", "a=hello"), F);
    ASSERT_EQ(res("a STARTSWITH 'he'", "a=hello"), T);
    ASSERT_EQ(res("a STARTSWITH 'lo'", "a=hello"), F);
    ASSERT_EQ(res("a NOT STARTSWITH 'lo'", "a=hello"), T);
    ASSERT_EQ(res("a ENDSWITH 'lo'", "a=hello"), T);
    ASSERT_EQ(res("a NOT ENDSWITH 'lo'", "a=hello"), F);
    ASSERT_EQ(res("a ENDSWITH 'hello!'", "a=hello"), F);
}

TEST(test_sql_keywords_comments_and_literals)
{
    ASSERT_EQ(res("a is not null and NOT (a between 1 and 2) or b In ('q')", "a=5"), T);
    ASSERT_EQ(res("/* c */ a = 1 -- trailing\n", "a=1"), T);
    ASSERT_EQ(res("a = 1L", "a=1"), T);
    ASSERT_EQ(res("a = 5E0", "a=5"), T);
    ASSERT_EQ(res("a > .5", "a=0.75"), T);
    ASSERT_EQ(res("$x_1 = 'v'", "$x_1=v"), T);
    ASSERT_EQ(res("android = 'x'", "android=x"), T); /* a keyword's prefix is a name */
    ASSERT_EQ(res("a = +5", "a=5"), T);
}

static void expect_refused(const char *expr, int rc, const char *fragment)
{
    struct mq_sql *q = NULL;
    char err[256];
    int got = mq_sql_compile(expr, strlen(expr), &q, err, sizeof(err));
    if (got != rc || !strstr(err, "Invalid MessageSelector. ") || !strstr(err, fragment)) {
        fprintf(stderr, "  %s: rc %d, err \"%s\"\n", expr, got, err);
        mq_test_failed = 1;
    }
    mq_sql_free(q);
}

TEST(test_sql_refusals)
{
    expect_refused("", -EINVAL, "end of expression");
    expect_refused("a =", -EINVAL, "end of expression");
    expect_refused("a == 1", -EINVAL, "column 4");
    expect_refused("a != 1", -EINVAL, "lexical error");
    expect_refused("a = 'x", -EINVAL, "lexical error");
    expect_refused("a = 1 /* open", -EINVAL, "lexical error");
    expect_refused("a = 1 -- no line end", -EINVAL, "lexical error");
    expect_refused("(a = 1", -EINVAL, "\")\"");
    expect_refused("a = 1)", -EINVAL, "end of the expression");
    expect_refused("a IN ()", -EINVAL, "string literal");
    expect_refused("a IN (1)", -EINVAL, "string literal");
    expect_refused("'x' IN ('x')", -EINVAL, "property");
    expect_refused("a > 'x'", -EINVAL, "cannot be compared");
    expect_refused("a > TRUE", -EINVAL, "cannot be compared");
    expect_refused("(a = 1) > 2", -EINVAL, "condition");
    expect_refused("a = NULL", -EINVAL, "IS NULL");
    expect_refused("TRUE = 1", -EINVAL, "boolean constant");
    expect_refused("a BETWEEN 3 AND 1", -EINVAL, "lower bound");
    expect_refused("a BETWEEN 'a' AND 'b'", -EINVAL, "cannot be compared");
    expect_refused("1", -EINVAL, "boolean");
    expect_refused("'x' AND a", -EINVAL, "boolean");
    expect_refused("a = 99999999999999999999", -EINVAL, "range");
    expect_refused("a > 0.0", -EINVAL, "smallest");
    expect_refused("a > 1e999", -EINVAL, "largest");
    expect_refused("a = 01", -EINVAL, "column 6");
    expect_refused("a CONTAINS b", -EINVAL, "string literal");
    expect_refused("a IS 1", -EINVAL, "NULL");
}

TEST(test_sql_limits)
{
    char *s = malloc(MQ_SQL_MAX_LEN * 2 + 16);
    ASSERT(s);
    /* length */
    memset(s, ' ', MQ_SQL_MAX_LEN + 1);
    memcpy(s, "a = 1", 5);
    s[MQ_SQL_MAX_LEN + 1] = '\0';
    expect_refused(s, -E2BIG, "longer");
    s[MQ_SQL_MAX_LEN] = '\0';
    ASSERT_EQ(res(s, "a=1"), T);
    /* nesting: parentheses, NOT chains, equality chains */
    size_t n = 0;
    for (int i = 0; i < 2000; i++)
        s[n++] = '(';
    s[n] = '\0';
    expect_refused(s, -E2BIG, "deeper");
    n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(s + n, "NOT ");
    sprintf(s + n, "a");
    expect_refused(s, -E2BIG, "deeper");
    n = (size_t)sprintf(s, "a");
    for (int i = 0; i < 500; i++)
        n += (size_t)sprintf(s + n, " IS NULL");
    expect_refused(s, -E2BIG, "deeper");
    /* a long flat AND chain is fine: it is one list, not a deep tree */
    n = (size_t)sprintf(s, "a = 1");
    while (n < MQ_SQL_MAX_LEN - 16)
        n += (size_t)sprintf(s + n, " AND a = 1");
    ASSERT_EQ(res(s, "a=1"), T);
    ASSERT_EQ(res(s, "a=2"), F);
    /* 60 levels of parentheses still compile */
    n = 0;
    for (int i = 0; i < 60; i++)
        s[n++] = '(';
    n += (size_t)sprintf(s + n, "a = 1");
    for (int i = 0; i < 60; i++)
        s[n++] = ')';
    s[n] = '\0';
    ASSERT_EQ(res(s, "a=1"), T);
    free(s);
}

TEST(test_sql_match_props)
{
    struct mq_sql *q;
    ASSERT_OK(mq_sql_compile("a = '1' AND TAGS = 'T'", 22, &q, NULL, 0));
    static const char props[] = "TAGS\001T\002a\0011\002";
    ASSERT_EQ(mq_sql_match_props(q, props, sizeof(props) - 1), 1);
    ASSERT_EQ(mq_sql_match_props(q, props, 7), 0); /* only TAGS */
    ASSERT_EQ(mq_sql_match_props(q, NULL, 0), 0);
    mq_sql_free(q);
    mq_sql_free(NULL);
}

static int count_get(void *arg, const char *name, const char **val, size_t *vlen)
{
    ++*(int *)arg;
    (void)name;
    *val = "v";
    *vlen = 1;
    return 0;
}

/* A 4 KiB expression naming one property hundreds of times, over a message with thousands of
 * properties, used to cost a scan of them per reference and per message (seconds for one pull
 * of 4096 messages): each distinct name is now looked up once per message. */
TEST(test_sql_each_name_looked_up_once)
{
    char expr[MQ_SQL_MAX_LEN];
    size_t n = 0;
    while (n + 40 < sizeof(expr))
        n += (size_t)snprintf(expr + n, sizeof(expr) - n, "%sa = 'x' OR b CONTAINS 'y'",
                              n ? " OR " : "");
    struct mq_sql *q;
    ASSERT_OK(mq_sql_compile(expr, n, &q, NULL, 0));
    int calls = 0;
    ASSERT_EQ((int)mq_sql_eval(q, count_get, &calls), F);
    ASSERT_EQ(calls, 2);
    mq_sql_free(q);

    /* CONTAINS over a long value: the same answers as a plain search */
    static char props[32000];
    size_t p = (size_t)snprintf(props, sizeof(props), "v\001");
    memset(props + p, 'a', 20000);
    p += 20000;
    props[p++] = 'b';
    props[p++] = '\002';
    ASSERT_OK(mq_sql_compile("v CONTAINS 'aaab' AND v ENDSWITH 'ab' AND v NOT CONTAINS 'ba'", 61,
                             &q, NULL, 0));
    ASSERT_EQ(mq_sql_match_props(q, props, p), 1);
    mq_sql_free(q);
}

/* A property given twice: the last value counts, as in RocketMQ, whose
 * MessageDecoder.string2messageProperties puts each into a HashMap. */
TEST(test_sql_duplicate_property_last_wins)
{
    struct mq_sql *q;
    static const char props[] = "a\0011\002b\001x\002a\0012\002";
    ASSERT_OK(mq_sql_compile("a = 2", 5, &q, NULL, 0));
    ASSERT_EQ(mq_sql_match_props(q, props, sizeof(props) - 1), 1);
    mq_sql_free(q);
    ASSERT_OK(mq_sql_compile("a = 1", 5, &q, NULL, 0));
    ASSERT_EQ(mq_sql_match_props(q, props, sizeof(props) - 1), 0);
    mq_sql_free(q);
}

TEST_MAIN(test_sql_comparisons, test_sql_numbers_that_do_not_parse,
          test_sql_null_and_three_valued_logic, test_sql_between_in_and_strings,
          test_sql_keywords_comments_and_literals, test_sql_refusals, test_sql_limits,
          test_sql_match_props, test_sql_each_name_looked_up_once,
          test_sql_duplicate_property_last_wins)
