/* path.c — mqfs's names and paths (docs/FS.md "Names", "Layout"): one path component at a
 * time, a directory node and a file name become the child node; and back to canonical paths.
 *
 *   NAME  = TOPIC [ ":" TAGS ] [ "." MODE ]...     TAGS = TAG [ "||" TAG ]...
 *   MODE  = "json" | "now" | "bulk"
 *
 * Topics can contain neither '.' nor ':', and tags cannot contain '.', so the first ':' ends the
 * topic and the first '.' starts the modes. Pure code: no I/O, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/mq_util.h"
#include "fs/mqfs.h"

/* What each kind accepts in its NAME: which modes, and how many tags. */
struct name_rule {
    unsigned modes;
    int max_tags;
};

/* Top-level entries of the root, in listing order. */
static const struct {
    const char *name;
    enum mqfs_kind kind;
} top_entries[] = {
    {"topic", MQFS_DIR_TOPIC}, {"queue", MQFS_DIR_QUEUE}, {"group", MQFS_DIR_GROUP},
    {"key", MQFS_DIR_KEY},     {"blob", MQFS_DIR_BLOB},   {"msg", MQFS_DIR_MSG},
    {"cluster", MQFS_CLUSTER},
};

static const struct {
    const char *name;
    unsigned flag;
} modes[] = {{"json", MQFS_F_JSON}, {"now", MQFS_F_NOW}, {"bulk", MQFS_F_BULK}};

void mqfs_node_root(struct mqfs_node *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = MQFS_ROOT;
    out->queue_id = -1;
}

int mqfs_kind_is_dir(enum mqfs_kind k)
{
    switch (k) {
    case MQFS_ROOT:
    case MQFS_DIR_TOPIC:
    case MQFS_DIR_QUEUE:
    case MQFS_DIR_GROUP:
    case MQFS_DIR_KEY:
    case MQFS_DIR_BLOB:
    case MQFS_DIR_MSG:
    case MQFS_QUEUE_DIR:
    case MQFS_GROUP_DIR:
    case MQFS_KEY_DIR:
    case MQFS_BLOB_DIR:
        return 1;
    default:
        return 0;
    }
}

/* A byte no name part may contain: NUL, '/', space and the other ASCII controls, DEL. */
static int bad_byte(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || c == '/';
}

int mqfs_check_key(const char *key, size_t len)
{
    if (len == 0 || len >= MQFS_KEY_MAX)
        return -EINVAL;
    if ((len == 1 && key[0] == '.') || (len == 2 && key[0] == '.' && key[1] == '.'))
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (bad_byte((unsigned char)key[i]))
            return -EINVAL;
    return 0;
}

int mqfs_check_tag(const char *tag, size_t len)
{
    if (len == 0 || len >= MQFS_TOPIC_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tag[i];
        if (bad_byte(c) || c == '.' || c == ':' || c == '|' || c == '*')
            return -EINVAL;
    }
    return 0;
}

int mqfs_check_broker(const char *broker, size_t len)
{
    if (len == 0 || len >= MQFS_TOPIC_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (bad_byte((unsigned char)broker[i]))
            return -EINVAL;
    return 0;
}

static void copy_str(char *dst, const char *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Parses the modes after the first '.': ".json", ".now.json", ".bulk.now", ... Each at most
 * once, and only those in `allowed`. */
static int parse_modes(const char *s, size_t len, unsigned allowed, unsigned *flags)
{
    *flags = 0;
    while (len > 0) { /* s points at a '.' */
        s++, len--;
        size_t n = 0;
        while (n < len && s[n] != '.')
            n++;
        unsigned f = 0;
        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
            if (strlen(modes[i].name) == n && memcmp(modes[i].name, s, n) == 0)
                f = modes[i].flag;
        if (!f || !(f & allowed) || (*flags & f))
            return -EINVAL;
        *flags |= f;
        s += n, len -= n;
    }
    return 0;
}

/* Parses "A||B||C" into out->tags / ntags, checking each tag. */
static int parse_tags(const char *s, size_t len, int max_tags, struct mqfs_node *out)
{
    if (len == 0 || len >= MQFS_TAGS_MAX)
        return -EINVAL;
    int n = 0;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < len && !(s[j] == '|' && j + 1 < len && s[j + 1] == '|'))
            j++;
        if (mqfs_check_tag(s + i, j - i) || ++n > max_tags)
            return -EINVAL;
        if (j == len)
            break;
        i = j + 2;
        if (i == len) /* a trailing "||" */
            return -EINVAL;
    }
    copy_str(out->tags, s, len);
    out->ntags = n;
    return 0;
}

/* NAME = TOPIC [":" TAGS] ["." MODE]... into out->topic, tags, flags. */
static int parse_name(const char *s, size_t len, struct name_rule rule, struct mqfs_node *out)
{
    const char *dot = memchr(s, '.', len);
    size_t base = dot ? (size_t)(dot - s) : len;
    int rc = parse_modes(s + base, len - base, rule.modes, &out->flags);
    if (rc)
        return rc;
    const char *colon = memchr(s, ':', base);
    size_t tlen = colon ? (size_t)(colon - s) : base;
    if (mq_check_topic(s, tlen))
        return -EINVAL;
    copy_str(out->topic, s, tlen);
    if (colon)
        return parse_tags(colon + 1, base - tlen - 1, rule.max_tags, out);
    return 0;
}

/* queue file: BROKER "-" QUEUEID [".json"]; the broker name may itself contain '-' and '.'. */
static int parse_queue(const char *s, size_t len, struct mqfs_node *out)
{
    static const char sfx[] = ".json";
    size_t sl = sizeof(sfx) - 1;
    if (len > sl && memcmp(s + len - sl, sfx, sl) == 0) {
        out->flags |= MQFS_F_JSON;
        len -= sl;
    }
    size_t dash = len;
    while (dash > 0 && s[dash - 1] != '-')
        dash--;
    if (dash < 2) /* no '-', or an empty broker name */
        return -EINVAL;
    size_t ndig = len - dash;
    const char *d = s + dash;
    if (ndig == 0 || ndig > 9 || (ndig > 1 && d[0] == '0'))
        return -EINVAL;
    int q = 0;
    for (size_t i = 0; i < ndig; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -EINVAL;
        q = q * 10 + (d[i] - '0');
    }
    if (mqfs_check_broker(s, dash - 1))
        return -EINVAL;
    copy_str(out->broker, s, dash - 1);
    out->queue_id = q;
    return 0;
}

/* msg file: 32 or 56 hex digits [".json"]. */
static int parse_msg(const char *s, size_t len, struct mqfs_node *out)
{
    const char *dot = memchr(s, '.', len);
    size_t n = dot ? (size_t)(dot - s) : len;
    int rc = parse_modes(s + n, len - n, MQFS_F_JSON, &out->flags);
    if (rc)
        return rc;
    if (n != 32 && n != 56)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return -EINVAL;
    }
    copy_str(out->msg_id, s, n);
    return 0;
}

static int parse_top(const char *name, size_t len, struct mqfs_node *out)
{
    for (size_t i = 0; i < sizeof(top_entries) / sizeof(top_entries[0]); i++) {
        if (strlen(top_entries[i].name) == len && memcmp(top_entries[i].name, name, len) == 0) {
            out->kind = top_entries[i].kind;
            return 0;
        }
    }
    return -ENOENT;
}

int mqfs_node_child(const struct mqfs_node *parent, const char *name, size_t len,
                    struct mqfs_node *out)
{
    if (!mqfs_kind_is_dir(parent->kind))
        return -ENOTDIR;
    struct mqfs_node n = *parent; /* children inherit topic, tags and flags of their dir */
    if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len))
        return -EINVAL;
    int rc;
    switch (parent->kind) {
    case MQFS_ROOT:
        rc = parse_top(name, len, &n);
        break;
    case MQFS_DIR_TOPIC:
        n.kind = MQFS_TOPIC;
        rc = parse_name(name, len, (struct name_rule){MQFS_F_JSON, 64}, &n);
        break;
    case MQFS_DIR_QUEUE:
        n.kind = MQFS_QUEUE_DIR;
        rc = parse_name(name, len, (struct name_rule){0, 0}, &n);
        break;
    case MQFS_QUEUE_DIR:
        n.kind = MQFS_QUEUE;
        rc = parse_queue(name, len, &n);
        break;
    case MQFS_DIR_GROUP:
        n.kind = MQFS_GROUP_DIR;
        rc = mq_check_topic(name, len) ? -EINVAL : 0;
        if (rc == 0)
            copy_str(n.group, name, len);
        break;
    case MQFS_GROUP_DIR:
        n.kind = MQFS_GROUP;
        rc = parse_name(name, len, (struct name_rule){MQFS_F_JSON | MQFS_F_NOW | MQFS_F_BULK, 64},
                        &n);
        break;
    case MQFS_DIR_KEY:
        n.kind = MQFS_KEY_DIR;
        rc = parse_name(name, len, (struct name_rule){MQFS_F_JSON, 64}, &n);
        break;
    case MQFS_DIR_BLOB:
        n.kind = MQFS_BLOB_DIR;
        rc = parse_name(name, len, (struct name_rule){0, 1}, &n);
        break;
    case MQFS_KEY_DIR:
    case MQFS_BLOB_DIR:
        n.kind = parent->kind == MQFS_KEY_DIR ? MQFS_KEY : MQFS_BLOB;
        rc = mqfs_check_key(name, len);
        if (rc == 0)
            copy_str(n.key, name, len);
        break;
    case MQFS_DIR_MSG:
        n.kind = MQFS_MSG;
        rc = parse_msg(name, len, &n);
        break;
    default:
        rc = -ENOTDIR;
        break;
    }
    if (rc == 0)
        *out = n;
    return rc;
}

int mqfs_path_parse(const char *path, size_t len, struct mqfs_node *out)
{
    struct mqfs_node n;
    mqfs_node_root(&n);
    size_t i = 0;
    while (i < len) {
        if (path[i] == '/') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        int rc = mqfs_node_child(&n, path + i, j - i, &n);
        if (rc)
            return rc;
        i = j;
    }
    *out = n;
    return 0;
}

/* Appends a NAME (topic, tags, modes) in canonical form. */
static int put_name(char *buf, size_t cap, size_t at, const struct mqfs_node *n)
{
    int w =
        snprintf(buf + at, cap - at, "%s%s%s%s%s%s", n->topic, n->ntags ? ":" : "",
                 n->ntags ? n->tags : "", (n->flags & MQFS_F_JSON) ? ".json" : "",
                 (n->flags & MQFS_F_NOW) ? ".now" : "", (n->flags & MQFS_F_BULK) ? ".bulk" : "");
    return w;
}

int mqfs_node_name(const struct mqfs_node *n, char *buf, size_t cap)
{
    if (cap == 0)
        return -ENAMETOOLONG;
    int w;
    switch (n->kind) {
    case MQFS_ROOT:
        w = snprintf(buf, cap, "%s", "");
        break;
    case MQFS_TOPIC:
    case MQFS_QUEUE_DIR:
    case MQFS_GROUP:
    case MQFS_KEY_DIR:
    case MQFS_BLOB_DIR:
        w = put_name(buf, cap, 0, n);
        break;
    case MQFS_QUEUE:
        w = snprintf(buf, cap, "%s-%d%s", n->broker, n->queue_id,
                     (n->flags & MQFS_F_JSON) ? ".json" : "");
        break;
    case MQFS_GROUP_DIR:
        w = snprintf(buf, cap, "%s", n->group);
        break;
    case MQFS_KEY:
    case MQFS_BLOB:
        w = snprintf(buf, cap, "%s", n->key);
        break;
    case MQFS_MSG:
        w = snprintf(buf, cap, "%s%s", n->msg_id, (n->flags & MQFS_F_JSON) ? ".json" : "");
        break;
    default:
        w = -1;
        for (size_t i = 0; i < sizeof(top_entries) / sizeof(top_entries[0]); i++)
            if (top_entries[i].kind == n->kind)
                w = snprintf(buf, cap, "%s", top_entries[i].name);
        break;
    }
    if (w < 0 || (size_t)w >= cap)
        return -ENAMETOOLONG;
    return w;
}

/* The parent of a node (the directory it was parsed in). */
static int parent_of(const struct mqfs_node *n, struct mqfs_node *p)
{
    *p = *n;
    switch (n->kind) {
    case MQFS_ROOT:
        return -ENOENT;
    case MQFS_TOPIC:
        mqfs_node_root(p);
        p->kind = MQFS_DIR_TOPIC;
        return 0;
    case MQFS_QUEUE_DIR:
        mqfs_node_root(p);
        p->kind = MQFS_DIR_QUEUE;
        return 0;
    case MQFS_QUEUE:
        p->kind = MQFS_QUEUE_DIR;
        p->broker[0] = '\0';
        p->queue_id = -1;
        p->flags = 0;
        return 0;
    case MQFS_GROUP_DIR:
        mqfs_node_root(p);
        p->kind = MQFS_DIR_GROUP;
        return 0;
    case MQFS_GROUP:
        mqfs_node_root(p);
        p->kind = MQFS_GROUP_DIR;
        memcpy(p->group, n->group, sizeof(p->group));
        return 0;
    case MQFS_KEY_DIR:
    case MQFS_BLOB_DIR:
        mqfs_node_root(p);
        p->kind = n->kind == MQFS_KEY_DIR ? MQFS_DIR_KEY : MQFS_DIR_BLOB;
        return 0;
    case MQFS_KEY:
    case MQFS_BLOB:
        p->kind = n->kind == MQFS_KEY ? MQFS_KEY_DIR : MQFS_BLOB_DIR;
        p->key[0] = '\0';
        return 0;
    case MQFS_MSG:
        mqfs_node_root(p);
        p->kind = MQFS_DIR_MSG;
        return 0;
    default: /* the top-level entries */
        mqfs_node_root(p);
        return 0;
    }
}

int mqfs_node_path(const struct mqfs_node *n, char *buf, size_t cap)
{
    if (n->kind == MQFS_ROOT)
        return mqfs_node_name(n, buf, cap);
    struct mqfs_node p;
    int rc = parent_of(n, &p);
    if (rc)
        return rc;
    int at = mqfs_node_path(&p, buf, cap);
    if (at < 0)
        return at;
    if (at > 0) {
        if ((size_t)at + 1 >= cap)
            return -ENAMETOOLONG;
        buf[at++] = '/';
        buf[at] = '\0';
    }
    int w = mqfs_node_name(n, buf + at, cap - (size_t)at);
    return w < 0 ? w : at + w;
}
