/* view_lookup.c — the lookup files, built once at open (a snapshot) and served like text:
 *   key/<Topic>[:<Tags>][.json]/<Key>   the messages whose KEYS include Key (or whose UNIQ_KEY
 *                       is Key) and, with a tag filter, whose tag is one of Tags: one body + "\n"
 *                       (or JSON line) each, oldest first (QUERY_MESSAGE on every broker);
 *   blob/<Topic>/<Key>  the newest such message's body, byte-exact (what `cp` into it sent);
 *   msg/<MsgId>         one message: "Name: value" headers, a blank line, the body
 *                       (VIEW_MESSAGE_BY_ID at the broker the offset message id names);
 *                       msg/<MsgId>.json: its JSON line. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_tags.h"
#include "fs/mqfs_int.h"

static int cmp_store_time(const void *a, const void *b)
{
    const struct mqc_msg *x = *(const struct mqc_msg *const *)a;
    const struct mqc_msg *y = *(const struct mqc_msg *const *)b;
    if (x->store_ts != y->store_ts)
        return x->store_ts < y->store_ts ? -1 : 1;
    return strcmp(x->mq.broker, y->mq.broker)
               ? strcmp(x->mq.broker, y->mq.broker)
               : (x->phys_offset > y->phys_offset) - (x->phys_offset < y->phys_offset);
}

/* Every message of the node's topic with its key, oldest first, into out (as key files show
 * them: bodies + "\n" or .json lines, only those with one of the name's tags), or only the
 * newest's body when newest_only (blob files). */
static int build_key(struct mqfs *fs, const struct mqfs_node *n, int newest_only,
                     struct mq_buf *out)
{
    const char *topic = n->topic, *key = n->key;
    struct mqc_topic_route r;
    int rc = mqc_admin_topic_route(fs->admin, topic, &r);
    if (rc)
        return rc == -ENOENT ? -ENOENT : mqfs__send_errno(rc);
    struct mqc_pull_result *res = calloc(r.nbrokers ? r.nbrokers : 1, sizeof(*res));
    size_t nres = 0, total = 0;
    for (size_t i = 0; res && i < r.nbrokers; i++) {
        if (!r.brokers[i].addr[0])
            continue;
        if (mqc_admin_query_key(fs->admin, r.brokers[i].addr, r.brokers[i].name, topic, key,
                                &res[nres]) == 0)
            total += res[nres++].n;
    }
    const struct mqc_msg **all = calloc(total ? total : 1, sizeof(*all));
    size_t k = 0;
    for (size_t i = 0; all && i < nres; i++)
        for (size_t j = 0; j < res[i].n; j++)
            all[k++] = &res[i].msgs[j];
    rc = (res && all) ? 0 : -ENOMEM;
    if (rc == 0 && k > 1)
        qsort(all, k, sizeof(*all), cmp_store_time);
    if (rc == 0 && newest_only)
        rc = k ? mq_buf_append(out, all[k - 1]->body, all[k - 1]->body_len) : -ENOENT;
    struct mq_tags tags = {.all = 1};
    if (rc == 0 && !newest_only && n->ntags)
        rc = mq_tags_parse(n->tags, &tags);
    for (size_t i = 0; rc == 0 && !newest_only && i < k; i++) {
        const char *tag = NULL;
        size_t tlen = 0;
        if (mqc_msg_prop(all[i], "TAGS", &tag, &tlen) != 0)
            tag = NULL;
        if (mq_tags_match(&tags, tag, tlen))
            rc = mqfs__render_msg(n, all[i], out);
    }
    mq_tags_destroy(&tags);
    free(all);
    for (size_t i = 0; i < nres; i++)
        mqc_pull_result_destroy(&res[i]);
    free(res);
    mqc_topic_route_destroy(&r);
    return rc;
}

struct prop_out {
    struct mq_buf *out;
    int rc;
};

static int add_header(struct mq_buf *out, const char *name, const char *val, size_t len)
{
    return mq_buf_printf(out, "%s: %.*s\n", name, (int)len, val);
}

static int build_msg(struct mqfs *fs, const struct mqfs_node *n, struct mq_buf *out)
{
    struct mqc_pull_result res;
    char addr[64];
    int rc = mqc_admin_view_message(fs->admin, n->msg_id, addr, &res);
    if (rc)
        return rc == -EINVAL || rc == -ENOENT ? -ENOENT : mqfs__send_errno(rc);
    if (res.n == 0) {
        mqc_pull_result_destroy(&res);
        return -ENOENT;
    }
    const struct mqc_msg *m = &res.msgs[0];
    if (n->flags & MQFS_F_JSON) {
        rc = mqfs__render_json(m, out);
    } else {
        rc = mq_buf_printf(out,
                           "Topic: %s\nQueueId: %d\nQueueOffset: %" PRId64 "\nMsgId: %s\n"
                           "CommitLogOffset: %" PRId64 "\nStoreHost: %s\nBornTimestamp: %" PRId64
                           "\nStoreTimestamp: %" PRId64 "\nReconsumeTimes: %d\nFlag: %d\n"
                           "SysFlag: %d\n",
                           m->mq.topic, m->mq.queue_id, m->queue_offset, m->msg_id, m->phys_offset,
                           addr, m->born_ts, m->store_ts, m->reconsume_times, m->flag, m->sysflag);
        /* Every property as "Name: value" (TAGS, KEYS, UNIQ_KEY, user properties). */
        const char *p = m->props, *end = m->props + m->props_len;
        while (rc == 0 && p < end) {
            const char *sep = memchr(p, '\001', (size_t)(end - p));
            const char *stop = sep ? memchr(sep, '\002', (size_t)(end - sep)) : NULL;
            if (!sep || !stop)
                break;
            char name[128];
            snprintf(name, sizeof(name), "Property-%.*s", (int)(sep - p), p);
            rc = add_header(out, name, sep + 1, (size_t)(stop - sep - 1));
            p = stop + 1;
        }
        if (rc == 0)
            rc = mq_buf_append(out, "\n", 1);
        if (rc == 0)
            rc = mq_buf_append(out, m->body, m->body_len);
    }
    mqc_pull_result_destroy(&res);
    return rc;
}

int mqfs__lookup_build(struct mqfs *fs, const struct mqfs_node *n, struct mq_buf *out)
{
    out->len = 0;
    switch (n->kind) {
    case MQFS_KEY:
        return build_key(fs, n, 0, out);
    case MQFS_BLOB:
        return build_key(fs, n, 1, out);
    case MQFS_MSG:
        return build_msg(fs, n, out);
    default:
        return -EINVAL;
    }
}

int mqfs__read_key(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    return mqfs__read_text(req, h, size, off);
}

int mqfs__read_blob(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    return mqfs__read_text(req, h, size, off);
}

int mqfs__read_msg(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    return mqfs__read_text(req, h, size, off);
}
