/* mq_sql.c — RocketMQ's SQL92 message selector (see mq_sql.h): a lexer and a recursive-descent
 * parser following SelectorParser.jj rule by rule, building a tree in one node array, with the
 * checks RocketMQ makes at compile time (evaluation: mq_sql_eval.c). */
#include "common/mq_sql.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mq_sql_int.h"

/* ---- lexer ---- */

enum tok {
    T_EOF,
    T_ID,
    T_INT,
    T_FLOAT,
    T_STR,
    T_NOT,
    T_AND,
    T_OR,
    T_BETWEEN,
    T_IN,
    T_TRUE,
    T_FALSE,
    T_NULL,
    T_IS,
    T_CONTAINS,
    T_STARTSWITH,
    T_ENDSWITH,
    T_EQ,
    T_NE,
    T_GT,
    T_GE,
    T_LT,
    T_LE,
    T_LP,
    T_RP,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_BAD
};

static const struct {
    const char *word;
    enum tok t;
} keywords[] = {
    {"NOT", T_NOT},
    {"AND", T_AND},
    {"OR", T_OR},
    {"BETWEEN", T_BETWEEN},
    {"IN", T_IN},
    {"TRUE", T_TRUE},
    {"FALSE", T_FALSE},
    {"NULL", T_NULL},
    {"IS", T_IS},
    {"CONTAINS", T_CONTAINS},
    {"STARTSWITH", T_STARTSWITH},
    {"ENDSWITH", T_ENDSWITH},
};

struct token {
    enum tok t;
    size_t pos, len;
};

struct parser {
    const char *src;
    size_t len, pos; /* pos: after the current token */
    struct token cur;
    struct mq_sql *q;
    char *err;
    size_t errlen;
    int depth, rc;
};

static int fail(struct parser *p, int rc, const char *fmt, ...)
{
    if (p->rc)
        return p->rc;
    p->rc = rc;
    if (p->err && p->errlen) {
        int n = snprintf(p->err, p->errlen, "Invalid MessageSelector. ");
        va_list ap;
        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < p->errlen)
            vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int mq_sql__is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_idstart(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

/* Length of an exponent ("E" [+-] digits) at s, 0 when there is none. */
size_t mq_sql__exponent(const char *s, size_t n)
{
    size_t i = 0;
    if (i >= n || (s[i] != 'e' && s[i] != 'E'))
        return 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t d = i;
    while (i < n && mq_sql__is_digit(s[i]))
        i++;
    return i > d ? i : 0;
}

/* Skips white space and comments from *pos. -1 on an unterminated comment. */
static int skip_blank(const char *s, size_t n, size_t *pos)
{
    size_t i = *pos;
    for (;;) {
        if (i < n &&
            (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f')) {
            i++;
        } else if (i + 1 < n && s[i] == '-' && s[i + 1] == '-') {
            /* a line comment ends with a line break, as the grammar's LINE_COMMENT says */
            while (i < n && s[i] != '\n' && s[i] != '\r')
                i++;
            if (i >= n)
                return -1;
            i++;
        } else if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < n; j++)
                if (s[j] == '*' && s[j + 1] == '/') {
                    end = s + j;
                    break;
                }
            if (!end)
                return -1;
            i = (size_t)(end - s) + 2;
        } else {
            break;
        }
    }
    *pos = i;
    return 0;
}

/* The token at *pos (longest match, keywords before identifiers); *pos moves past it. */
static struct token lex(const char *s, size_t n, size_t *pos)
{
    struct token t = {T_BAD, *pos, 0};
    if (skip_blank(s, n, pos))
        return t;
    size_t i = t.pos = *pos;
    if (i >= n) {
        t.t = T_EOF;
        return t;
    }
    char c = s[i];
    if (mq_sql__is_digit(c) || (c == '.' && i + 1 < n && mq_sql__is_digit(s[i + 1]))) {
        size_t j = i;
        while (j < n && mq_sql__is_digit(s[j]))
            j++;
        if (j < n && s[j] == '.') {
            j++;
            while (j < n && mq_sql__is_digit(s[j]))
                j++;
            j += mq_sql__exponent(s + j, n - j);
            t.t = T_FLOAT;
        } else if (mq_sql__exponent(s + j, n - j)) {
            j += mq_sql__exponent(s + j, n - j);
            t.t = T_FLOAT;
        } else {
            t.t = T_INT; /* "0" | [1-9][0-9]* [lL]? */
            if (c == '0')
                j = i + 1;
            else if (j < n && (s[j] == 'l' || s[j] == 'L'))
                j++;
        }
        t.len = j - i;
    } else if (c == '\'') {
        size_t j = i + 1;
        for (;;) {
            if (j >= n)
                return t; /* unterminated: T_BAD */
            if (s[j] == '\'') {
                if (j + 1 < n && s[j + 1] == '\'') {
                    j += 2;
                    continue;
                }
                break;
            }
            j++;
        }
        t.t = T_STR;
        t.len = j + 1 - i;
    } else if (is_idstart(c)) {
        size_t j = i + 1;
        while (j < n && (is_idstart(s[j]) || mq_sql__is_digit(s[j])))
            j++;
        t.t = T_ID;
        t.len = j - i;
        for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++)
            if (strlen(keywords[k].word) == t.len &&
                strncasecmp(keywords[k].word, s + i, t.len) == 0)
                t.t = keywords[k].t;
    } else {
        int two = i + 1 < n;
        t.len = 1;
        if (c == '<' && two && s[i + 1] == '>')
            t.t = T_NE, t.len = 2;
        else if (c == '<' && two && s[i + 1] == '=')
            t.t = T_LE, t.len = 2;
        else if (c == '>' && two && s[i + 1] == '=')
            t.t = T_GE, t.len = 2;
        else
            t.t = c == '='   ? T_EQ
                  : c == '<' ? T_LT
                  : c == '>' ? T_GT
                  : c == '(' ? T_LP
                  : c == ')' ? T_RP
                  : c == ',' ? T_COMMA
                  : c == '+' ? T_PLUS
                  : c == '-' ? T_MINUS
                             : T_BAD;
    }
    *pos = i + t.len;
    return t;
}

static void advance(struct parser *p)
{
    p->cur = lex(p->src, p->len, &p->pos);
}

/* The token after the current one (the grammar's LOOKAHEAD(2)). */
static enum tok peek(const struct parser *p)
{
    size_t pos = p->pos;
    return lex(p->src, p->len, &pos).t;
}

static int unexpected(struct parser *p, const char *want)
{
    if (p->cur.t == T_BAD)
        return fail(p, -EINVAL,
                    "lexical error at column %zu (unterminated string or comment, "
                    "or a character outside the grammar)",
                    p->cur.pos + 1);
    if (p->cur.t == T_EOF)
        return fail(p, -EINVAL, "unexpected end of expression, expected %s", want);
    int shown = p->cur.len > 40 ? 40 : (int)p->cur.len;
    return fail(p, -EINVAL, "encountered \"%.*s\" at column %zu, expected %s", shown,
                p->src + p->cur.pos, p->cur.pos + 1, want);
}

/* ---- tree ---- */

static int32_t node_new(struct parser *p, enum nkind kind, int32_t l, int32_t r)
{
    struct mq_sql *q = p->q;
    if (p->rc)
        return -1;
    if (q->nnodes == q->capnodes) {
        size_t cap = q->capnodes ? q->capnodes * 2 : 16;
        struct node *nn = realloc(q->nodes, cap * sizeof(*nn));
        if (!nn)
            return fail(p, -ENOMEM, "out of memory"), -1;
        q->nodes = nn;
        q->capnodes = cap;
    }
    struct node *n = &q->nodes[q->nnodes];
    memset(n, 0, sizeof(*n));
    n->kind = (uint8_t)kind;
    n->l = l;
    n->r = r;
    n->next = n->last = -1;
    int d = 0;
    if (l >= 0)
        d = q->nodes[l].depth;
    if (r >= 0 && q->nodes[r].depth > d)
        d = q->nodes[r].depth;
    if (d + 1 > MQ_SQL_MAX_DEPTH)
        return fail(p, -E2BIG, "expression nested deeper than %d levels", MQ_SQL_MAX_DEPTH), -1;
    n->depth = (uint8_t)(d + 1);
    return (int32_t)q->nnodes++;
}

static struct node *nd(struct parser *p, int32_t i)
{
    return &p->q->nodes[i];
}

/* Java's BooleanExpression: what may stand where a condition is expected. */
static int is_boolean(const struct parser *p, int32_t i)
{
    const struct node *n = &p->q->nodes[i];
    switch (n->kind) {
    case N_CONST:
        return n->v.t == V_BOOL || n->v.t == V_NULL; /* TRUE, FALSE, NULL */
    case N_PROP:
    case N_NEG:
        return 0;
    default:
        return 1;
    }
}

/* SelectorParser.asBooleanExpression: a property becomes a boolean cast, anything else that
 * is not a condition is refused. */
static int32_t as_boolean(struct parser *p, int32_t i)
{
    if (i < 0 || p->rc)
        return -1;
    if (is_boolean(p, i))
        return i;
    if (nd(p, i)->kind == N_PROP)
        return node_new(p, N_CAST, i, -1);
    return fail(p, -EINVAL, "expression will not result in a boolean value (before column %zu)",
                p->cur.pos + 1),
           -1;
}

/* LogicExpression.createAND/createOR, kept as one list per run of the same operator. */
static int32_t logic(struct parser *p, enum nkind kind, int32_t l, int32_t r)
{
    if ((l = as_boolean(p, l)) < 0 || (r = as_boolean(p, r)) < 0)
        return -1;
    struct node *ln = nd(p, l);
    if (ln->kind != kind || ln->last < 0) {
        int32_t n = node_new(p, kind, l, -1);
        if (n < 0)
            return -1;
        nd(p, n)->last = l;
        ln = nd(p, n);
        l = n;
    }
    int d = nd(p, r)->depth + 1;
    if (d > MQ_SQL_MAX_DEPTH)
        return fail(p, -E2BIG, "expression nested deeper than %d levels", MQ_SQL_MAX_DEPTH), -1;
    ln = nd(p, l);
    if (d > ln->depth)
        ln->depth = (uint8_t)d;
    nd(p, ln->last)->next = r;
    ln->last = r;
    return l;
}

static const char *val_str(const struct val *v, char *buf, size_t len)
{
    switch (v->t) {
    case V_NULL:
        return "NULL";
    case V_BOOL:
        return v->i ? "TRUE" : "FALSE";
    case V_INT:
    case V_LONG:
        snprintf(buf, len, "%lld", (long long)v->i);
        return buf;
    case V_DOUBLE:
        snprintf(buf, len, "%g", v->d);
        return buf;
    case V_STR:
        snprintf(buf, len, "'%.*s'", v->n > 40 ? 40 : (int)v->n, v->s);
        return buf;
    }
    return "";
}

/* ComparisonExpression.checkLessThanOperand: only numbers, properties and negations. */
static int check_less_than_operand(struct parser *p, int32_t i)
{
    char buf[64];
    if (i < 0 || p->rc)
        return -1;
    const struct node *n = nd(p, i);
    if (n->kind == N_CONST && n->v.t != V_INT && n->v.t != V_LONG && n->v.t != V_DOUBLE)
        return fail(p, -EINVAL, "value %s cannot be compared with <, <=, >, >= or BETWEEN",
                    val_str(&n->v, buf, sizeof(buf)));
    if (n->kind != N_CONST && is_boolean(p, i))
        return fail(p, -EINVAL,
                    "a condition cannot be compared with <, <=, >, >= or BETWEEN "
                    "(before column %zu)",
                    p->cur.pos + 1);
    return 0;
}

static int32_t cmp_node(struct parser *p, int op, int32_t l, int32_t r)
{
    if (check_less_than_operand(p, l) || check_less_than_operand(p, r))
        return -1;
    int32_t n = node_new(p, N_CMP, l, r);
    if (n >= 0)
        nd(p, n)->op = (uint8_t)op;
    return n;
}

/* ComparisonExpression.createEqual (checkEqualOperand, checkEqualOperandCompatability). */
static int32_t eq_node(struct parser *p, int32_t l, int32_t r)
{
    if (l < 0 || r < 0 || p->rc)
        return -1;
    const struct node *ln = nd(p, l), *rn = nd(p, r);
    if ((ln->kind == N_CONST && ln->v.t == V_NULL) || (rn->kind == N_CONST && rn->v.t == V_NULL))
        return fail(p, -EINVAL, "NULL cannot be compared with = or <> (use IS NULL)"), -1;
    if (ln->kind == N_CONST && rn->kind == N_CONST && ln->v.t == V_BOOL && rn->v.t != V_BOOL)
        return fail(p, -EINVAL, "a boolean constant cannot be compared with a non-boolean one"), -1;
    return node_new(p, N_EQ, l, r);
}

/* A string literal at the current token, decoded ('' is one quote) into the string area. */
static int string_lit(struct parser *p, struct val *v)
{
    if (p->cur.t != T_STR)
        return unexpected(p, "a string literal");
    const char *s = p->src + p->cur.pos + 1;
    size_t n = p->cur.len - 2;
    char *o = p->q->strs + p->q->nstrs, *start = o;
    for (size_t i = 0; i < n; i++) {
        *o++ = s[i];
        if (s[i] == '\'')
            i++;
    }
    *o++ = '\0';
    *v = (struct val){.t = V_STR, .s = start, .n = (size_t)(o - start - 1)};
    p->q->nstrs += (size_t)(o - start);
    advance(p);
    return 0;
}

static int32_t or_expr(struct parser *p);
static int32_t unary_expr(struct parser *p);

static int32_t literal_or_var(struct parser *p)
{
    struct val v = {.t = V_NULL};
    char num[64];
    const char *s = p->src + p->cur.pos;
    size_t n = p->cur.len;
    switch (p->cur.t) {
    case T_STR:
        if (string_lit(p, &v))
            return -1;
        break;
    case T_INT: {
        if (s[n - 1] == 'l' || s[n - 1] == 'L')
            n--;
        errno = 0;
        snprintf(num, sizeof(num), "%.*s", (int)(n < 63 ? n : 63), s);
        long long x = n < 63 ? strtoll(num, NULL, 10) : 0;
        if (n >= 63 || errno == ERANGE)
            return fail(p, -EINVAL, "integer %.*s at column %zu is out of the range of a long",
                        (int)(n < 40 ? n : 40), s, p->cur.pos + 1),
                   -1;
        v.t = (x >= INT32_MIN && x <= INT32_MAX) ? V_INT : V_LONG; /* createFromDecimal */
        v.i = x;
        advance(p);
        break;
    }
    case T_FLOAT:
        if (n >= sizeof(num))
            return fail(p, -EINVAL, "decimal literal at column %zu is too long", p->cur.pos + 1),
                   -1;
        snprintf(num, sizeof(num), "%.*s", (int)n, s);
        v.t = V_DOUBLE;
        v.d = strtod(num, NULL);
        /* ConstantExpression.createFloat refuses what exceeds Double.MAX_VALUE and what is
         * below Double.MIN_VALUE (the smallest positive double), so 0.0 as well */
        if (!(v.d <= DBL_MAX))
            return fail(p, -EINVAL, "%s is greater than the largest double", num), -1;
        if (v.d < DBL_TRUE_MIN)
            return fail(p, -EINVAL, "%s is less than the smallest positive double", num), -1;
        advance(p);
        break;
    case T_TRUE:
    case T_FALSE:
        v.t = V_BOOL;
        v.i = p->cur.t == T_TRUE;
        advance(p);
        break;
    case T_NULL:
        advance(p);
        break;
    case T_ID: {
        int32_t i = node_new(p, N_PROP, -1, -1);
        if (i < 0)
            return -1;
        char *o = p->q->strs + p->q->nstrs;
        memcpy(o, s, n);
        o[n] = '\0';
        p->q->nstrs += n + 1;
        nd(p, i)->v = (struct val){.t = V_STR, .s = o, .n = n};
        advance(p);
        return i;
    }
    case T_LP: {
        advance(p);
        int32_t i = or_expr(p);
        if (i < 0)
            return -1;
        if (p->cur.t != T_RP)
            return unexpected(p, "\")\""), -1;
        advance(p);
        return i;
    }
    default:
        return unexpected(p, "a literal, a property name or \"(\""), -1;
    }
    int32_t i = node_new(p, N_CONST, -1, -1);
    if (i >= 0)
        nd(p, i)->v = v;
    return i;
}

static int32_t unary_expr(struct parser *p)
{
    if (++p->depth > MQ_SQL_MAX_DEPTH)
        return fail(p, -E2BIG, "expression nested deeper than %d levels", MQ_SQL_MAX_DEPTH), -1;
    int32_t r;
    enum tok t = p->cur.t;
    if (t == T_PLUS || t == T_MINUS || t == T_NOT) {
        advance(p);
        r = unary_expr(p);
        if (t == T_MINUS && r >= 0)
            r = node_new(p, N_NEG, r, -1);
        else if (t == T_NOT && r >= 0 && (r = as_boolean(p, r)) >= 0)
            r = node_new(p, N_NOT, r, -1);
    } else {
        r = literal_or_var(p);
    }
    p->depth--;
    return p->rc ? -1 : r;
}

static int32_t in_list(struct parser *p, int32_t l, int neg)
{
    if (nd(p, l)->kind != N_PROP)
        return fail(p, -EINVAL, "IN needs a property on its left (column %zu)", p->cur.pos + 1), -1;
    advance(p); /* IN */
    if (p->cur.t != T_LP)
        return unexpected(p, "\"(\""), -1;
    advance(p);
    int32_t i = node_new(p, N_IN, l, -1);
    if (i < 0)
        return -1;
    nd(p, i)->neg = (uint8_t)neg;
    nd(p, i)->lit = (int32_t)p->q->nlits;
    for (;;) {
        struct val v;
        if (string_lit(p, &v))
            return -1;
        struct mq_sql *q = p->q;
        if (q->nlits == q->caplits) {
            size_t cap = q->caplits ? q->caplits * 2 : 8;
            struct val *nl = realloc(q->lits, cap * sizeof(*nl));
            if (!nl)
                return fail(p, -ENOMEM, "out of memory"), -1;
            q->lits = nl;
            q->caplits = cap;
        }
        q->lits[q->nlits++] = v;
        nd(p, i)->nlit++;
        if (p->cur.t == T_RP)
            break;
        if (p->cur.t != T_COMMA)
            return unexpected(p, "\",\" or \")\""), -1;
        advance(p);
    }
    advance(p);
    return i;
}

/* comparisonExpression: unaryExpr ( > >= < <= [NOT] BETWEEN [NOT] IN [NOT] CONTAINS ... )* */
static int32_t comparison_expr(struct parser *p)
{
    int32_t l = unary_expr(p);
    while (l >= 0) {
        enum tok t = p->cur.t;
        int neg = 0;
        if (t == T_NOT) {
            enum tok t2 = peek(p);
            if (t2 != T_BETWEEN && t2 != T_IN && t2 != T_CONTAINS && t2 != T_STARTSWITH &&
                t2 != T_ENDSWITH)
                break;
            advance(p);
            neg = 1;
            t = t2;
        }
        if (t == T_GT || t == T_GE || t == T_LT || t == T_LE) {
            advance(p);
            int op = t == T_GT ? OP_GT : t == T_GE ? OP_GE : t == T_LT ? OP_LT : OP_LE;
            l = cmp_node(p, op, l, unary_expr(p));
        } else if (t == T_BETWEEN) {
            advance(p);
            int32_t lo = unary_expr(p);
            if (lo >= 0 && p->cur.t != T_AND)
                return unexpected(p, "AND"), -1;
            advance(p);
            int32_t hi = lo >= 0 ? unary_expr(p) : -1;
            if (hi < 0)
                return -1;
            const struct node *a = nd(p, lo), *b = nd(p, hi);
            if (!neg && a->kind == N_CONST && b->kind == N_CONST) { /* createBetween's check */
                int c;
                if (a->v.t == V_NULL || b->v.t == V_NULL)
                    return fail(p, -EINVAL, "the bounds of BETWEEN cannot be NULL"), -1;
                if (mq_sql__compare(&b->v, &a->v, &c) == 0 && c < 0)
                    return fail(p, -EINVAL,
                                "the lower bound of BETWEEN must not exceed the "
                                "upper one"),
                           -1;
            }
            /* BETWEEN is >= AND <=; NOT BETWEEN is < OR > (the operand is shared) */
            int32_t x = cmp_node(p, neg ? OP_LT : OP_GE, l, lo);
            int32_t y = x >= 0 ? cmp_node(p, neg ? OP_GT : OP_LE, l, hi) : -1;
            l = y >= 0 ? logic(p, neg ? N_OR : N_AND, x, y) : -1;
        } else if (t == T_IN) {
            l = in_list(p, l, neg);
        } else if (t == T_CONTAINS || t == T_STARTSWITH || t == T_ENDSWITH) {
            advance(p);
            struct val v;
            if (string_lit(p, &v))
                return -1;
            int32_t i = node_new(p, N_STRF, l, -1);
            if (i >= 0) {
                nd(p, i)->op = t == T_CONTAINS     ? OP_CONTAINS
                               : t == T_STARTSWITH ? OP_STARTSWITH
                                                   : OP_ENDSWITH;
                nd(p, i)->neg = (uint8_t)neg;
                nd(p, i)->v = v;
            }
            l = i;
        } else {
            break;
        }
    }
    return p->rc ? -1 : l;
}

/* equalityExpression: comparisonExpression ( = <> IS NULL, IS NOT NULL )* */
static int32_t equality_expr(struct parser *p)
{
    int32_t l = comparison_expr(p);
    while (l >= 0) {
        enum tok t = p->cur.t;
        if (t == T_EQ || t == T_NE) {
            advance(p);
            l = eq_node(p, l, comparison_expr(p));
            if (t == T_NE && l >= 0)
                l = node_new(p, N_NOT, l, -1);
        } else if (t == T_IS) {
            advance(p);
            int neg = p->cur.t == T_NOT;
            if (neg)
                advance(p);
            if (p->cur.t != T_NULL)
                return unexpected(p, neg ? "NULL" : "NULL or NOT NULL"), -1;
            advance(p);
            int32_t c = node_new(p, N_CONST, -1, -1); /* v is NULL */
            l = c >= 0 ? node_new(p, N_EQ, l, c) : -1;
            if (neg && l >= 0)
                l = node_new(p, N_NOT, l, -1);
        } else {
            break;
        }
    }
    return p->rc ? -1 : l;
}

static int32_t and_expr(struct parser *p)
{
    int32_t l = equality_expr(p);
    while (l >= 0 && p->cur.t == T_AND) {
        advance(p);
        l = logic(p, N_AND, l, equality_expr(p));
    }
    return p->rc ? -1 : l;
}

static int32_t or_expr(struct parser *p)
{
    int32_t l = and_expr(p);
    while (l >= 0 && p->cur.t == T_OR) {
        advance(p);
        l = logic(p, N_OR, l, and_expr(p));
    }
    return p->rc ? -1 : l;
}

size_t mq_sql_bytes(const struct mq_sql *q)
{
    return sizeof(*q) + q->capnodes * sizeof(*q->nodes) + q->caplits * sizeof(*q->lits) +
           q->capstrs + q->nnames * sizeof(*q->names) + (q->hmask + 1) * sizeof(*q->htab);
}

void mq_sql_free(struct mq_sql *q)
{
    if (!q)
        return;
    free(q->nodes);
    free(q->lits);
    free(q->strs);
    free(q->names);
    free(q->htab);
    free(q);
}

int mq_sql_compile(const char *expr, size_t len, struct mq_sql **out, char *err, size_t errlen)
{
    struct parser p = {
        .src = expr ? expr : "", .len = expr ? len : 0, .err = err, .errlen = errlen};
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (p.len > MQ_SQL_MAX_LEN)
        return fail(&p, -E2BIG, "expression longer than %d bytes", MQ_SQL_MAX_LEN);
    if (!(p.q = calloc(1, sizeof(*p.q))) || !(p.q->strs = malloc(p.q->capstrs = 2 * p.len + 2))) {
        mq_sql_free(p.q);
        return -ENOMEM;
    }
    advance(&p);
    int32_t root = or_expr(&p);
    if (root >= 0 && p.cur.t != T_EOF)
        unexpected(&p, "AND, OR or the end of the expression");
    if (root >= 0 && !p.rc)
        root = as_boolean(&p, root);
    if (!p.rc && root >= 0 && mq_sql__index_names(p.q))
        p.rc = -ENOMEM;
    if (p.rc || root < 0) {
        mq_sql_free(p.q);
        return p.rc ? p.rc : -EINVAL;
    }
    /* a cache keeps it: the arrays down to the sizes used (they grew by doubling; strs stays,
     * the values point into it) */
    struct mq_sql *q = p.q;
    struct node *nn = realloc(q->nodes, q->nnodes * sizeof(*nn));
    if (nn)
        q->nodes = nn, q->capnodes = q->nnodes;
    if (q->nlits) {
        struct val *nl = realloc(q->lits, q->nlits * sizeof(*nl));
        if (nl)
            q->lits = nl, q->caplits = q->nlits;
    }
    q->root = root;
    *out = q;
    return 0;
}
