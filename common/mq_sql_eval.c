/* mq_sql_eval.c — evaluation of a compiled SQL92 selector against a message's properties,
 * with the value rules of RocketMQ's expression classes (ComparisonExpression,
 * LogicExpression, UnaryExpression; docs/FORMATS.md, "SQL92 property filter"). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mq_msg.h"
#include "common/mq_sql_int.h"
/* ---- Java's conversions ---- */

/* Java's Integer/Long.parseLong: [+-] ASCII digits, in range. */
static int parse_jlong(const char *s, size_t n, int bits, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (n > 0 && (s[0] == '-' || s[0] == '+'))
        neg = s[i++] == '-';
    if (i >= n)
        return -1;
    uint64_t limit = bits == 32 ? (uint64_t)INT32_MAX + neg : (uint64_t)INT64_MAX + neg, x = 0;
    for (; i < n; i++) {
        if (!mq_sql__is_digit(s[i]) || x > (limit - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *out = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

/* Java's Double.valueOf for decimal text: trimmed, [+-], NaN, Infinity or digits with an
 * optional fraction, exponent and f/F/d/D suffix (hexadecimal forms are not accepted). */
static int parse_jdouble(const char *s, size_t n, double *out)
{
    while (n > 0 && (unsigned char)s[0] <= ' ')
        s++, n--;
    while (n > 0 && (unsigned char)s[n - 1] <= ' ')
        n--;
    size_t i = 0;
    int neg = 0;
    if (n > 0 && (s[0] == '-' || s[0] == '+'))
        neg = s[i++] == '-';
    if (n - i == 3 && memcmp(s + i, "NaN", 3) == 0) {
        *out = NAN;
        return 0;
    }
    if (n - i == 8 && memcmp(s + i, "Infinity", 8) == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    size_t digits = 0, j = i;
    while (j < n && mq_sql__is_digit(s[j]))
        j++, digits++;
    if (j < n && s[j] == '.')
        for (j++; j < n && mq_sql__is_digit(s[j]); j++)
            digits++;
    if (digits == 0)
        return -1;
    j += mq_sql__exponent(s + j, n - j);
    size_t end = j;
    if (j < n && (s[j] == 'f' || s[j] == 'F' || s[j] == 'd' || s[j] == 'D'))
        j++;
    if (j != n)
        return -1;
    char buf[128], *copy = end < sizeof(buf) ? buf : malloc(end + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, end);
    copy[end] = '\0';
    *out = strtod(copy, NULL);
    if (copy != buf)
        free(copy);
    return 0;
}

/* Java's Double.compare: NaN above everything and equal to itself, -0.0 below 0.0. */
static int dcmp(double a, double b)
{
    if (a < b)
        return -1;
    if (a > b)
        return 1;
    int64_t x, y;
    double ca = isnan(a) ? NAN : a, cb = isnan(b) ? NAN : b;
    memcpy(&x, &ca, sizeof(x));
    memcpy(&y, &cb, sizeof(y));
    return x == y ? 0 : x < y ? -1 : 1;
}

static int is_num(enum vtype t)
{
    return t == V_INT || t == V_LONG || t == V_DOUBLE;
}

/* A string as a number of type t (Integer.valueOf, Long.valueOf, Double.valueOf). */
static int str_to(const struct val *s, enum vtype t, struct val *out)
{
    *out = (struct val){.t = t};
    if (t == V_DOUBLE)
        return parse_jdouble(s->s, s->n, &out->d);
    return parse_jlong(s->s, s->n, t == V_INT ? 32 : 64, &out->i);
}

int mq_sql__compare(const struct val *a, const struct val *b, int *out)
{
    struct val x;
    if (is_num(a->t) && is_num(b->t)) {
        if (a->t == V_DOUBLE || b->t == V_DOUBLE)
            *out = dcmp(a->t == V_DOUBLE ? a->d : (double)a->i,
                        b->t == V_DOUBLE ? b->d : (double)b->i);
        else
            *out = a->i < b->i ? -1 : a->i > b->i;
        return 0;
    }
    if (a->t == V_STR && b->t == V_STR) {
        int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
        *out = c ? (c < 0 ? -1 : 1) : a->n < b->n ? -1 : a->n > b->n;
        return 0;
    }
    if (a->t == V_BOOL && b->t == V_BOOL) {
        *out = (int)(a->i - b->i);
        return 0;
    }
    if (is_num(a->t) && b->t == V_STR) { /* the string converts to the number's type */
        if (str_to(b, a->t, &x))
            return -1;
        return mq_sql__compare(a, &x, out);
    }
    if (a->t == V_STR && is_num(b->t)) {
        if (str_to(a, b->t, &x))
            return -1;
        return mq_sql__compare(&x, b, out);
    }
    if (a->t == V_STR && b->t == V_BOOL) { /* Boolean.valueOf */
        x = (struct val){.t = V_BOOL, .i = a->n == 4 && strncasecmp(a->s, "true", 4) == 0};
        return mq_sql__compare(&x, b, out);
    }
    if (a->t == V_BOOL && b->t == V_STR)
        return -1; /* a ClassCastException in RocketMQ's __compare */
    *out = -1;     /* other mixes: __compare's "return -1" */
    return 0;
}

/* ---- property names ---- */

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* The index of name (s, n) in q->names, or -1. */
static int32_t name_find(const struct mq_sql *q, const char *s, size_t n)
{
    for (size_t h = name_hash(s, n) & q->hmask;; h = (h + 1) & q->hmask) {
        int32_t k = q->htab[h];
        if (k < 0 || (q->names[k].n == n && memcmp(q->names[k].s, s, n) == 0))
            return k;
    }
}

int mq_sql__index_names(struct mq_sql *q)
{
    size_t nprops = 0, cap = 1;
    for (size_t i = 0; i < q->nnodes; i++)
        nprops += q->nodes[i].kind == N_PROP;
    while (cap < 2 * nprops)
        cap *= 2;
    if (!(q->htab = malloc(cap * sizeof(*q->htab))) ||
        !(q->names = malloc((nprops ? nprops : 1) * sizeof(*q->names))))
        return -ENOMEM;
    memset(q->htab, 0xff, cap * sizeof(*q->htab)); /* -1: empty */
    q->hmask = cap - 1;
    for (size_t i = 0; i < q->nnodes; i++) {
        struct node *n = &q->nodes[i];
        if (n->kind != N_PROP)
            continue;
        int32_t k = name_find(q, n->v.s, n->v.n);
        if (k < 0) {
            size_t h = name_hash(n->v.s, n->v.n) & q->hmask;
            while (q->htab[h] >= 0)
                h = (h + 1) & q->hmask;
            k = (int32_t)q->nnames;
            q->names[q->nnames++] = n->v;
            q->htab[h] = k;
        }
        n->lit = k;
    }
    struct val *fit = realloc(q->names, (q->nnames ? q->nnames : 1) * sizeof(*fit));
    if (fit)
        q->names = fit;
    return 0;
}

/* ---- evaluation ---- */

struct ectx {
    mq_sql_get_fn get;
    void *arg;
    const struct val *slots; /* each name's value (V_STR, or V_NULL when absent), or NULL:
                                then get() is asked at each reference */
    size_t work;             /* bytes searched */
};

static const struct val vnull = {.t = V_NULL};

/* Evaluates node i into *v: 0, or -1 where RocketMQ's evaluation throws. Recursion is bounded
 * by the tree depth (MQ_SQL_MAX_DEPTH). */
static int eval(const struct mq_sql *q, int32_t i, struct ectx *c, struct val *v)
{
    const struct node *n = &q->nodes[i];
    struct val a, b;
    int cmp;
    switch ((enum nkind)n->kind) {
    case N_CONST:
        *v = n->v;
        return 0;
    case N_PROP:
        if (c->slots) {
            *v = c->slots[n->lit];
            return 0;
        }
        *v = (struct val){.t = V_STR};
        if (c->get(c->arg, n->v.s, &v->s, &v->n))
            *v = vnull;
        return 0;
    case N_NEG:
        if (eval(q, n->l, c, v))
            return -1;
        if (v->t == V_INT)
            v->i = (int32_t)(0u - (uint32_t)v->i);
        else if (v->t == V_LONG)
            v->i = (int64_t)(0 - (uint64_t)v->i);
        else if (v->t == V_DOUBLE)
            v->d = -v->d;
        else
            *v = vnull;
        return 0;
    case N_NOT:
    case N_CAST:
        if (eval(q, n->l, c, v))
            return -1;
        if (v->t == V_BOOL && n->kind == N_NOT)
            v->i = !v->i;
        else if (v->t != V_BOOL && v->t != V_NULL) {
            if (n->kind == N_NOT)
                return -1;
            *v = (struct val){.t = V_BOOL, .i = 0}; /* a cast of a non-boolean is FALSE */
        }
        return 0;
    case N_AND:
    case N_OR: {
        /* left to right, as the nested binary LogicExpressions: AND stops at FALSE, OR at
         * TRUE; otherwise NULL if any side was NULL */
        int stop = n->kind == N_OR, saw_null = 0;
        for (int32_t k = n->l; k >= 0; k = q->nodes[k].next) {
            if (eval(q, k, c, &a))
                return -1;
            if (a.t != V_BOOL && a.t != V_NULL)
                return -1;
            if (a.t == V_BOOL && a.i == stop) {
                *v = a;
                return 0;
            }
            saw_null |= a.t == V_NULL;
        }
        *v = saw_null ? vnull : (struct val){.t = V_BOOL, .i = !stop};
        return 0;
    }
    case N_EQ:
        if (eval(q, n->l, c, &a) || eval(q, n->r, c, &b))
            return -1;
        if (a.t == V_NULL || b.t == V_NULL) { /* null = null is TRUE; null = x unknown */
            *v =
                a.t == V_NULL && b.t != V_NULL ? vnull : (struct val){.t = V_BOOL, .i = a.t == b.t};
            return 0;
        }
        if (mq_sql__compare(&a, &b, &cmp))
            return -1;
        *v = (struct val){.t = V_BOOL, .i = cmp == 0};
        return 0;
    case N_CMP:
        if (eval(q, n->l, c, &a))
            return -1;
        if (a.t == V_NULL) {
            *v = vnull;
            return 0;
        }
        if (eval(q, n->r, c, &b))
            return -1;
        if (b.t == V_NULL) {
            *v = vnull;
            return 0;
        }
        if (a.t == V_STR && b.t == V_STR) { /* two properties: both must be numbers */
            double x, y;
            if (parse_jdouble(a.s, a.n, &x) || parse_jdouble(b.s, b.n, &y))
                return -1;
            cmp = dcmp(x, y);
        } else if (mq_sql__compare(&a, &b, &cmp)) {
            return -1;
        }
        *v = (struct val){.t = V_BOOL};
        v->i = n->op == OP_LT   ? cmp < 0
               : n->op == OP_LE ? cmp <= 0
               : n->op == OP_GT ? cmp > 0
                                : cmp >= 0;
        return 0;
    case N_IN:
        if (eval(q, n->l, c, &a))
            return -1;
        if (a.t != V_STR) {
            *v = vnull;
            return 0;
        }
        *v = (struct val){.t = V_BOOL, .i = n->neg};
        for (int32_t k = 0; k < n->nlit; k++) {
            const struct val *s = &q->lits[n->lit + k];
            if (s->n == a.n && memcmp(s->s, a.s, a.n) == 0) {
                v->i = !n->neg;
                break;
            }
        }
        return 0;
    case N_STRF: {
        /* ContainsExpression and its kin: an empty search string, a missing or non-string
         * value are FALSE, for the NOT forms too */
        *v = (struct val){.t = V_BOOL, .i = 0};
        if (n->v.n == 0)
            return 0;
        if (eval(q, n->l, c, &a))
            return -1;
        if (a.t != V_STR)
            return 0;
        int hit = 0;
        const struct val *s = &n->v;
        c->work += a.n;
        if (s->n <= a.n) {
            if (n->op == OP_STARTSWITH)
                hit = memcmp(a.s, s->s, s->n) == 0;
            else if (n->op == OP_ENDSWITH)
                hit = memcmp(a.s + a.n - s->n, s->s, s->n) == 0;
            else /* memmem is linear: a naive search is (value × search string) per message */
                hit = memmem(a.s, a.n, s->s, s->n) != NULL;
        }
        v->i = hit ^ n->neg;
        return 0;
    }
    }
    return -1;
}

/* The value of the root as a result. */
static enum mq_sql_result eval_root(const struct mq_sql *q, struct ectx *c)
{
    struct val v;
    if (eval(q, q->root, c, &v))
        return MQ_SQL_ERROR;
    if (v.t == V_NULL)
        return MQ_SQL_NULL;
    if (v.t != V_BOOL)
        return MQ_SQL_ERROR;
    return v.i ? MQ_SQL_TRUE : MQ_SQL_FALSE;
}

#define STACK_SLOTS 16

/* Slots for q's names: buf when they fit, else the heap; NULL when out of memory (the
 * evaluation then looks each reference up, slower but the same answer). */
static struct val *slots_new(const struct mq_sql *q, struct val *buf)
{
    return q->nnames <= STACK_SLOTS ? buf : malloc(q->nnames * sizeof(*buf));
}

enum mq_sql_result mq_sql_eval(const struct mq_sql *q, mq_sql_get_fn get, void *arg)
{
    struct val buf[STACK_SLOTS], *slots = slots_new(q, buf);
    struct ectx c = {get, arg, slots, 0};
    for (size_t k = 0; slots && k < q->nnames; k++) {
        slots[k] = (struct val){.t = V_STR};
        if (get(arg, q->names[k].s, &slots[k].s, &slots[k].n))
            slots[k] = vnull;
    }
    enum mq_sql_result r = eval_root(q, &c);
    if (slots != buf)
        free(slots);
    return r;
}

struct props_arg {
    const char *props;
    size_t len;
};

struct props_fill {
    const struct mq_sql *q;
    struct val *slots;
};

/* One property of the message: its value goes to the slot of its name, if the expression has
 * it. A later duplicate overwrites an earlier one, as MessageDecoder.string2messageProperties
 * puts each into a HashMap. */
static int fill_cb(const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
    struct props_fill *f = arg;
    int32_t k = name_find(f->q, name, nlen);
    if (k >= 0)
        f->slots[k] = (struct val){.t = V_STR, .s = val, .n = vlen};
    return 0;
}

struct last_find {
    const char *name;
    size_t nlen;
    struct val out;
};

static int last_cb(const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
    struct last_find *f = arg;
    if (nlen == f->nlen && memcmp(name, f->name, nlen) == 0)
        f->out = (struct val){.t = V_STR, .s = val, .n = vlen};
    return 0;
}

/* The slow path's lookup (no memory for slots): the last property of that name. */
static int props_get(void *arg, const char *name, const char **val, size_t *vlen)
{
    const struct props_arg *pa = arg;
    struct last_find f = {name, strlen(name), {.t = V_NULL}};
    (void)mq_props_foreach(pa->props, pa->len, last_cb, &f);
    if (f.out.t == V_NULL)
        return -1;
    *val = f.out.s;
    *vlen = f.out.n;
    return 0;
}

int mq_sql_match_props(const struct mq_sql *q, const char *props, size_t len)
{
    size_t work = 0;
    return mq_sql_match_props_work(q, props, len, &work);
}

int mq_sql_match_props_work(const struct mq_sql *q, const char *props, size_t len, size_t *work)
{
    struct props_arg pa = {props ? props : "", props ? len : 0};
    struct val buf[STACK_SLOTS], *slots = slots_new(q, buf);
    struct ectx c = {props_get, &pa, slots, pa.len};
    if (slots) { /* one pass over the properties, whatever the number of references */
        for (size_t k = 0; k < q->nnames; k++)
            slots[k] = vnull;
        struct props_fill f = {q, slots};
        (void)mq_props_foreach(pa.props, pa.len, fill_cb, &f);
    }
    enum mq_sql_result r = eval_root(q, &c);
    if (slots != buf)
        free(slots);
    *work += c.work;
    return r == MQ_SQL_TRUE;
}
