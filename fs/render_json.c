/* render_json.c — how the views mqfs renders itself (group files, tag-filtered and .json log
 * views) show a message: its body + "\n", or for .json files one JSON object on one line, so
 * `jq` works: topic, queueId, queueOffset, msgId, tags, keys, bornTimestamp, storeTimestamp,
 * reconsumeTimes, and body as a string when it is valid UTF-8, else bodyBase64. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fs/mqfs_int.h"

static json_t *prop(const struct mqc_msg *m, const char *name)
{
    const char *v;
    size_t n;
    return mqc_msg_prop(m, name, &v, &n) == 0 ? json_stringn(v, n) : json_null();
}

static char *base64(const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

int mqfs__render_json(const struct mqc_msg *m, struct mq_buf *out)
{
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    json_object_set_new(o, "topic", json_string(m->mq.topic));
    json_object_set_new(o, "queueId", json_integer(m->mq.queue_id));
    json_object_set_new(o, "queueOffset", json_integer(m->queue_offset));
    json_object_set_new(o, "msgId", json_string(m->msg_id));
    json_object_set_new(o, "tags", prop(m, "TAGS"));
    json_object_set_new(o, "keys", prop(m, "KEYS"));
    json_object_set_new(o, "bornTimestamp", json_integer(m->born_ts));
    json_object_set_new(o, "storeTimestamp", json_integer(m->store_ts));
    json_object_set_new(o, "reconsumeTimes", json_integer(m->reconsume_times));
    json_t *body = json_stringn((const char *)m->body, m->body_len); /* NULL unless UTF-8 */
    if (body) {
        json_object_set_new(o, "body", body);
    } else {
        char *b64 = base64(m->body, m->body_len);
        json_object_set_new(o, "bodyBase64", b64 ? json_string(b64) : json_null());
        free(b64);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return -ENOMEM;
    int rc = mq_buf_append_str(out, s);
    free(s);
    return rc ? rc : mq_buf_append(out, "\n", 1);
}

int mqfs__render_msg(const struct mqfs_node *n, const struct mqc_msg *m, struct mq_buf *out)
{
    if (n->flags & MQFS_F_JSON)
        return mqfs__render_json(m, out);
    int rc = mq_buf_append(out, m->body, m->body_len);
    return rc ? rc : mq_buf_append(out, "\n", 1);
}
