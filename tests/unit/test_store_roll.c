/* test_store_roll.c — unit tests for the next files made ahead of their turn (warm.c,
 * store__mlist_spare): the commitlog's, made once the writer is half way through a file, taken
 * by the roll (the same inode, renamed into place, records readable across it), never listed
 * before, and gone after a close or, left by a crash, at the next open; the consume queue's
 * and rendered index's, taken by the dispatcher's roll and deleted with their topic; the index
 * file's, renamed to its time. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/mq_err.h"
#include "store/store_int.h" /* warm_lock, idle_wake: the idle reserve's test */
#include "tests/unit/mq_test.h"
#include "tests/unit/store_test_util.h"

#define CLOG_SIZE (64 * 1024)

static void clog_file(char *buf, size_t n, const char *dir, int64_t base, const char *suffix)
{
    snprintf(buf, n, "%s/commitlog/%020lld%s", dir, (long long)base, suffix);
}

/* The inode of path once it exists (waits up to 5 s), or 0. */
static ino_t wait_inode(const char *path)
{
    struct stat st;
    for (int i = 0; i < 500; i++) {
        if (stat(path, &st) == 0)
            return st.st_ino;
        usleep(10000);
    }
    return 0;
}

/* Waits (up to 5 s) until the store has made the files due ahead of their turn. */
static int wait_made(struct store *s)
{
    for (int i = 0; i < 500; i++) {
        if (store_files_ahead_pending(s) == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Appends 1 KiB messages until the commitlog's write position reaches at least `until`. */
static int put_until(struct store *s, int64_t until, int *n)
{
    static char body[1024];
    memset(body, 'p', sizeof(body));
    while (store_clog_max_offset(s) < until) {
        struct mq_msg m = tu_msg("Roll", 0, body, sizeof(body), NULL);
        struct store_put_result r;
        int rc = store_put(s, &m, &r);
        if (rc)
            return rc;
        (*n)++;
    }
    return 0;
}

/* Appends messages from..to-1 to queue 0 of topic (keyed: KEYS k<i>), then waits for their
 * dispatch. */
static int put_range(struct store *s, const char *topic, int keyed, int from, int to)
{
    char props[64];
    for (int i = from; i < to; i++) {
        snprintf(props, sizeof(props), "KEYS\x01k%d\x02", i);
        struct mq_msg m = tu_msg(topic, 0, "x", 1, keyed ? props : NULL);
        struct store_put_result r;
        int rc = store_put(s, &m, &r);
        if (rc)
            return rc;
    }
    return store_dispatch_wait(s);
}

TEST(test_roll_takes_the_file_made_ahead)
{
    struct store_config c;
    struct store *s;
    char *dir, spare[700], placed[700];
    int n = 0;
    ASSERT_OK(tu_open(CLOG_SIZE, NULL, &c, &s, &dir));
    clog_file(spare, sizeof(spare), dir, CLOG_SIZE, ".next");
    clog_file(placed, sizeof(placed), dir, CLOG_SIZE, "");
    ASSERT_OK(put_until(s, CLOG_SIZE / 4, &n));
    ASSERT(!exists(spare)); /* not before half way */
    ASSERT_OK(put_until(s, CLOG_SIZE / 2 + 1, &n));
    ASSERT_OK(wait_made(s));
    ino_t ino = wait_inode(spare);
    ASSERT(ino != 0);
    ASSERT(!exists(placed));                    /* not listed under its name before the roll */
    ASSERT_OK(put_until(s, CLOG_SIZE + 1, &n)); /* rolls */
    struct stat st;
    ASSERT_EQ(stat(placed, &st), 0);
    ASSERT_EQ(st.st_ino, ino); /* the roll renamed it into place */
    ASSERT_EQ(st.st_size, CLOG_SIZE);
    ASSERT(!exists(spare));
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "Roll", 4, 0), n);
    struct store_get_result *g;
    ASSERT_OK(store_get_messages(s, "Roll", 4, 0, n - 1, 1, 1 << 20, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_FOUND);
    ASSERT_GE(g->msgs[0].phys_offset, CLOG_SIZE); /* in the file made ahead */
    store_release(s, g);
    /* the next one is made ahead in turn, and a close deletes it unused */
    clog_file(spare, sizeof(spare), dir, 2 * CLOG_SIZE, ".next");
    ASSERT_OK(put_until(s, CLOG_SIZE + CLOG_SIZE / 2 + 1, &n));
    ASSERT_OK(wait_made(s));
    ASSERT(wait_inode(spare) != 0);
    store_close(s);
    ASSERT(!exists(spare));
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(store_max_offset(s, "Roll", 4, 0), n);
    tu_close(s, dir);
}

/* A file being made when the process died is deleted at the next open, and recovery is not
 * misled by it. */
TEST(test_spare_left_by_a_crash)
{
    struct store_config c;
    struct store *s;
    char *dir, spare[700];
    int n = 0;
    ASSERT_OK(tu_open(CLOG_SIZE, NULL, &c, &s, &dir));
    ASSERT_OK(put_until(s, 1000, &n));
    store_close(s);
    clog_file(spare, sizeof(spare), dir, CLOG_SIZE, ".next");
    FILE *f = fopen(spare, "w");
    ASSERT(f != NULL);
    fputs("not a commitlog", f);
    fclose(f);
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT(!exists(spare));
    ASSERT_OK(put_until(s, 2 * CLOG_SIZE + 1, &n)); /* rolls twice past where it was */
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "Roll", 4, 0), n);
    tu_close(s, dir);
}

/* The consume queue's and rendered index's next files: made ahead half way through, taken by
 * the dispatcher's roll, and deleted with their topic. tu_config: 1,000 entries per file. */
TEST(test_queue_files_made_ahead)
{
    struct store_config c;
    struct store *s;
    char *dir, cq_spare[700], cq_placed[700], ri_spare[700], topic_dir[700];
    ASSERT_OK(tu_open(1 << 20, NULL, &c, &s, &dir));
    snprintf(cq_spare, sizeof(cq_spare), "%s/consumequeue/Q/0/%020d.next", dir, 1000 * 20);
    snprintf(cq_placed, sizeof(cq_placed), "%s/consumequeue/Q/0/%020d", dir, 1000 * 20);
    snprintf(ri_spare, sizeof(ri_spare), "%s/renderindex/Q/0/%020d.next", dir, 1000 * 8);
    ASSERT_OK(put_range(s, "Q", 0, 0, 600));
    ASSERT_OK(wait_made(s));
    ino_t ino = wait_inode(cq_spare);
    ASSERT(ino != 0);
    ASSERT(wait_inode(ri_spare) != 0);
    ASSERT_OK(put_range(s, "Q", 0, 600, 1200));
    struct stat st;
    ASSERT_EQ(stat(cq_placed, &st), 0);
    ASSERT_EQ(st.st_ino, ino);
    ASSERT(!exists(cq_spare) && !exists(ri_spare));
    ASSERT_EQ(store_max_offset(s, "Q", 1, 0), 1200);
    struct store_get_result *g;
    ASSERT_OK(store_get_messages(s, "Q", 1, 0, 1100, 1, 1 << 20, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_FOUND);
    ASSERT_EQ(g->count, 1);
    store_release(s, g);
    /* past half of the second files: their successors are made; deleting the topic takes
     * them with its directories */
    ASSERT_OK(put_range(s, "Q", 0, 1200, 1600));
    snprintf(cq_spare, sizeof(cq_spare), "%s/consumequeue/Q/0/%020d.next", dir, 2000 * 20);
    ASSERT_OK(wait_made(s));
    ASSERT(wait_inode(cq_spare) != 0);
    ASSERT_OK(store_delete_topic(s, "Q", 1));
    snprintf(topic_dir, sizeof(topic_dir), "%s/consumequeue/Q", dir);
    ASSERT(!exists(topic_dir));
    snprintf(topic_dir, sizeof(topic_dir), "%s/renderindex/Q", dir);
    ASSERT(!exists(topic_dir));
    tu_close(s, dir);
}

/* Index files hold tu_config's 4,000 keys: the next one is made ahead half way through, and
 * the roll renames it to its time; keys in it are found. */
TEST(test_index_file_made_ahead)
{
    struct store_config c;
    struct store *s;
    char *dir, spare[700];
    ASSERT_OK(tu_open(1 << 20, NULL, &c, &s, &dir));
    snprintf(spare, sizeof(spare), "%s/index/index.next", dir);
    ASSERT_OK(put_range(s, "I", 1, 0, 2100));
    ASSERT_OK(wait_made(s));
    ino_t ino = wait_inode(spare);
    ASSERT(ino != 0);
    ASSERT_OK(put_range(s, "I", 1, 2100, 4200));
    ASSERT(!exists(spare));
    char sub[700], cmd[800];
    snprintf(sub, sizeof(sub), "%s/index", dir);
    snprintf(cmd, sizeof(cmd), "ls -i '%s' | grep -c '^ *%lu '", sub, (unsigned long)ino);
    FILE *p = popen(cmd, "r");
    int found = 0;
    ASSERT(p != NULL);
    ASSERT_EQ(fscanf(p, "%d", &found), 1);
    pclose(p);
    ASSERT_EQ(found, 1); /* the spare, under its time name */
    int64_t phys[2];
    ASSERT_EQ(store_query_by_key(s, "I", 1, "k4199", 5, 0, INT64_MAX, phys, 2), 1);
    ASSERT_EQ(store_query_by_key(s, "I", 1, "k7", 2, 0, INT64_MAX, phys, 2), 1);
    tu_close(s, dir);
}

/* The idle reserve's thread runs SCHED_IDLE: on a busy machine it can be preempted for long at
 * any point. It took warm_lock around its checks and its sleep, and a writer waking it took the
 * same lock: the writer (the broker's I/O thread) then waited for a thread that gets no CPU.
 * Stand-in for such a preemption: warm_lock held while the writer passes the offset the
 * sleeping idle thread asked to be woken at. The writes must not wait. */
static void idle_8m(struct store_config *c)
{
    c->commit_log_warm_idle = 8 << 20;
}

/* Opens a store with an 8 MiB reserve, makes its first file with one record and waits (up to
 * 5 s) until the idle thread has read its reserve and sleeps until the writer is half way. */
static int open_idle_asleep(struct store_config *c, struct store **s, char **dir)
{
    int rc = tu_open(64 << 20, idle_8m, c, s, dir);
    struct mq_msg m = tu_msg("I", 0, "x", 1, NULL);
    struct store_put_result r;
    if (rc == 0)
        rc = store_put(*s, &m, &r);
    for (int i = 0; rc == 0 && i < 500 && atomic_load(&(*s)->idle_wake) == INT64_MAX; i++)
        usleep(10000);
    return rc;
}

struct put_args {
    struct store *s;
    atomic_int done;
};

static void *put_6m(void *arg)
{
    struct put_args *a = arg;
    static char body[1 << 20];
    struct mq_msg m = tu_msg("I", 0, body, sizeof(body), NULL);
    struct store_put_result r;
    for (int i = 0; i < 6; i++)
        if (store_put(a->s, &m, &r))
            return NULL;
    atomic_store(&a->done, 1);
    return NULL;
}

TEST(test_idle_reserve_never_blocks_the_writer)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(open_idle_asleep(&c, &s, &dir));
    ASSERT(atomic_load(&s->idle_wake) < (int64_t)5 << 20); /* 6 MiB pass it */
    struct put_args a = {s, 0};
    pthread_t t;
    pthread_mutex_lock(&s->warm_lock);
    ASSERT_OK(pthread_create(&t, NULL, put_6m, &a));
    for (int i = 0; i < 500 && !atomic_load(&a.done); i++)
        usleep(10000);
    int done = atomic_load(&a.done);
    pthread_mutex_unlock(&s->warm_lock);
    pthread_join(t, NULL);
    ASSERT(done);
    tu_close(s, dir);
}

/* Descriptors open on the store's commitlog files. */
static int clog_fds(const char *dir)
{
    char prefix[600], link[1024], path[64];
    snprintf(prefix, sizeof(prefix), "%s/commitlog/", dir);
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len > 0 && (link[len] = '\0', strncmp(link, prefix, strlen(prefix)) == 0))
            n++;
    }
    return n;
}

/* Asleep, the idle thread holds no descriptor of its own: it kept the last file it read open
 * until it next read, and a writer busy from then on kept it asleep while that file aged, so
 * that retention deleting the file freed no space. */
TEST(test_idle_reserve_sleeps_with_no_file_open)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(open_idle_asleep(&c, &s, &dir));
    ASSERT(atomic_load(&s->idle_warmed) > (int64_t)4 << 20); /* it did read */
    int n = clog_fds(dir);
    for (int i = 0; i < 100 && n > 1; i++) { /* the close follows the wake offset's store */
        usleep(10000);
        n = clog_fds(dir);
    }
    ASSERT_EQ(n, 1); /* the file's own */
    tu_close(s, dir);
}

TEST_MAIN(test_roll_takes_the_file_made_ahead, test_spare_left_by_a_crash,
          test_queue_files_made_ahead, test_index_file_made_ahead,
          test_idle_reserve_never_blocks_the_writer, test_idle_reserve_sleeps_with_no_file_open)
