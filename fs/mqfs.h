/* mqfs.h — the pure parts of the mqfs daemon, usable (and tested) without a mount:
 *
 *   - names and paths (path.c): the grammar of docs/FS.md "Names" and "Layout" parsed into a
 *     node description, and formatted back into the canonical path;
 *   - line assembly for writes (lines.c): bytes of successive write() calls turned into
 *     complete lines, grouped into batches, with a carried partial line per open file.
 *
 * Errors are negative errnos (0/-errno), as everywhere in the project.
 */
#ifndef MQFS_H
#define MQFS_H

#include <stddef.h>
#include <stdint.h>

#include "client/mqclient.h"

/* ---- names and paths (path.c) ---- */

#define MQFS_TOPIC_MAX 128 /* RocketMQ topics and groups: 1..127 chars, +1 for the NUL */
#define MQFS_TAGS_MAX  256 /* "A||B||C": the whole tag expression */
#define MQFS_KEY_MAX   256 /* a key is one file name: at most 255 bytes */
#define MQFS_MSGID_MAX 57  /* 32 (IPv4 store host) or 56 (IPv6) hex digits */

enum mqfs_kind {
    MQFS_ROOT = 0,
    MQFS_DIR_TOPIC, /* topic/ */
    MQFS_DIR_QUEUE, /* queue/ */
    MQFS_DIR_GROUP, /* group/ */
    MQFS_DIR_KEY,   /* key/ */
    MQFS_DIR_BLOB,  /* blob/ */
    MQFS_DIR_MSG,   /* msg/ */
    MQFS_CLUSTER,   /* cluster */
    MQFS_TOPIC,     /* topic/<NAME>: send end and log view */
    MQFS_QUEUE_DIR, /* queue/<Topic> */
    MQFS_QUEUE,     /* queue/<Topic>/<broker>-<queueId>[.json] */
    MQFS_GROUP_DIR, /* group/<Group> */
    MQFS_GROUP,     /* group/<Group>/<NAME> */
    MQFS_KEY_DIR,   /* key/<Topic>[:<Tags>][.json] */
    MQFS_KEY,       /* key/<Topic...>/<Key> */
    MQFS_BLOB_DIR,  /* blob/<Topic>[:<Tag>] */
    MQFS_BLOB,      /* blob/<Topic...>/<Key> */
    MQFS_MSG,       /* msg/<MsgId>[.json] */
    MQFS_KIND_COUNT
};

enum {
    MQFS_F_JSON = 1 << 0, /* ".json": one JSON object per message */
    MQFS_F_NOW = 1 << 1,  /* ".now": group files take what is there now, then EOF */
    MQFS_F_BULK = 1 << 2, /* ".bulk": group files hand out as many whole messages per read as fit */
};

/* What a path names. Fields that do not apply to the kind are empty strings / -1. */
struct mqfs_node {
    enum mqfs_kind kind;
    unsigned flags; /* MQFS_F_* */
    int queue_id;   /* MQFS_QUEUE, else -1 */
    int ntags;      /* how many tags `tags` holds (0: none, every message) */
    char topic[MQFS_TOPIC_MAX];
    char group[MQFS_TOPIC_MAX];
    char tags[MQFS_TAGS_MAX]; /* as written: "A" or "A||B" */
    char key[MQFS_KEY_MAX];
    char broker[MQFS_TOPIC_MAX];
    char msg_id[MQFS_MSGID_MAX];
};

/* The root node. */
void mqfs_node_root(struct mqfs_node *out);

/* The child `name` (name[0..len), not NUL-terminated necessarily) of directory `parent`.
 * Returns 0; -ENOENT for a name that cannot exist there (an unknown top-level entry);
 * -EINVAL for a name that breaks the grammar (bad topic, tag, key, mode, queue or id);
 * -ENOTDIR when parent is not a directory. Pure: existence on the cluster is not checked. */
int mqfs_node_child(const struct mqfs_node *parent, const char *name, size_t len,
                    struct mqfs_node *out);

/* Parses a path relative to the mount point ("topic/Orders:Paid", "/group/G1/T.now"; a leading
 * '/' and repeated '/' are allowed; "" is the root), component by component with
 * mqfs_node_child. Same errors. */
int mqfs_path_parse(const char *path, size_t len, struct mqfs_node *out);

/* Writes the canonical path of n ("topic/Orders:Paid.json", no leading '/') into buf (NUL-
 * terminated). Returns its length, or -ENAMETOOLONG when cap is too small. */
int mqfs_node_path(const struct mqfs_node *n, char *buf, size_t cap);

/* Writes n's own file name (the last path component; "" for the root). Same returns. */
int mqfs_node_name(const struct mqfs_node *n, char *buf, size_t cap);

/* Whether the kind is a directory. */
int mqfs_kind_is_dir(enum mqfs_kind k);

/* Validation of single parts (0 or -EINVAL): a message key usable in RocketMQ's KEYS property
 * (1..255 bytes, no '/', no space or control byte — KEYS are space-separated — and not "." or
 * ".."); one tag (1..127 bytes, none of "/.:|*", space or control bytes); a broker name (1..127
 * bytes, no '/', space or control bytes). */
int mqfs_check_key(const char *key, size_t len);
int mqfs_check_tag(const char *tag, size_t len);
int mqfs_check_broker(const char *broker, size_t len);

/* ---- line assembly (lines.c) ---- */

/* Sends one batch of n ≥ 1 lines as one request; returns 0 when the broker accepted all of
 * them, else a negative errno (then none of them counts as sent). Each line is a message body
 * (libmqclient's type, so the batch goes to mqc_send_batch_bodies as is): bytes borrowed from
 * the write's buffer or the carry, like `lines` itself valid only during the call. */
typedef int (*mqfs_send_fn)(void *arg, const struct mqc_body *lines, size_t n);

struct mqfs_lines_cfg {
    size_t max_line;     /* longest body (maxMessageSize), default 4 MiB */
    size_t batch_bytes;  /* encoded batch limit (maxMessageSize), default 4 MiB */
    size_t batch_msgs;   /* messages per batch, default 16384 */
    size_t msg_overhead; /* encoded bytes per message besides its body (entry + properties) */
};

/* Per open file: the carried partial line. Caller-owned storage. The carry grows as needed up
 * to max_line and is released when it empties, so an idle open file holds no buffer. */
struct mqfs_lines {
    struct mqfs_lines_cfg cfg;
    uint8_t *carry; /* owned, or NULL when empty */
    size_t carry_len, carry_cap;
    int discarding;     /* a line grew past max_line: its bytes are refused up to its '\n' */
    uint8_t *refused;   /* owned: that line's refused end, through its '\n' (lines.c), or NULL */
    size_t refused_len; /* ... refused again when the caller writes it again */
};

/* cfg may be NULL for the defaults; zero fields take defaults. Allocates nothing. */
void mqfs_lines_init(struct mqfs_lines *l, const struct mqfs_lines_cfg *cfg);
void mqfs_lines_destroy(struct mqfs_lines *l);

/* Handles one write() of (p, n): the carried partial line plus p make complete lines, which
 * are sent in as few batches as the limits allow (one for any write of up to 1 MiB of lines of
 * ordinary length), in order; what follows the last '\n' becomes the new carry.
 * Checked before anything is sent: an empty line -> -EINVAL; a line (or the new carry) longer
 * than max_line -> -EMSGSIZE. Then nothing of p is consumed; if that line began in an earlier
 * write (its start is carried), the carry is dropped and writes are refused with -EMSGSIZE up
 * to and including the one holding the line's '\n' (or until a flush), and so are writes that
 * repeat that refused end: no byte of an oversized line is ever sent. If the first batch fails
 * its error is returned and nothing of p is consumed (the carry is unchanged). If a later batch
 * fails, the bytes of p covered by the batches already accepted are returned (a short write;
 * the carry is then empty), so the caller's retry of the rest meets the error. Returns n on
 * full success. */
long mqfs_lines_write(struct mqfs_lines *l, const void *p, size_t n, mqfs_send_fn send, void *arg);

/* Sends the carried partial line (if any) as one message; on success the carry is emptied, on
 * failure it is kept (a later flush retries) and the error returned. While an oversized line
 * is being refused, sends nothing, ends that line (the next byte starts a new one) and
 * returns -EMSGSIZE. Forgets a refused line end (the next write is new bytes). */
int mqfs_lines_flush(struct mqfs_lines *l, mqfs_send_fn send, void *arg);

/* Bytes carried (a partial line not yet sent). */
static inline size_t mqfs_lines_pending(const struct mqfs_lines *l)
{
    return l->carry_len;
}

/* ---- the daemon (daemon.c) ---- */

/* Runs mqfs with a command line like the program's (argv[0] ignored); returns the exit code. */
int mqfs_main(int argc, char **argv);

#endif
