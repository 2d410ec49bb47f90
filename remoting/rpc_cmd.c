/* rpc_cmd.c — the RemotingCommand struct: allocation, the string arena behind remark and
 * extFields, typed extFields accessors, body ownership, language and request-code names.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remoting/remoting_int.h"

#define ARENA_MAX (UINT32_MAX / 2)

/* A command and the first part of its arena in one allocation: a send's header, or the reply
 * to one, needs no other block (the arena and the ext table move out only when they grow). */
#define INLINE_EXT  16
#define INLINE_STRS 256

struct cmd_block {
    struct rpc_cmd c;
    struct rpc_ext ext[INLINE_EXT];
    char strs[INLINE_STRS];
};

size_t rpc__cmd_block_size(void)
{
    return sizeof(struct cmd_block);
}

static int strs_inline(const struct rpc_cmd *cmd)
{
    return cmd->strs == ((struct cmd_block *)cmd)->strs;
}

static int ext_inline(const struct rpc_cmd *cmd)
{
    return cmd->ext == ((struct cmd_block *)cmd)->ext;
}

struct rpc_cmd *rpc_cmd_new(int32_t code)
{
    struct cmd_block *b = malloc(sizeof(*b));
    if (!b)
        return NULL;
    struct rpc_cmd *c = &b->c;
    memset(c, 0, sizeof(*c));
    c->code = code;
    c->language = RPC_LANG_CPP;
    c->version = RPC_VERSION_DEFAULT;
    c->serialize = RPC_SER_ROCKETMQ;
    c->ext = b->ext;
    c->ext_cap = INLINE_EXT;
    c->strs = b->strs;
    c->strs_cap = INLINE_STRS;
    return c;
}

struct rpc_cmd *rpc_cmd_new_response(const struct rpc_cmd *req, int32_t code, const char *remark)
{
    struct rpc_cmd *c = rpc_cmd_new(code);
    if (!c)
        return NULL;
    c->opaque = req->opaque;
    c->serialize = req->serialize;
    c->flag = RPC_FLAG_RESPONSE;
    if (remark && rpc_cmd_set_remark(c, remark) != 0) {
        rpc_cmd_free(c);
        return NULL;
    }
    return c;
}

void rpc__cmd_release_body(struct rpc_cmd *cmd)
{
    if (cmd->body_release)
        cmd->body_release(cmd->body_release_arg);
    cmd->body_release = NULL;
    cmd->body_release_arg = NULL;
    cmd->body = NULL;
    cmd->body_len = 0;
    cmd->segs = NULL;
    cmd->nsegs = 0;
}

void rpc_cmd_free(struct rpc_cmd *cmd)
{
    if (!cmd)
        return;
    rpc__cmd_release_body(cmd);
    if (!ext_inline(cmd))
        free(cmd->ext);
    if (!strs_inline(cmd))
        free(cmd->strs);
    free(cmd);
}

struct rpc_cmd *rpc_cmd_clone(const struct rpc_cmd *cmd)
{
    struct rpc_cmd *c = rpc_cmd_new(cmd->code);
    if (!c)
        return NULL;
    c->language = cmd->language;
    c->version = cmd->version;
    c->opaque = cmd->opaque;
    c->flag = cmd->flag;
    c->serialize = cmd->serialize;
    c->remark = cmd->remark;
    if (rpc__cmd_reserve(c, cmd->strs_len, cmd->ext_n) != 0)
        goto fail;
    memcpy(c->strs, cmd->strs, cmd->strs_len);
    c->strs_len = cmd->strs_len;
    memcpy(c->ext, cmd->ext, cmd->ext_n * sizeof(*c->ext));
    c->ext_n = cmd->ext_n;
    if (cmd->body && rpc_cmd_set_body_copy(c, cmd->body, cmd->body_len) != 0)
        goto fail;
    if (cmd->nsegs) {
        uint8_t *flat = malloc(cmd->body_len ? cmd->body_len : 1);
        if (!flat)
            goto fail;
        rpc__segs_copy(cmd->segs, cmd->nsegs, flat);
        rpc_cmd_take_body(c, flat, cmd->body_len);
    }
    return c;
fail:
    rpc_cmd_free(c);
    return NULL;
}

int rpc__cmd_reserve(struct rpc_cmd *cmd, size_t extra, size_t entries)
{
    if (extra > ARENA_MAX || cmd->strs_len + extra > ARENA_MAX)
        return -ENOMEM;
    if (cmd->strs_len + extra > cmd->strs_cap) {
        size_t cap = cmd->strs_cap;
        while (cap < cmd->strs_len + extra)
            cap *= 2;
        char *p;
        if (strs_inline(cmd)) {
            if ((p = malloc(cap)) != NULL)
                memcpy(p, cmd->strs, cmd->strs_len);
        } else {
            p = realloc(cmd->strs, cap);
        }
        if (!p)
            return -ENOMEM;
        cmd->strs = p;
        cmd->strs_cap = (uint32_t)cap;
    }
    if (entries > ARENA_MAX / sizeof(struct rpc_ext) || cmd->ext_n + entries > ARENA_MAX / 16)
        return -ENOMEM;
    if (cmd->ext_n + entries > cmd->ext_cap) {
        size_t cap = cmd->ext_cap;
        while (cap < cmd->ext_n + entries)
            cap *= 2;
        struct rpc_ext *e;
        if (ext_inline(cmd)) {
            if ((e = malloc(cap * sizeof(*e))) != NULL)
                memcpy(e, cmd->ext, cmd->ext_n * sizeof(*e));
        } else {
            e = realloc(cmd->ext, cap * sizeof(*e));
        }
        if (!e)
            return -ENOMEM;
        cmd->ext = e;
        cmd->ext_cap = (uint32_t)cap;
    }
    return 0;
}

int rpc__str_add(struct rpc_cmd *cmd, const char *s, size_t n, uint32_t *off)
{
    int rc = rpc__cmd_reserve(cmd, n + 1, 0);
    if (rc)
        return rc;
    *off = cmd->strs_len;
    if (n)
        memcpy(cmd->strs + cmd->strs_len, s, n);
    cmd->strs[cmd->strs_len + n] = '\0';
    cmd->strs_len += (uint32_t)(n + 1);
    return 0;
}

int rpc__ext_append(struct rpc_cmd *cmd, const char *k, size_t kn, const char *v, size_t vn)
{
    int rc = rpc__cmd_reserve(cmd, kn + vn + 2, 1);
    if (rc)
        return rc;
    char *w = cmd->strs + cmd->strs_len;
    memcpy(w, k, kn);
    w[kn] = '\0';
    memcpy(w + kn + 1, v, vn);
    w[kn + 1 + vn] = '\0';
    struct rpc_ext *e = &cmd->ext[cmd->ext_n++];
    e->key = cmd->strs_len;
    e->val = cmd->strs_len + (uint32_t)kn + 1;
    e->klen = (uint32_t)kn;
    e->vlen = (uint32_t)vn;
    cmd->strs_len += (uint32_t)(kn + vn + 2);
    return 0;
}

int rpc_cmd_ext_addn(struct rpc_cmd *cmd, const char *key, size_t klen, const char *val,
                     size_t vlen)
{
    if (!key || !val || klen > ARENA_MAX || vlen > ARENA_MAX)
        return -EINVAL;
    return rpc__ext_append(cmd, key, klen, val, vlen);
}

const char *rpc_cmd_remark(const struct rpc_cmd *cmd)
{
    return cmd->remark ? cmd->strs + cmd->remark - 1 : NULL;
}

int rpc_cmd_set_remark(struct rpc_cmd *cmd, const char *remark)
{
    uint32_t off;
    if (!remark) {
        cmd->remark = 0;
        return 0;
    }
    int rc = rpc__str_add(cmd, remark, strlen(remark), &off);
    if (rc)
        return rc;
    cmd->remark = off + 1;
    return 0;
}

int rpc_cmd_set_remarkf(struct rpc_cmd *cmd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return rpc_cmd_set_remark(cmd, buf);
}

const char *rpc_cmd_ext_key(const struct rpc_cmd *cmd, uint32_t i)
{
    return i < cmd->ext_n ? cmd->strs + cmd->ext[i].key : NULL;
}

const char *rpc_cmd_ext_val(const struct rpc_cmd *cmd, uint32_t i)
{
    return i < cmd->ext_n ? cmd->strs + cmd->ext[i].val : NULL;
}

static int ext_find(const struct rpc_cmd *cmd, const char *key)
{
    for (uint32_t i = cmd->ext_n; i-- > 0;) {
        const char *k = cmd->strs + cmd->ext[i].key;
        if (k[0] == key[0] && strcmp(k, key) == 0)
            return (int)i;
    }
    return -1;
}

const char *rpc_cmd_ext_get(const struct rpc_cmd *cmd, const char *key)
{
    int i = ext_find(cmd, key);
    return i < 0 ? NULL : cmd->strs + cmd->ext[i].val;
}

int rpc_i64_parse(const char *v, int64_t *out)
{
    /* Java's Long.parseLong: an optional sign, then digits only (strtoll would also take
     * leading spaces, and costs a locale lookup per call: a send's header has five). */
    const char *p = v + (*v == '-' || *v == '+');
    int neg = *v == '-';
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, u = 0;
    const char *digits = p;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (u > lim / 10 || (u == lim / 10 && d > lim % 10))
            return -EINVAL;
        u = u * 10 + d;
    }
    if (p == digits || *p != '\0')
        return -EINVAL;
    *out = neg && u ? -(int64_t)(u - 1) - 1 : (int64_t)u;
    return 0;
}

int rpc_cmd_ext_get_int64(const struct rpc_cmd *cmd, const char *key, int64_t *out)
{
    const char *v = rpc_cmd_ext_get(cmd, key);
    return v ? rpc_i64_parse(v, out) : -ENOENT;
}

int rpc_cmd_ext_get_int32(const struct rpc_cmd *cmd, const char *key, int32_t *out)
{
    int64_t v;
    int rc = rpc_cmd_ext_get_int64(cmd, key, &v);
    if (rc)
        return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return -EINVAL;
    *out = (int32_t)v;
    return 0;
}

int rpc_cmd_ext_get_bool(const struct rpc_cmd *cmd, const char *key, int *out)
{
    const char *v = rpc_cmd_ext_get(cmd, key);
    if (!v)
        return -ENOENT;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

int rpc_cmd_ext_set(struct rpc_cmd *cmd, const char *key, const char *val)
{
    if (!key || !val)
        return -EINVAL;
    int i = ext_find(cmd, key);
    if (i >= 0) {
        uint32_t vo;
        size_t vn = strlen(val);
        int rc = rpc__str_add(cmd, val, vn, &vo);
        if (rc)
            return rc;
        cmd->ext[i].val = vo;
        cmd->ext[i].vlen = (uint32_t)vn;
        return 0;
    }
    return rpc__ext_append(cmd, key, strlen(key), val, strlen(val));
}

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324"
                                  "25262728293031323334353637383940414243444546474849"
                                  "50515253545556575859606162636465666768697071727374"
                                  "75767778798081828384858687888990919293949596979899";

const char *rpc_i64_text(int64_t v, char buf[24])
{
    char *p = buf + 23;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    *p = 0;
    while (u >= 100) { /* two digits per division: a timestamp has 13 */
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--p = digit_pairs[d + 1];
        *--p = digit_pairs[d];
    }
    if (u >= 10) {
        *--p = digit_pairs[u * 2 + 1];
        *--p = digit_pairs[u * 2];
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0)
        *--p = '-';
    return p;
}

int rpc_cmd_ext_set_int64(struct rpc_cmd *cmd, const char *key, int64_t val)
{
    char buf[24];
    return rpc_cmd_ext_set(cmd, key, rpc_i64_text(val, buf));
}

int rpc_cmd_ext_set_bool(struct rpc_cmd *cmd, const char *key, int val)
{
    return rpc_cmd_ext_set(cmd, key, val ? "true" : "false");
}

int rpc_cmd_set_body_copy(struct rpc_cmd *cmd, const void *p, size_t len)
{
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, p, len);
    rpc_cmd_take_body(cmd, copy, len);
    return 0;
}

void rpc_cmd_set_body_ref(struct rpc_cmd *cmd, const void *p, size_t len,
                          void (*release)(void *arg), void *arg)
{
    rpc__cmd_release_body(cmd);
    cmd->body = p;
    cmd->body_len = len;
    cmd->body_release = release;
    cmd->body_release_arg = arg;
}

void rpc_cmd_set_body_segs(struct rpc_cmd *cmd, const struct rpc_seg *segs, uint32_t n,
                           void (*release)(void *arg), void *arg)
{
    rpc__cmd_release_body(cmd);
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += segs[i].len;
    cmd->segs = n ? segs : NULL;
    cmd->nsegs = n;
    cmd->body_len = total;
    cmd->body_release = release;
    cmd->body_release_arg = arg;
}

size_t rpc__segs_copy(const struct rpc_seg *segs, uint32_t n, uint8_t *dst)
{
    size_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(dst + pos, segs[i].p, segs[i].len);
        pos += segs[i].len;
    }
    return pos;
}

void rpc_cmd_take_body(struct rpc_cmd *cmd, void *p, size_t len)
{
    rpc_cmd_set_body_ref(cmd, p, len, free, p);
}

/* LanguageCode (remoting/protocol/LanguageCode.java), by ordinal. */
static const char *const lang_names[RPC_LANG_COUNT_] = {
    "JAVA", "CPP",   "DOTNET", "PYTHON", "DELPHI", "ERLANG",
    "RUBY", "OTHER", "HTTP",   "GO",     "PHP",    "OMS",
};

const char *rpc_lang_name(int lang)
{
    return lang >= 0 && lang < RPC_LANG_COUNT_ ? lang_names[lang] : "OTHER";
}

int rpc_lang_from_name(const char *name, size_t len)
{
    for (int i = 0; i < RPC_LANG_COUNT_; i++)
        if (strlen(lang_names[i]) == len && memcmp(lang_names[i], name, len) == 0)
            return i;
    return -EINVAL;
}

/* RequestCode.java names for the codes this project speaks (FORMATS.md Part 2). */
static const struct {
    int32_t code;
    const char *name;
} code_names[] = {
    {10, "SEND_MESSAGE"},
    {11, "PULL_MESSAGE"},
    {12, "QUERY_MESSAGE"},
    {13, "QUERY_BROKER_OFFSET"},
    {14, "QUERY_CONSUMER_OFFSET"},
    {15, "UPDATE_CONSUMER_OFFSET"},
    {17, "UPDATE_AND_CREATE_TOPIC"},
    {21, "GET_ALL_TOPIC_CONFIG"},
    {28, "GET_BROKER_RUNTIME_INFO"},
    {29, "SEARCH_OFFSET_BY_TIMESTAMP"},
    {30, "GET_MAX_OFFSET"},
    {31, "GET_MIN_OFFSET"},
    {32, "GET_EARLIEST_MSG_STORETIME"},
    {33, "VIEW_MESSAGE_BY_ID"},
    {34, "HEART_BEAT"},
    {35, "UNREGISTER_CLIENT"},
    {36, "CONSUMER_SEND_MSG_BACK"},
    {37, "END_TRANSACTION"},
    {38, "GET_CONSUMER_LIST_BY_GROUP"},
    {40, "NOTIFY_CONSUMER_IDS_CHANGED"},
    {41, "LOCK_BATCH_MQ"},
    {42, "UNLOCK_BATCH_MQ"},
    {46, "CHECK_CLIENT_CONFIG"},
    {100, "PUT_KV_CONFIG"},
    {101, "GET_KV_CONFIG"},
    {102, "DELETE_KV_CONFIG"},
    {103, "REGISTER_BROKER"},
    {104, "UNREGISTER_BROKER"},
    {105, "GET_ROUTEINFO_BY_TOPIC"},
    {106, "GET_BROKER_CLUSTER_INFO"},
    {200, "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP"},
    {201, "GET_ALL_SUBSCRIPTIONGROUP_CONFIG"},
    {202, "GET_TOPIC_STATS_INFO"},
    {203, "GET_CONSUMER_CONNECTION_LIST"},
    {206, "GET_ALL_TOPIC_LIST_FROM_NAMESERVER"},
    {207, "DELETE_SUBSCRIPTIONGROUP"},
    {208, "GET_CONSUME_STATS"},
    {215, "DELETE_TOPIC_IN_BROKER"},
    {216, "DELETE_TOPIC_IN_NAMESRV"},
    {217, "GET_KV_CONFIG_BY_VALUE"},
    {219, "GET_KVLIST_BY_NAMESPACE"},
    {224, "GET_TOPICS_BY_CLUSTER"},
    {300, "QUERY_TOPIC_CONSUME_BY_WHO"},
    {310, "SEND_MESSAGE_V2"},
    {320, "SEND_BATCH_MESSAGE"},
    {322, "QUERY_DATA_VERSION"},
};

const char *rpc_code_name(int32_t code)
{
    for (size_t i = 0; i < sizeof(code_names) / sizeof(code_names[0]); i++)
        if (code_names[i].code == code)
            return code_names[i].name;
    return "UNKNOWN";
}
