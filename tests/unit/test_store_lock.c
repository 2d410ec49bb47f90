/* test_store_lock.c — the store lock (storePathRootDir/lock, docs/FORMATS.md 1.8): a second
 * store_open of a root that is open (here, or in another process) fails with -EBUSY before it
 * reads, recovers or writes anything; the open store keeps working and keeps its data; after
 * store_close the root opens again. */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/mq_err.h"
#include "common/mq_util.h"
#include "tests/unit/mq_test.h"
#include "tests/unit/store_test_util.h"

/* Reads queue 0 of topic from offset 0; returns the number of messages, each body checked to
 * be "m<i>" for its offset i, or -1. */
static int64_t count_queue(struct store *s, const char *topic)
{
    struct store_get_result *g;
    int64_t off = 0;
    for (;;) {
        if (store_get_messages(s, topic, strlen(topic), 0, off, 64, 1 << 30, NULL, 0, &g))
            return -1;
        if (g->status != STORE_FOUND) {
            store_release(s, g);
            return off;
        }
        for (size_t i = 0; i < g->count; i++) {
            struct mq_msg d;
            char want[32];
            int n = snprintf(want, sizeof(want), "m%d", (int)off);
            if (mq_msg_decode(g->msgs[i].data, g->msgs[i].len, 0, MQ_MSG_CHECK_CRC, &d) <= 0 ||
                d.body_len != (uint32_t)n || memcmp(d.body, want, (size_t)n)) {
                store_release(s, g);
                return -1;
            }
            off++;
        }
        store_release(s, g);
    }
}

static void put_range(struct store *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        char body[32];
        int n = snprintf(body, sizeof(body), "m%d", i);
        struct mq_msg m = tu_msg("Lock", 0, body, (uint32_t)n, NULL);
        struct store_put_result r;
        ASSERT_OK(store_put(s, &m, &r));
        ASSERT_EQ(r.queue_offset, i);
    }
    ASSERT_OK(store_dispatch_wait(s));
}

/* A digest of every file and directory under dir: names, sizes, modes, mtimes (ns), bytes. */
static void snapshot(const char *dir, char *out, size_t cap)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && (ls -lR --time-style=+%%s.%%N . && find . -type f -exec md5sum {} +)"
             " | md5sum",
             dir);
    FILE *p = popen(cmd, "r");
    ASSERT(p != NULL);
    out[0] = '\0';
    if (!fgets(out, (int)cap, p))
        out[0] = '\0';
    pclose(p);
    ASSERT(strlen(out) >= 32);
}

static int exists(const char *dir, const char *name)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

TEST(test_second_open_refused)
{
    struct store_config c;
    struct store *s, *s2 = NULL;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    put_range(s, 0, 20);
    ASSERT(exists(dir, "lock"));
    ASSERT(exists(dir, "abort"));

    /* in this process: flock locks belong to the open file, so this is refused too */
    ASSERT_EQ(store_open(&c, NULL, NULL, &s2), -EBUSY);
    ASSERT(s2 == NULL);
    /* in another process */
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        struct store *s3;
        _exit(store_open(&c, NULL, NULL, &s3) == -EBUSY ? 0 : 1);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    ASSERT(exists(dir, "abort")); /* the refused opens left the open store's marker */

    /* the open store is unharmed: its data is served and it takes more */
    ASSERT_EQ(count_queue(s, "Lock"), 20);
    put_range(s, 20, 30);
    ASSERT_EQ(count_queue(s, "Lock"), 30);
    store_close(s);
    ASSERT(!exists(dir, "abort")); /* a clean close */
    ASSERT(exists(dir, "lock"));   /* kept: never unlinked, so no two files are ever locked */

    /* unlocked: opens again, with everything */
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(count_queue(s, "Lock"), 30);
    ASSERT_EQ(store_open(&c, NULL, NULL, &s2), -EBUSY);
    tu_close(s, dir);
}

/* A refused open changes nothing at all: with the lock held from outside over a closed store
 * (no store threads that could change files meanwhile), every file and directory is as it
 * was, and no abort file appears. */
TEST(test_refused_open_changes_nothing)
{
    struct store_config c;
    struct store *s = NULL;
    char *dir, before[128], after[128], path[600];
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    put_range(s, 0, 10);
    store_close(s);
    snprintf(path, sizeof(path), "%s/lock", dir);
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    ASSERT_OK(flock(fd, LOCK_EX | LOCK_NB));
    snapshot(dir, before, sizeof(before));
    s = NULL;
    ASSERT_EQ(store_open(&c, NULL, NULL, &s), -EBUSY);
    ASSERT(s == NULL);
    snapshot(dir, after, sizeof(after));
    ASSERT_STR_EQ(before, after);
    ASSERT(!exists(dir, "abort"));
    close(fd);
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(count_queue(s, "Lock"), 10);
    tu_close(s, dir);
}

/* A failed open (here: the lock file cannot be opened) takes no lock and leaves no trace. */
TEST(test_lock_open_failure)
{
    struct store_config c;
    struct store *s;
    char *dir;
    store_io_fault(STORE_IO_OPEN, 1, EIO, 0); /* the first open is the lock file's */
    ASSERT_EQ(tu_open(64 * 1024, NULL, &c, &s, &dir), -EIO);
    store_io_fault_clear();
    ASSERT(!exists(dir, "abort"));
    ASSERT(!exists(dir, "commitlog"));
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    put_range(s, 0, 3);
    tu_close(s, dir);
}

TEST_MAIN(test_second_open_refused, test_refused_open_changes_nothing, test_lock_open_failure)
