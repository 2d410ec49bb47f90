/* test_fs.c — unit tests for mqfs's pure parts: the name and path grammar (every kind, every
 * rejection, canonical round trips), line assembly (every split point, byte by byte, batch
 * limits, failures), and the decoding of the NameServer's admin bodies used by the daemon. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/mqclient.h"
#include "fs/mqfs.h"
#include "fs/mqfs_int.h"
#include "tests/unit/mq_test.h"

static int parse(const char *path, struct mqfs_node *n)
{
    return mqfs_path_parse(path, strlen(path), n);
}

/* parse(path) succeeds, and its canonical path is `canon` (NULL: the path itself), which parses
 * to the same node. */
static int round_trip(const char *path, const char *canon)
{
    struct mqfs_node a, b;
    char buf[1024];
    if (parse(path, &a))
        return 1;
    int w = mqfs_node_path(&a, buf, sizeof(buf));
    if (w < 0 || strcmp(buf, canon ? canon : path) != 0) {
        fprintf(stderr, "  canonical of %s: %s\n", path, w < 0 ? "(error)" : buf);
        return 2;
    }
    if (parse(buf, &b) || memcmp(&a, &b, sizeof(a)) != 0)
        return 3;
    return 0;
}

TEST(test_path_top)
{
    struct mqfs_node n;
    ASSERT_OK(parse("", &n));
    ASSERT_EQ(n.kind, MQFS_ROOT);
    ASSERT_OK(parse("/", &n));
    ASSERT_EQ(n.kind, MQFS_ROOT);
    static const struct {
        const char *p;
        enum mqfs_kind k;
    } tops[] = {{"topic", MQFS_DIR_TOPIC}, {"queue", MQFS_DIR_QUEUE}, {"group", MQFS_DIR_GROUP},
                {"key", MQFS_DIR_KEY},     {"blob", MQFS_DIR_BLOB},   {"msg", MQFS_DIR_MSG},
                {"cluster", MQFS_CLUSTER}};
    for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
        ASSERT_OK(parse(tops[i].p, &n));
        ASSERT_EQ(n.kind, tops[i].k);
        ASSERT_OK(round_trip(tops[i].p, NULL));
        ASSERT_EQ(mqfs_kind_is_dir(n.kind), tops[i].k != MQFS_CLUSTER);
    }
    ASSERT_EQ(parse("topics", &n), -ENOENT);
    ASSERT_EQ(parse("Topic", &n), -ENOENT);
    ASSERT_EQ(parse("cluster/x", &n), -ENOTDIR);
    ASSERT_OK(parse("//topic//T/", &n));
    ASSERT_EQ(n.kind, MQFS_TOPIC);
    ASSERT_STR_EQ(n.topic, "T");
}

TEST(test_path_topic)
{
    struct mqfs_node n;
    ASSERT_OK(parse("topic/Orders", &n));
    ASSERT_EQ(n.kind, MQFS_TOPIC);
    ASSERT_STR_EQ(n.topic, "Orders");
    ASSERT_EQ(n.ntags, 0);
    ASSERT_EQ(n.flags, 0);
    ASSERT_EQ(n.queue_id, -1);

    ASSERT_OK(parse("topic/Orders:Paid", &n));
    ASSERT_STR_EQ(n.tags, "Paid");
    ASSERT_EQ(n.ntags, 1);
    ASSERT_OK(parse("topic/Orders:Paid||Refunded.json", &n));
    ASSERT_STR_EQ(n.tags, "Paid||Refunded");
    ASSERT_EQ(n.ntags, 2);
    ASSERT_EQ(n.flags, MQFS_F_JSON);
    ASSERT_OK(parse("topic/%RETRY%G1", &n));
    ASSERT_OK(parse("topic/a|b_c-9", &n));
    ASSERT_STR_EQ(n.topic, "a|b_c-9");
    ASSERT_OK(parse("topic/T:\xc3\xa9t\xc3\xa9", &n)); /* UTF-8 tags are fine */

    static const char *bad[] = {
        "topic/bad name", "topic/a.b",    "topic/T.",       "topic/T..json", "topic/T.json.json",
        "topic/T.now",    "topic/T.xml",  "topic/:A",       "topic/T:",      "topic/T:A||",
        "topic/T:||A",    "topic/T:A|B",  "topic/T:A||||B", "topic/T:A:B",   "topic/T:*",
        "topic/T:A B",    "topic/T:A\tB", "topic/é",        "topic/T:A.",    "topic/.json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &n) != -EINVAL)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        ASSERT_EQ(parse(bad[i], &n), -EINVAL);
    }
    char name[300] = "topic/";
    memset(name + 6, 'x', 127);
    name[133] = '\0';
    ASSERT_OK(parse(name, &n));
    ASSERT_EQ(strlen(n.topic), 127);
    strcat(name, "x");
    ASSERT_EQ(parse(name, &n), -EINVAL);
    /* 64 tags at most */
    char tags[1024] = "topic/T:";
    for (int i = 0; i < 64; i++)
        strcat(tags, i ? "||a" : "a");
    ASSERT_OK(parse(tags, &n));
    ASSERT_EQ(n.ntags, 64);
    strcat(tags, "||a");
    ASSERT_EQ(parse(tags, &n), -EINVAL);

    ASSERT_OK(round_trip("topic/Orders", NULL));
    ASSERT_OK(round_trip("topic/Orders:Paid||X.json", NULL));
}

TEST(test_path_group)
{
    struct mqfs_node n;
    ASSERT_OK(parse("group/G1", &n));
    ASSERT_EQ(n.kind, MQFS_GROUP_DIR);
    ASSERT_STR_EQ(n.group, "G1");
    ASSERT_OK(parse("group/G1/Orders:Paid.now.json", &n));
    ASSERT_EQ(n.kind, MQFS_GROUP);
    ASSERT_STR_EQ(n.group, "G1");
    ASSERT_STR_EQ(n.topic, "Orders");
    ASSERT_STR_EQ(n.tags, "Paid");
    ASSERT_EQ(n.flags, MQFS_F_JSON | MQFS_F_NOW);
    ASSERT_OK(round_trip("group/G1/Orders:Paid.now.json", "group/G1/Orders:Paid.json.now"));
    ASSERT_OK(round_trip("group/G1/Orders.now", NULL));
    ASSERT_OK(round_trip("group/G1", NULL));
    ASSERT_EQ(parse("group/G 1", &n), -EINVAL);
    ASSERT_EQ(parse("group/G.1", &n), -EINVAL);
    ASSERT_EQ(parse("group/G1/T.now.now", &n), -EINVAL);
    /* .bulk: with the other modes and tags, in any order, at most once */
    ASSERT_OK(parse("group/G1/Orders:Paid||X.bulk.json.now", &n));
    ASSERT_EQ(n.flags, MQFS_F_JSON | MQFS_F_NOW | MQFS_F_BULK);
    ASSERT_STR_EQ(n.tags, "Paid||X");
    ASSERT_OK(parse("group/G1/Orders.bulk", &n));
    ASSERT_EQ(n.flags, MQFS_F_BULK);
    ASSERT_OK(round_trip("group/G1/Orders.bulk", NULL));
    ASSERT_OK(round_trip("group/G1/Orders.bulk.now", "group/G1/Orders.now.bulk"));
    ASSERT_OK(round_trip("group/G1/O:A.bulk.now.json", "group/G1/O:A.json.now.bulk"));
    static const char *bad_bulk[] = {
        "group/G1/T.bulk.bulk",
        "group/G1/T.bulk.now.bulk",
        "group/G1/T.bulk.",
        "group/G1/T.Bulk",
        "group/G1/T.bulkx",
        "topic/T.bulk",
        "queue/T.bulk",
        "key/T.bulk/k",
        "msg/7f00000100002a9f0000000000000000.bulk",
    };
    for (size_t i = 0; i < sizeof(bad_bulk) / sizeof(bad_bulk[0]); i++)
        ASSERT_EQ(parse(bad_bulk[i], &n), -EINVAL);
    ASSERT_EQ(parse("group/G1/T/x", &n), -ENOTDIR);
}

TEST(test_path_queue)
{
    struct mqfs_node n;
    ASSERT_OK(parse("queue/Orders", &n));
    ASSERT_EQ(n.kind, MQFS_QUEUE_DIR);
    ASSERT_OK(parse("queue/Orders/broker-a-3", &n));
    ASSERT_EQ(n.kind, MQFS_QUEUE);
    ASSERT_STR_EQ(n.broker, "broker-a");
    ASSERT_EQ(n.queue_id, 3);
    ASSERT_EQ(n.flags, 0);
    ASSERT_OK(parse("queue/Orders/host.example.com-12.json", &n));
    ASSERT_STR_EQ(n.broker, "host.example.com");
    ASSERT_EQ(n.queue_id, 12);
    ASSERT_EQ(n.flags, MQFS_F_JSON);
    ASSERT_OK(parse("queue/O/b-0", &n));
    ASSERT_EQ(n.queue_id, 0);
    ASSERT_OK(round_trip("queue/Orders/broker-a-3.json", NULL));
    ASSERT_OK(round_trip("queue/Orders/b-999999999", NULL));
    static const char *bad[] = {
        "queue/Orders:A",  "queue/Orders.json", "queue/O/broker",        "queue/O/-3",
        "queue/O/b-",      "queue/O/b-03",      "queue/O/b-x",           "queue/O/b-1234567890",
        "queue/O/b-3.now", "queue/O/b c-3",     "queue/O/b-3.json.json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &n) != -EINVAL)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        ASSERT_EQ(parse(bad[i], &n), -EINVAL);
    }
}

TEST(test_path_key_blob_msg)
{
    struct mqfs_node n;
    ASSERT_OK(parse("key/Orders/order-42", &n));
    ASSERT_EQ(n.kind, MQFS_KEY);
    ASSERT_STR_EQ(n.topic, "Orders");
    ASSERT_STR_EQ(n.key, "order-42");
    ASSERT_OK(parse("key/Orders:Paid.json/a@b.com", &n)); /* keys may hold dots */
    ASSERT_STR_EQ(n.key, "a@b.com");
    ASSERT_STR_EQ(n.tags, "Paid");
    ASSERT_EQ(n.flags, MQFS_F_JSON);
    ASSERT_OK(round_trip("key/Orders:Paid.json/a@b.com", NULL));
    ASSERT_OK(parse("key/T/\xe4\xb8\xad:*|x", &n));
    ASSERT_EQ(parse("key/T/a b", &n), -EINVAL); /* KEYS are space-separated */
    ASSERT_EQ(parse("key/T/a\x01", &n), -EINVAL);
    ASSERT_EQ(parse("key/T/a\x7f", &n), -EINVAL);
    ASSERT_EQ(mqfs_check_key(".", 1), -EINVAL);
    ASSERT_EQ(mqfs_check_key("..", 2), -EINVAL);
    ASSERT_OK(mqfs_check_key("...", 3));
    ASSERT_EQ(mqfs_check_key("a\0b", 3), -EINVAL);
    char longkey[300];
    memset(longkey, 'k', sizeof(longkey));
    ASSERT_OK(mqfs_check_key(longkey, 255));
    ASSERT_EQ(mqfs_check_key(longkey, 256), -EINVAL);
    ASSERT_EQ(parse("key/T.now/k", &n), -EINVAL);

    ASSERT_OK(parse("blob/Photos:jpeg/cat.jpg", &n));
    ASSERT_EQ(n.kind, MQFS_BLOB);
    ASSERT_STR_EQ(n.key, "cat.jpg");
    ASSERT_STR_EQ(n.tags, "jpeg");
    ASSERT_OK(round_trip("blob/Photos:jpeg/cat.jpg", NULL));
    ASSERT_EQ(parse("blob/Photos.json/x", &n), -EINVAL);
    ASSERT_EQ(parse("blob/Photos:a||b/x", &n), -EINVAL); /* one tag to send with */

    const char *id = "msg/7F00000100002A9F0000000000000000";
    ASSERT_OK(parse(id, &n));
    ASSERT_EQ(n.kind, MQFS_MSG);
    ASSERT_STR_EQ(n.msg_id, id + 4);
    ASSERT_OK(round_trip("msg/7f00000100002a9f0000000000000000.json", NULL));
    ASSERT_OK(parse("msg/00000000000000000000000000000000000000000000000000000001", &n));
    ASSERT_EQ(parse("msg/7F00000100002A9F000000000000000", &n), -EINVAL);
    ASSERT_EQ(parse("msg/7F00000100002A9F000000000000000G", &n), -EINVAL);
    ASSERT_EQ(parse("msg/7F00000100002A9F0000000000000000.now", &n), -EINVAL);
    ASSERT_EQ(parse("msg/7F00000100002A9F0000000000000000/x", &n), -ENOTDIR);
}

TEST(test_path_child_and_name)
{
    struct mqfs_node root, t, f;
    mqfs_node_root(&root);
    ASSERT_OK(mqfs_node_child(&root, "topicXYZ", 5, &t)); /* len bounds the name */
    ASSERT_EQ(t.kind, MQFS_DIR_TOPIC);
    ASSERT_EQ(mqfs_node_child(&root, "", 0, &t), -EINVAL);
    ASSERT_OK(mqfs_node_child(&root, "topic", 5, &t));
    ASSERT_EQ(mqfs_node_child(&t, "a/b", 3, &f), -EINVAL);
    ASSERT_EQ(mqfs_node_child(&t, "a\0b", 3, &f), -EINVAL);
    ASSERT_OK(mqfs_node_child(&t, "T:A.json", 8, &f));
    char buf[64];
    ASSERT_EQ(mqfs_node_name(&f, buf, sizeof(buf)), 8);
    ASSERT_STR_EQ(buf, "T:A.json");
    ASSERT_EQ(mqfs_node_path(&f, buf, sizeof(buf)), 14);
    ASSERT_STR_EQ(buf, "topic/T:A.json");
    ASSERT_EQ(mqfs_node_path(&f, buf, 14), -ENAMETOOLONG);
    ASSERT_EQ(mqfs_node_path(&f, buf, 3), -ENAMETOOLONG);
    ASSERT_EQ(mqfs_node_name(&root, buf, sizeof(buf)), 0);
}

/* ---- line assembly ---- */

/* A fake broker: records each accepted message, fails the batches whose 1-based number is
 * fail_at (0: none) with fail_err. */
struct sink {
    char out[1 << 16];
    size_t out_len;
    int batches, fail_at, fail_err, count_only;
    size_t max_batch, msgs;
};

static int sink_send(void *arg, const struct mqc_body *lines, size_t n)
{
    struct sink *s = arg;
    s->batches++;
    if (s->fail_at && s->batches == s->fail_at)
        return s->fail_err;
    if (n > s->max_batch)
        s->max_batch = n;
    s->msgs += n;
    if (s->count_only)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (lines[i].len == 0 || s->out_len + lines[i].len + 1 > sizeof(s->out))
            return -EIO;
        memcpy(s->out + s->out_len, lines[i].p, lines[i].len);
        s->out_len += lines[i].len;
        s->out[s->out_len++] = '|'; /* message separator */
    }
    return 0;
}

static const char text[] = "alpha\nbe\nc\ndelta epsilon\nzeta";
static const char text_msgs[] = "alpha|be|c|delta epsilon|zeta|";

TEST(test_lines_every_split)
{
    size_t n = strlen(text);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            struct mqfs_lines l;
            struct sink s = {0};
            mqfs_lines_init(&l, NULL);
            ASSERT_EQ(mqfs_lines_write(&l, text, a, sink_send, &s), a);
            ASSERT_EQ(mqfs_lines_write(&l, text + a, b - a, sink_send, &s), b - a);
            ASSERT_EQ(mqfs_lines_write(&l, text + b, n - b, sink_send, &s), n - b);
            ASSERT_EQ(mqfs_lines_pending(&l), 4);
            ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
            ASSERT_EQ(mqfs_lines_pending(&l), 0);
            ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s)); /* nothing left: no send */
            s.out[s.out_len] = '\0';
            ASSERT_STR_EQ(s.out, text_msgs);
            ASSERT_LE(s.batches, 4);
            mqfs_lines_destroy(&l);
        }
    }
}

TEST(test_lines_byte_by_byte)
{
    struct mqfs_lines l;
    struct sink s = {0};
    mqfs_lines_init(&l, NULL);
    for (size_t i = 0; text[i]; i++)
        ASSERT_EQ(mqfs_lines_write(&l, text + i, 1, sink_send, &s), 1);
    ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
    s.out[s.out_len] = '\0';
    ASSERT_STR_EQ(s.out, text_msgs);
    ASSERT_EQ(s.batches, 5); /* one per completed line, and the flush */
    mqfs_lines_destroy(&l);
}

TEST(test_lines_one_batch_per_write)
{
    struct mqfs_lines l;
    struct sink s = {0};
    mqfs_lines_init(&l, NULL);
    ASSERT_EQ(mqfs_lines_write(&l, "pre", 3, sink_send, &s), 3);
    ASSERT_EQ(s.batches, 0);
    ASSERT_EQ(mqfs_lines_write(&l, "fix\nb\nc\nd", 9, sink_send, &s), 9);
    ASSERT_EQ(s.batches, 1);
    ASSERT_EQ(s.max_batch, 3);
    ASSERT_EQ(mqfs_lines_write(&l, "\n", 1, sink_send, &s), 1);
    s.out[s.out_len] = '\0';
    ASSERT_STR_EQ(s.out, "prefix|b|c|d|");
    mqfs_lines_destroy(&l);
}

TEST(test_lines_failure_keeps_state)
{
    struct mqfs_lines l;
    struct sink s = {.fail_at = 1, .fail_err = -EIO};
    mqfs_lines_init(&l, NULL);
    ASSERT_EQ(mqfs_lines_write(&l, "ab", 2, sink_send, &s), 2); /* carried, no send */
    ASSERT_EQ(mqfs_lines_write(&l, "c\nd\ne", 5, sink_send, &s), -EIO);
    ASSERT_EQ(mqfs_lines_pending(&l), 2); /* carry unchanged */
    ASSERT_EQ(s.out_len, 0);
    /* the retry of the same bytes succeeds and sends exactly once */
    ASSERT_EQ(mqfs_lines_write(&l, "c\nd\ne", 5, sink_send, &s), 5);
    ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
    s.out[s.out_len] = '\0';
    ASSERT_STR_EQ(s.out, "abc|d|e|");
    /* a failing flush keeps the partial line for the next one */
    s.fail_at = s.batches + 2;
    ASSERT_EQ(mqfs_lines_write(&l, "x\ny", 3, sink_send, &s), 3);
    ASSERT_EQ(mqfs_lines_flush(&l, sink_send, &s), -EIO);
    ASSERT_EQ(mqfs_lines_pending(&l), 1);
    ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
    s.out[s.out_len] = '\0';
    ASSERT_STR_EQ(s.out, "abc|d|e|x|y|");
    mqfs_lines_destroy(&l);
}

TEST(test_lines_checks_before_sending)
{
    struct mqfs_lines l;
    struct sink s = {0};
    struct mqfs_lines_cfg cfg = {.max_line = 8};
    mqfs_lines_init(&l, &cfg);
    ASSERT_EQ(mqfs_lines_write(&l, "a\n\nb\n", 5, sink_send, &s), -EINVAL); /* empty line */
    ASSERT_EQ(mqfs_lines_write(&l, "\n", 1, sink_send, &s), -EINVAL);
    ASSERT_EQ(mqfs_lines_write(&l, "a\n123456789\n", 12, sink_send, &s), -EMSGSIZE);
    ASSERT_EQ(mqfs_lines_write(&l, "a\n123456789", 11, sink_send, &s), -EMSGSIZE); /* tail */
    ASSERT_EQ(s.batches, 0);
    ASSERT_EQ(mqfs_lines_write(&l, "1234", 4, sink_send, &s), 4);
    ASSERT_EQ(mqfs_lines_write(&l, "5678\n", 5, sink_send, &s), 5); /* exactly 8 */
    /* an empty line right after a carried partial one is not empty */
    ASSERT_EQ(mqfs_lines_write(&l, "x", 1, sink_send, &s), 1);
    ASSERT_EQ(mqfs_lines_write(&l, "\n", 1, sink_send, &s), 1);
    s.out[s.out_len] = '\0';
    ASSERT_STR_EQ(s.out, "12345678|x|");
    mqfs_lines_destroy(&l);
}

TEST(test_lines_oversized_line_sends_nothing_of_it)
{
    /* A line that grows past the limit after part of it was accepted (the kernel's 1 MiB
     * requests): the accepted part is dropped, the rest refused through its '\n', and so are
     * the caller's rewrites of that refused end after a short write; the next line is fine. */
    struct mqfs_lines l;
    struct sink s = {0};
    struct mqfs_lines_cfg cfg = {.max_line = 8};
    mqfs_lines_init(&l, &cfg);
    ASSERT_EQ(mqfs_lines_write(&l, "ok\n1234", 7, sink_send, &s), 7);
    ASSERT_EQ(mqfs_lines_write(&l, "5678", 4, sink_send, &s), 4);
    ASSERT_EQ(mqfs_lines_write(&l, "9ab\nc\n", 6, sink_send, &s), -EMSGSIZE); /* over 8 */
    ASSERT_EQ(mqfs_lines_pending(&l), 0);
    ASSERT_EQ(mqfs_lines_write(&l, "9ab\nc\n", 6, sink_send, &s), -EMSGSIZE); /* a retry */
    ASSERT_EQ(mqfs_lines_write(&l, "9a", 2, sink_send, &s), -EMSGSIZE);       /* a shorter one */
    ASSERT_EQ(mqfs_lines_write(&l, "c\n", 2, sink_send, &s), 2);              /* new bytes */
    ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
    /* over the limit without a '\n': refused until a write holding one, which is refused too */
    ASSERT_EQ(mqfs_lines_write(&l, "12345", 5, sink_send, &s), 5);
    ASSERT_EQ(mqfs_lines_write(&l, "6789", 4, sink_send, &s), -EMSGSIZE);
    ASSERT_EQ(mqfs_lines_write(&l, "x", 1, sink_send, &s), -EMSGSIZE);
    ASSERT_EQ(mqfs_lines_write(&l, "yz\nd", 4, sink_send, &s), -EMSGSIZE);
    ASSERT_EQ(mqfs_lines_write(&l, "yz\nd", 4, sink_send, &s), -EMSGSIZE); /* a retry */
    ASSERT_EQ(mqfs_lines_write(&l, "d\ne", 3, sink_send, &s), 3);
    /* a flush (the writer's close) ends an oversized line: nothing of it is sent */
    ASSERT_EQ(mqfs_lines_write(&l, "123456", 6, sink_send, &s), 6); /* "e" + 6 */
    ASSERT_EQ(mqfs_lines_write(&l, "78", 2, sink_send, &s), -EMSGSIZE);
    ASSERT_EQ(mqfs_lines_flush(&l, sink_send, &s), -EMSGSIZE);
    ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
    ASSERT_EQ(mqfs_lines_write(&l, "78\n", 3, sink_send, &s), 3); /* a new line */
    /* a flush forgets a refused end: the same bytes are then a line of their own */
    ASSERT_EQ(mqfs_lines_write(&l, "1234567", 7, sink_send, &s), 7);
    ASSERT_EQ(mqfs_lines_write(&l, "89\n", 3, sink_send, &s), -EMSGSIZE);
    ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
    ASSERT_EQ(mqfs_lines_write(&l, "89\n", 3, sink_send, &s), 3);
    s.out[s.out_len] = '\0';
    ASSERT_STR_EQ(s.out, "ok|c|d|78|89|");
    mqfs_lines_destroy(&l);
}

TEST(test_lines_batch_limits)
{
    struct mqfs_lines l;
    struct sink s = {0};
    /* 10 bytes per message + body; batches of at most 40 encoded bytes or 3 messages */
    struct mqfs_lines_cfg cfg = {.batch_bytes = 40, .batch_msgs = 3, .msg_overhead = 10};
    mqfs_lines_init(&l, &cfg);
    ASSERT_EQ(mqfs_lines_write(&l, "a\nb\nc\nd\ne\n", 10, sink_send, &s), 10);
    ASSERT_EQ(s.batches, 2); /* 3 + 2 */
    ASSERT_EQ(s.max_batch, 3);
    s.batches = 0;
    s.max_batch = 0;
    /* 15-byte lines cost 25: one per batch; a single line over the byte limit still goes */
    ASSERT_EQ(mqfs_lines_write(&l, "aaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
                               57, sink_send, &s),
              57);
    ASSERT_EQ(s.batches, 2);
    ASSERT_EQ(s.max_batch, 1);
    /* the second batch fails: a short write covering the first */
    s.batches = 0;
    s.fail_at = 2;
    s.fail_err = -EIO;
    size_t before = s.out_len;
    ASSERT_EQ(mqfs_lines_write(&l, "p\nq\nr\ns\nt", 9, sink_send, &s), 6);
    ASSERT_EQ(s.out_len - before, 6); /* "p|q|r|" */
    ASSERT_EQ(mqfs_lines_pending(&l), 0);
    s.fail_at = 0;
    ASSERT_EQ(mqfs_lines_write(&l, "s\nt", 3, sink_send, &s), 3);
    ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
    s.out[s.out_len] = '\0';
    ASSERT_STR_EQ(s.out,
                  "a|b|c|d|e|aaaaaaaaaaaaaaa|bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb|p|q|r|s|t|");
    mqfs_lines_destroy(&l);
}

TEST(test_lines_checks_beyond_first_batch)
{
    /* Lines past the first batch are checked before the first batch goes, too: a bad one there
     * sends nothing and leaves the carried partial line as it was. */
    struct mqfs_lines l;
    struct sink s = {0};
    struct mqfs_lines_cfg cfg = {.max_line = 8, .batch_msgs = 2};
    mqfs_lines_init(&l, &cfg);
    ASSERT_EQ(mqfs_lines_write(&l, "z", 1, sink_send, &s), 1);
    ASSERT_EQ(mqfs_lines_write(&l, "a\nb\nc\n\nd\n", 10, sink_send, &s), -EINVAL);
    ASSERT_EQ(mqfs_lines_write(&l, "a\nb\nc\n123456789\n", 16, sink_send, &s), -EMSGSIZE);
    ASSERT_EQ(mqfs_lines_write(&l, "a\nb\nc\n123456789", 15, sink_send, &s), -EMSGSIZE);
    ASSERT_EQ(s.batches, 0);
    ASSERT_EQ(mqfs_lines_pending(&l), 1);
    ASSERT_EQ(mqfs_lines_write(&l, "a\nb\nc\nd", 7, sink_send, &s), 7);
    ASSERT_EQ(s.batches, 2); /* za b | c */
    ASSERT_OK(mqfs_lines_flush(&l, sink_send, &s));
    s.out[s.out_len] = '\0';
    ASSERT_STR_EQ(s.out, "za|b|c|d|");
    mqfs_lines_destroy(&l);
}

TEST(test_lines_big)
{
    /* 1 MiB of 7-byte lines: many batches under the default 4 MiB limit with real overhead */
    size_t n = 1 << 20;
    char *buf = malloc(n);
    ASSERT(buf != NULL);
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % 8 == 7) ? '\n' : 'x';
    struct mqfs_lines l;
    struct sink s = {.count_only = 1};
    struct mqfs_lines_cfg cfg = {.msg_overhead = 80};
    mqfs_lines_init(&l, &cfg);
    ASSERT_EQ(mqfs_lines_write(&l, buf, n, sink_send, &s), n);
    ASSERT_EQ(s.msgs, n / 8);
    ASSERT_EQ(s.max_batch, 16384); /* the count limit binds first: 16384 * 87 < 4 MiB */
    ASSERT_EQ(s.batches, 8);
    /* with 1000 bytes of overhead the byte limit binds: 4 MiB / 1007 per batch */
    struct mqfs_lines l2;
    struct sink s2 = {.count_only = 1};
    cfg.msg_overhead = 1000;
    mqfs_lines_init(&l2, &cfg);
    ASSERT_EQ(mqfs_lines_write(&l2, buf, n, sink_send, &s2), n);
    ASSERT_EQ(s2.max_batch, (4u << 20) / 1007);
    ASSERT_EQ(s2.msgs, n / 8);
    mqfs_lines_destroy(&l2);
    free(buf);
    mqfs_lines_destroy(&l);
}

/* ---- the inode table ---- */

static struct mqfs_inode *ref_path(struct mqfs *fs, const char *path, int lookup)
{
    struct mqfs_node n;
    if (parse(path, &n))
        return NULL;
    return mqfs__inode_ref(fs, &n, lookup);
}

TEST(test_inode_table)
{
    struct mqfs fs;
    memset(&fs, 0, sizeof(fs));
    ASSERT_OK(mqfs__table_init(&fs));
    struct mqfs_inode *root = mqfs__inode_get(&fs, FUSE_ROOT_ID);
    ASSERT(root != NULL);
    ASSERT_EQ(root->node.kind, MQFS_ROOT);
    struct mqfs_inode *top = ref_path(&fs, "topic", 1);
    ASSERT(top != NULL);
    ASSERT_EQ(top->ino, 2); /* the top-level entries follow the root, in listing order */
    ASSERT_EQ(ref_path(&fs, "cluster", 0)->ino, 8);
    mqfs__inode_forget(&fs, top, 1);
    ASSERT(mqfs__inode_get(&fs, 2) == top); /* pinned */

    struct mqfs_inode *a = ref_path(&fs, "topic/A", 1);
    ASSERT(a != NULL);
    uint64_t ino = a->ino;
    ASSERT_GE(ino, 9);
    ASSERT(ref_path(&fs, "/topic//A", 1) == a); /* the canonical path is the key */
    ASSERT_EQ(a->nlookup, 2);
    mqfs__inode_forget(&fs, a, 1);
    ASSERT(mqfs__inode_get(&fs, ino) == a);
    mqfs__inode_forget(&fs, a, 5); /* more than it has: clamped (and logged) */
    ASSERT(mqfs__inode_get(&fs, ino) == NULL);
    a = ref_path(&fs, "topic/A", 1);
    ASSERT_GT(a->ino, ino); /* numbers are never reused */

    /* an open file keeps its inode after the kernel forgot it */
    ino = a->ino;
    a->nopen++;
    mqfs__inode_forget(&fs, a, 1);
    ASSERT(mqfs__inode_get(&fs, ino) == a);
    mqfs__inode_close(&fs, a);
    ASSERT(mqfs__inode_get(&fs, ino) == NULL);

    /* a .json view and its modes in another order are one inode */
    struct mqfs_inode *g = ref_path(&fs, "group/G/T.now.json", 1);
    ASSERT(g != NULL && ref_path(&fs, "group/G/T.json.now", 1) == g);
    ASSERT_STR_EQ(g->path, "group/G/T.json.now");

    /* sizes (no session: nothing to notify) */
    pthread_mutex_init(&fs.lock, NULL);
    ASSERT_OK(mqfs__set_size(&fs, g->ino, 42));
    ASSERT_EQ(g->size, 42);
    struct stat st;
    mqfs__fill_attr(&fs, g, &st);
    ASSERT_EQ(st.st_size, 42);
    ASSERT_EQ(st.st_blksize, 1 << 20);
    ASSERT_EQ(st.st_mode, S_IFREG | 0444);
    ASSERT_EQ(mqfs__set_size(&fs, 999999, 1), -ENOENT);
    mqfs__fill_attr(&fs, mqfs__inode_get(&fs, 2), &st);
    ASSERT_EQ(st.st_mode, S_IFDIR | 0755);
    pthread_mutex_destroy(&fs.lock);
    mqfs__table_destroy(&fs);
}

/* ---- admin bodies ---- */

TEST(test_group_hidden)
{
    static const char *hidden[] = {
        "TOOLS_CONSUMER",     "FILTERSRV_CONSUMER", "SELF_TEST_C_GROUP",
        "CID_ONS-HTTP-PROXY", "CID_ONSAPI_PULL",    "CID_ONSAPI_OWNER",
        "CID_RMQ_SYS_TRANS",  "DEFAULT_CONSUMER",   "__MONITOR_CONSUMER"};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        ASSERT_EQ(mqfs__group_hidden(hidden[i]), 1);
    static const char *shown[] = {"G1", "TOOLS_CONSUMER2", "CID_ONSAPI", "CID_RMQ_SYS",
                                  "cid_rmq_sys_x"};
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
        ASSERT_EQ(mqfs__group_hidden(shown[i]), 0);
}

TEST(test_admin_topic_list_parse)
{
    const char *body = "{\"topicList\":[\"TBW102\",\"Orders\",\"%RETRY%G1\",\"x\"]}";
    char **names = NULL;
    size_t n = 0;
    ASSERT_OK(mqc_admin_parse_topic_list(body, strlen(body), &names, &n));
    ASSERT_EQ(n, 4);
    ASSERT_STR_EQ(names[1], "Orders");
    ASSERT_STR_EQ(names[3], "x");
    free(names);
    ASSERT_OK(mqc_admin_parse_topic_list("{\"topicList\":[]}", 16, &names, &n));
    ASSERT_EQ(n, 0);
    free(names);
    ASSERT_EQ(mqc_admin_parse_topic_list("{\"topicList\":[1]}", 17, &names, &n), -EBADMSG);
    ASSERT_EQ(mqc_admin_parse_topic_list("{}", 2, &names, &n), -EBADMSG);
    ASSERT_EQ(mqc_admin_parse_topic_list("{", 1, &names, &n), -EBADMSG);
}

TEST(test_admin_cluster_parse)
{
    const char *body =
        "{\"brokerAddrTable\":{\"broker-b\":{\"cluster\":\"C1\",\"brokerName\":\"broker-b\","
        "\"brokerAddrs\":{1:\"10.0.0.2:10911\",0:\"10.0.0.1:10911\"}},"
        "\"broker-a\":{\"cluster\":\"C1\",\"brokerName\":\"broker-a\","
        "\"brokerAddrs\":{0:\"127.0.0.1:10911\"}}},"
        "\"clusterAddrTable\":{\"C1\":[\"broker-a\",\"broker-b\"]}}";
    struct mqc_broker_info *b = NULL;
    size_t n = 0;
    ASSERT_OK(mqc_admin_parse_cluster(body, strlen(body), &b, &n));
    ASSERT_EQ(n, 3);
    /* sorted by cluster, broker name, broker id */
    ASSERT_STR_EQ(b[0].name, "broker-a");
    ASSERT_STR_EQ(b[0].cluster, "C1");
    ASSERT_STR_EQ(b[1].name, "broker-b");
    ASSERT_EQ(b[1].id, 0);
    ASSERT_STR_EQ(b[1].addr, "10.0.0.1:10911");
    ASSERT_EQ(b[2].id, 1);
    free(b);
    ASSERT_OK(mqc_admin_parse_cluster("{\"brokerAddrTable\":{}}", 22, &b, &n));
    ASSERT_EQ(n, 0);
    free(b);
    ASSERT_EQ(mqc_admin_parse_cluster("[]", 2, &b, &n), -EBADMSG);
}

TEST_MAIN(test_path_top, test_path_topic, test_path_group, test_group_hidden, test_path_queue,
          test_path_key_blob_msg, test_path_child_and_name, test_lines_every_split,
          test_lines_byte_by_byte, test_lines_one_batch_per_write, test_lines_failure_keeps_state,
          test_lines_checks_before_sending, test_lines_oversized_line_sends_nothing_of_it,
          test_lines_batch_limits, test_lines_checks_beyond_first_batch, test_lines_big,
          test_admin_topic_list_parse, test_admin_cluster_parse, test_inode_table)
