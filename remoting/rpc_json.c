/* rpc_json.c — the JSON header serialization (RemotingSerializable / fastjson, what stock Java
 * and Node clients send; docs/FORMATS.md Part 2, "JSON header") and JSON bodies with
 * fastjson's bare integer map keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_bytes.h"
#include "remoting/remoting_int.h"

#define JSON_MAX_DEPTH 256

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Quotes fastjson's bare integer object keys ({0:"a"} -> {"0":"a"}). Returns 0 with *fixed
 * NULL when nothing needed quoting, 0 with a malloc()ed copy in *fixed and *fixed_len, or -EBADMSG
 * (nesting too deep) / -ENOMEM. Strings are skipped with their escapes; anything else is left
 * for the JSON parser to judge. */
static int quote_bare_keys(const char *s, size_t n, char **fixed, size_t *fixed_len)
{
    char stack[JSON_MAX_DEPTH];
    int depth = 0, want_key = 0;
    size_t copied = 0;
    struct mq_buf b;
    mq_buf_init(&b);
    *fixed = NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            want_key = 0;
            continue;
        }
        if (is_space(c))
            continue;
        if (c == '{' || c == '[') {
            if (depth == JSON_MAX_DEPTH)
                goto bad;
            stack[depth++] = c;
            want_key = c == '{';
            continue;
        }
        if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
            want_key = 0;
            continue;
        }
        if (c == ',') {
            want_key = depth > 0 && stack[depth - 1] == '{';
            continue;
        }
        if (want_key && (c == '-' || (c >= '0' && c <= '9'))) {
            size_t j = i;
            while (j < n && (s[j] == '-' || (s[j] >= '0' && s[j] <= '9')))
                j++;
            if (mq_buf_append(&b, s + copied, i - copied) || mq_buf_append(&b, "\"", 1) ||
                mq_buf_append(&b, s + i, j - i) || mq_buf_append(&b, "\"", 1))
                goto nomem;
            copied = j;
            i = j - 1;
        }
        want_key = 0;
    }
    if (b.data) {
        if (mq_buf_append(&b, s + copied, n - copied))
            goto nomem;
        *fixed = (char *)mq_buf_steal(&b, fixed_len);
    }
    return 0;
bad:
    mq_buf_destroy(&b);
    return -EBADMSG;
nomem:
    mq_buf_destroy(&b);
    return -ENOMEM;
}

json_t *rpc_json_loads(const void *p, size_t len)
{
    char *fixed = NULL;
    size_t flen = 0;
    if (quote_bare_keys(p, len, &fixed, &flen) != 0)
        return NULL;
    json_error_t err;
    json_t *v = fixed ? json_loadb(fixed, flen, 0, &err) : json_loadb(p, len, 0, &err);
    free(fixed);
    return v;
}

int rpc_cmd_set_body_json(struct rpc_cmd *cmd, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return -ENOMEM;
    rpc_cmd_take_body(cmd, s, strlen(s));
    return 0;
}

/* Text of a scalar extFields value written by fastjson without quotes. */
static int ext_value_text(json_t *v, char *buf, size_t cap, const char **text, size_t *n,
                          char **heap)
{
    *heap = NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *text = json_string_value(v);
        *n = json_string_length(v);
        return 0;
    case JSON_INTEGER:
        *n = (size_t)snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        *n = (size_t)snprintf(buf, cap, "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        *n = (size_t)snprintf(buf, cap, "true");
        break;
    case JSON_FALSE:
        *n = (size_t)snprintf(buf, cap, "false");
        break;
    case JSON_NULL:
        return 1; /* skipped: fastjson never writes nulls, Java would drop them */
    default:
        *heap = json_dumps(v, JSON_COMPACT);
        if (!*heap)
            return -ENOMEM;
        *text = *heap;
        *n = strlen(*heap);
        return 0;
    }
    *text = buf;
    return 0;
}

static int int_field(json_t *o, const char *name, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return -EBADMSG;
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return -EBADMSG;
    *out = x;
    return 0;
}

int rpc_header_decode_json(const uint8_t *p, size_t len, struct rpc_cmd *cmd)
{
    int rc = -EBADMSG;
    json_t *root = rpc_json_loads(p, len);
    if (!root || !json_is_object(root))
        goto out;
    int64_t code = 0, version = 0, opaque = 0, flag = 0;
    if (int_field(root, "code", INT32_MIN, INT32_MAX, &code) ||
        int_field(root, "version", INT16_MIN, INT16_MAX, &version) ||
        int_field(root, "opaque", INT32_MIN, INT32_MAX, &opaque) ||
        int_field(root, "flag", INT32_MIN, INT32_MAX, &flag))
        goto out;
    cmd->code = (int32_t)code;
    cmd->version = (int16_t)version;
    cmd->opaque = (int32_t)opaque;
    cmd->flag = (int32_t)flag;
    cmd->language = RPC_LANG_JAVA;
    json_t *lang = json_object_get(root, "language");
    if (json_is_string(lang)) {
        int l = rpc_lang_from_name(json_string_value(lang), json_string_length(lang));
        cmd->language = (uint8_t)(l < 0 ? RPC_LANG_OTHER : l);
    } else if (json_is_integer(lang)) {
        json_int_t l = json_integer_value(lang);
        cmd->language = (uint8_t)(l >= 0 && l < RPC_LANG_COUNT_ ? l : RPC_LANG_OTHER);
    }
    json_t *remark = json_object_get(root, "remark");
    if (json_is_string(remark)) {
        uint32_t off;
        rc = rpc__str_add(cmd, json_string_value(remark), json_string_length(remark), &off);
        if (rc)
            goto out;
        cmd->remark = off + 1;
    } else if (remark && !json_is_null(remark)) {
        rc = -EBADMSG;
        goto out;
    }
    json_t *ext = json_object_get(root, "extFields");
    if (ext && !json_is_null(ext)) {
        rc = -EBADMSG;
        if (!json_is_object(ext))
            goto out;
        if ((rc = rpc__cmd_reserve(cmd, len, json_object_size(ext))) != 0)
            goto out;
        const char *k;
        json_t *v;
        json_object_foreach(ext, k, v)
        {
            char buf[64], *heap;
            const char *text;
            size_t n;
            int r = ext_value_text(v, buf, sizeof(buf), &text, &n, &heap);
            if (r < 0) {
                rc = r;
                goto out;
            }
            if (r == 0) {
                r = rpc__ext_append(cmd, k, strlen(k), text, n);
                free(heap);
                if (r) {
                    rc = r;
                    goto out;
                }
            }
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 when invalid (overlong forms, surrogates
 * and code points past U+10FFFF included). */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* Writes s as a JSON string. Bytes that are not UTF-8 become U+FFFD, as Java's decoder would
 * read them, so the header stays valid JSON whatever a binary header carried. */
static int put_json_string(struct mq_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = mq_buf_append(b, "\"", 1);
    const char *run = s;
    while (rc == 0 && *s) {
        unsigned char c = (unsigned char)*s;
        int n = c >= 0x80 ? utf8_len((const unsigned char *)s) : 1;
        if (c >= 0x20 && c != '"' && c != '\\' && n > 0) {
            s += n;
            continue;
        }
        rc = mq_buf_append(b, run, (size_t)(s - run));
        if (rc)
            break;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (n == 0)
            rc = mq_buf_append(b, "\\ufffd", 6);
        else if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            rc = mq_buf_append(b, esc, 2);
        } else {
            rc = mq_buf_append(b, esc, 6);
        }
        s++;
        run = s;
    }
    if (rc == 0)
        rc = mq_buf_append(b, run, (size_t)(s - run));
    if (rc == 0)
        rc = mq_buf_append(b, "\"", 1);
    return rc;
}

int rpc__header_encode_json(const struct rpc_cmd *cmd, struct mq_buf *out)
{
    int rc = mq_buf_printf(out,
                           "{\"code\":%" PRId32 ",\"language\":\"%s\",\"version\":%d,"
                           "\"opaque\":%" PRId32 ",\"flag\":%" PRId32,
                           cmd->code, rpc_lang_name(cmd->language), cmd->version, cmd->opaque,
                           cmd->flag);
    const char *remark = rpc_cmd_remark(cmd);
    if (rc == 0 && remark) {
        rc = mq_buf_append_str(out, ",\"remark\":");
        if (rc == 0)
            rc = put_json_string(out, remark);
    }
    if (rc == 0 && cmd->ext_n) {
        rc = mq_buf_append_str(out, ",\"extFields\":{");
        for (uint32_t i = 0; rc == 0 && i < cmd->ext_n; i++) {
            if (i)
                rc = mq_buf_append(out, ",", 1);
            if (rc == 0)
                rc = put_json_string(out, rpc_cmd_ext_key(cmd, i));
            if (rc == 0)
                rc = mq_buf_append(out, ":", 1);
            if (rc == 0)
                rc = put_json_string(out, rpc_cmd_ext_val(cmd, i));
        }
        if (rc == 0)
            rc = mq_buf_append(out, "}", 1);
    }
    if (rc == 0)
        rc = mq_buf_append_str(out, ",\"serializeTypeCurrentRPC\":\"JSON\"}");
    return rc;
}
