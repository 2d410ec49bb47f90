/* mq_sql_int.h — internals shared by the SQL92 selector's parser (mq_sql.c) and evaluator
 * (mq_sql_eval.c): the value and node types of a compiled expression. */
#ifndef MQ_SQL_INT_H
#define MQ_SQL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/mq_sql.h"

/* Values: Java's null, Boolean, Integer, Long, Double and String. */
enum vtype { V_NULL, V_BOOL, V_INT, V_LONG, V_DOUBLE, V_STR };

struct val {
    enum vtype t;
    int64_t i; /* BOOL (0/1), INT, LONG */
    double d;
    const char *s;
    size_t n;
};

enum nkind { N_CONST, N_PROP, N_NEG, N_NOT, N_CAST, N_AND, N_OR, N_EQ, N_CMP, N_IN, N_STRF };
enum { OP_LT, OP_LE, OP_GT, OP_GE };              /* N_CMP */
enum { OP_CONTAINS, OP_STARTSWITH, OP_ENDSWITH }; /* N_STRF */

struct node {
    uint8_t kind, op, neg, depth;
    int32_t l, r;       /* operands; AND/OR: l is the first of a list linked by next */
    int32_t next, last; /* AND/OR list */
    int32_t lit, nlit;  /* N_IN: strings lits[lit .. lit+nlit); N_PROP: lit is its name's
                           index in names[] */
    struct val v;       /* N_CONST value, N_PROP name, N_STRF search string */
};

struct mq_sql {
    struct node *nodes;
    size_t nnodes, capnodes;
    struct val *lits;
    size_t nlits, caplits;
    char *strs; /* decoded strings and names, NUL-terminated; sized for the whole input */
    size_t nstrs, capstrs;
    int32_t root;
    /* the distinct property names, so that evaluation looks each up once per message
     * (mq_sql__index_names): names[] point into strs; htab (hmask + 1 slots) holds indexes
     * into names[] or -1 */
    struct val *names;
    size_t nnames;
    int32_t *htab;
    size_t hmask;
};

int mq_sql__is_digit(char c);
/* Length of an exponent ("E" [+-] digits) at s, 0 when there is none. */
size_t mq_sql__exponent(const char *s, size_t n);
/* Java's Comparable.compareTo across types with the selector's conversions: 0 with *out, or -1
 * where Java throws (a string that is not a number of the other side's type). */
int mq_sql__compare(const struct val *a, const struct val *b, int *out);

/* Builds names[] and htab and sets each N_PROP's lit. Returns 0 or -ENOMEM. */
int mq_sql__index_names(struct mq_sql *q);

#endif
