/* test_store_recovery.c — the store's crash and failure behaviour: a SYNC_FLUSH writer killed
 * mid-stream (every acknowledged message present exactly once), the commitlog's last record
 * torn or corrupted at every byte, re-dispatch after lost consume queues, retention (incl.
 * borrowed slices outliving deleted files), the I/O shim failing the Nth call, and SYNC_FLUSH's
 * deferred writes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/mq_err.h"
#include "common/mq_util.h"
#include "tests/unit/mq_test.h"
#include "tests/unit/store_test_util.h"

/* Reads the whole queue; counts each body's sequence number (bodies are "seq:%d"). */
static int read_all(struct store *s, const char *topic, int qid, unsigned char *seen, int nseen,
                    int64_t *count)
{
    int64_t off = store_min_offset(s, topic, strlen(topic), qid);
    *count = 0;
    for (;;) {
        struct store_get_result *g;
        if (store_get_messages(s, topic, strlen(topic), qid, off, 64, 1 << 30, NULL, 0, &g))
            return -1;
        if (g->status != STORE_FOUND) {
            store_release(s, g);
            return 0;
        }
        for (size_t i = 0; i < g->count; i++) {
            struct mq_msg d;
            if (mq_msg_decode(g->msgs[i].data, g->msgs[i].len, 0, MQ_MSG_CHECK_CRC, &d) <= 0) {
                store_release(s, g);
                return -2;
            }
            int seq = atoi((const char *)d.body + 4);
            if (seq >= 0 && seq < nseen && seen[seq] < 255)
                seen[seq]++;
            (*count)++;
        }
        off = g->next_offset;
        store_release(s, g);
    }
}

static void child_writer(const char *dir, int fd, int round)
{
    struct store_config c;
    struct store *s;
    tu_config(&c, dir, 16 * 1024);
    tu_sync_flush(&c);
    if (store_open(&c, NULL, NULL, &s))
        _exit(2);
    char body[64];
    for (int seq = 0;; seq++) {
        int n = snprintf(body, sizeof(body), "seq:%d", round * 10000 + seq);
        struct mq_msg m = tu_msg("Crash", seq % 2, body, (uint32_t)n, NULL);
        struct store_put_result r;
        int64_t end;
        if (store_put_batch(s, &m, 1, &r, &end) != 1 || store_wait_flushed(s, end))
            _exit(3);
        if (write(fd, &seq, sizeof(seq)) != sizeof(seq))
            _exit(4);
    }
}

TEST(test_crash_sigkill_sync_flush)
{
    char *dir = tu_tmpdir();
    int acks[3];
    for (int round = 0; round < 3; round++) {
        int p[2];
        ASSERT_OK(pipe(p));
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child_writer(dir, p[1], round);
        }
        close(p[1]);
        int acked = -1, seq, target = 150 + 100 * round;
        while (acked < target && read(p[0], &seq, sizeof(seq)) == sizeof(seq))
            acked = seq;
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        while (read(p[0], &seq, sizeof(seq)) == sizeof(seq))
            acked = seq;
        close(p[0]);
        ASSERT_GE(acked, target);
        acks[round] = acked;

        struct store_config c;
        struct store *s;
        tu_config(&c, dir, 16 * 1024);
        ASSERT_OK(store_open(&c, NULL, NULL, &s));
        static unsigned char seen[30000];
        memset(seen, 0, sizeof(seen));
        int64_t n0, n1;
        ASSERT_OK(read_all(s, "Crash", 0, seen, 30000, &n0));
        ASSERT_OK(read_all(s, "Crash", 1, seen, 30000, &n1));
        /* every acknowledged message of every round so far, exactly once */
        for (int rr = 0; rr <= round; rr++)
            for (int i = 0; i <= acks[rr]; i++)
                ASSERT_EQ(seen[rr * 10000 + i], 1);
        for (int i = 0; i < 30000; i++)
            ASSERT_LE(seen[i], 1);
        store_close(s);
    }
    tu_rmrf(dir);
}

static int copy_tree(const char *from, const char *to)
{
    char cmd[2000];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    return system(cmd);
}

/* Cuts or corrupts the last record at each byte; reopening serves exactly the prefix. */
TEST(test_torn_tail_every_byte)
{
    char *dir = tu_tmpdir(), work[400], clog[700];
    snprintf(work, sizeof(work), "%s/work", dir);
    char golden[400];
    snprintf(golden, sizeof(golden), "%s/golden", dir);
    struct store_config c;
    struct store *s;
    tu_config(&c, golden, 8192);
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    struct store_put_result r;
    char body[64];
    int64_t blen = 0;
    for (int i = 0; i < 5; i++) {
        int n = snprintf(body, sizeof(body), "seq:%d-padding-padding", i);
        blen = n;
        struct mq_msg m = tu_msg("Torn", 0, body, (uint32_t)n, "KEYS\x01k\x02");
        ASSERT_OK(store_put(s, &m, &r));
    }
    store_close(s);
    int64_t last = r.phys_offset, len = r.wrote_bytes;
    snprintf(clog, sizeof(clog), "%s/commitlog/%020d", work, 0);
    for (int64_t k = last; k <= last + len; k++) {
        for (int mode = 0; mode < 2; mode++) { /* 0: truncated file, 1: byte flipped */
            /* flips only where FORMATS.md 1.1 has a check: TOTALSIZE, MAGIC, BODYCRC, BODYLENGTH,
             * body, TOPICLENGTH, PROPERTIESLENGTH (the rest is not covered, as in RocketMQ) */
            int64_t rel = k - last, tlen_at = 88 + blen, plen_at = tlen_at + 1 + 4;
            int checked =
                rel < 12 || (rel >= 84 && rel <= tlen_at) || rel == plen_at || rel == plen_at + 1;
            if (mode == 1 && (k == last + len || !checked))
                continue;
            ASSERT_OK(copy_tree(golden, work));
            int fd = open(clog, O_RDWR);
            ASSERT(fd >= 0);
            if (mode == 0) {
                ASSERT_OK(ftruncate(fd, k));
            } else {
                unsigned char b;
                ASSERT_EQ(pread(fd, &b, 1, k), 1);
                b ^= 0x5a;
                ASSERT_EQ(pwrite(fd, &b, 1, k), 1);
            }
            close(fd);
            if (k & 1) { /* every other case as a crash */
                char ab[700];
                snprintf(ab, sizeof(ab), "%s/abort", work);
                close(open(ab, O_CREAT | O_WRONLY, 0644));
            }
            tu_config(&c, work, 8192);
            ASSERT_OK(store_open(&c, NULL, NULL, &s));
            int64_t want = (mode == 0 && k == last + len) ? 5 : 4;
            if (store_max_offset(s, "Torn", 4, 0) != want)
                fprintf(stderr, "  at byte %lld of the last record, %s\n", (long long)(k - last),
                        mode ? "flipped" : "truncated");
            ASSERT_EQ(store_max_offset(s, "Torn", 4, 0), want);
            ASSERT_EQ(store_clog_max_offset(s), want == 5 ? last + len : last);
            unsigned char seen[8] = {0};
            int64_t count;
            ASSERT_OK(read_all(s, "Torn", 0, seen, 8, &count));
            ASSERT_EQ(count, want);
            int64_t phys[8]; /* index entries of the cut record are gone too */
            ASSERT_EQ(store_query_by_key(s, "Torn", 4, "k", 1, 0, INT64_MAX, phys, 8), want);
            /* the store goes on from the intact prefix */
            struct mq_msg m = tu_msg("Torn", 0, "seq:9", 5, NULL);
            ASSERT_OK(store_put(s, &m, &r));
            ASSERT_EQ(r.queue_offset, want);
            ASSERT_EQ(r.phys_offset, want == 5 ? last + len : last);
            ASSERT_OK(store_dispatch_wait(s));
            store_close(s);
            if (k % 8)
                continue;
            /* and survives another restart with exactly that content */
            ASSERT_OK(store_open(&c, NULL, NULL, &s));
            ASSERT_EQ(store_max_offset(s, "Torn", 4, 0), want + 1);
            store_close(s);
        }
    }
    tu_rmrf(dir);
}

/* Lost consume queues are rebuilt by dispatching the commitlog again. */
TEST(test_redispatch_after_restart)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    struct store_put_result r;
    for (int i = 0; i < 300; i++) {
        struct mq_msg m = tu_msg("Re", i % 3, "payload", 7, NULL);
        ASSERT_OK(store_put(s, &m, &r));
    }
    store_close(s);
    char sub[700];
    snprintf(sub, sizeof(sub), "rm -rf '%s/consumequeue' '%s/renderindex'", dir, dir);
    ASSERT_OK(system(sub));
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    for (int q = 0; q < 3; q++)
        ASSERT_EQ(store_max_offset(s, "Re", 2, q), 100);
    struct mq_msg m = tu_msg("Re", 1, "payload", 7, NULL);
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 100);
    int64_t base, size;
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_OK(store_rendered_size(s, "Re", 2, 1, &base, &size));
    ASSERT_EQ(size, 101 * 8);
    tu_close(s, dir);
}

static int count_files(const char *dir)
{
    char cmd[700];
    /* a commitlog file made ahead (<base>.next) is not one of the store's files yet */
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -cv '[.]next$'", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static void files_of_10(struct store_config *c)
{
    c->mapped_file_size_consume_queue = 20 * 10;
    c->max_index_num = 10;
}

TEST(test_retention)
{
    struct store_config c;
    struct store *s;
    char *dir, sub[700];
    ASSERT_OK(tu_open(4096, files_of_10, &c, &s, &dir));
    struct store_put_result r;
    char body[200], props[64];
    memset(body, 'r', sizeof(body));
    for (int i = 0; i < 100; i++) {
        snprintf(props, sizeof(props), "KEYS\x01key%d\x02", i);
        struct mq_msg m = tu_msg("Ret", 0, body, sizeof(body), props);
        ASSERT_OK(store_put(s, &m, &r));
    }
    ASSERT_OK(store_dispatch_wait(s));
    snprintf(sub, sizeof(sub), "%s/commitlog", dir);
    int files = count_files(sub);
    ASSERT_GE(files, 6);
    struct store_get_result *held;
    ASSERT_OK(store_get_messages(s, "Ret", 3, 0, 0, 4, 1 << 30, NULL, 0, &held));
    ASSERT_EQ(held->count, 4);
    ASSERT_EQ(store_clean_now(s, 0), 0); /* nothing older than 72 h */
    int deleted = store_clean_now(s, 1);
    ASSERT_EQ(deleted, files - 1 > 10 ? 10 : files - 1);
    /* the held slices are still readable */
    struct mq_msg d;
    ASSERT(mq_msg_decode(held->msgs[3].data, held->msgs[3].len, 0, MQ_MSG_CHECK_CRC, &d) > 0);
    ASSERT_EQ(d.queue_offset, 3);
    store_release(s, held);
    int64_t min = store_min_offset(s, "Ret", 3, 0);
    ASSERT_GT(min, 0);
    ASSERT_EQ(store_max_offset(s, "Ret", 3, 0), 100);
    struct store_get_result *g;
    ASSERT_OK(store_get_messages(s, "Ret", 3, 0, 0, 4, 1 << 30, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_OFFSET_TOO_SMALL);
    ASSERT_EQ(g->next_offset, min);
    store_release(s, g);
    ASSERT_OK(store_get_messages(s, "Ret", 3, 0, min, 4, 1 << 30, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_FOUND);
    ASSERT_GE(g->msgs[0].phys_offset, store_clog_min_offset(s));
    store_release(s, g);
    int64_t base, size, qo, within, fo;
    ASSERT_OK(store_rendered_size(s, "Ret", 3, 0, &base, &size));
    ASSERT_EQ(base, min * 201);
    ASSERT_EQ(size, 100 * 201);
    ASSERT_EQ(store_render_find(s, "Ret", 3, 0, base - 1, &qo, &within), MQ_EOFFSET_MOVED);
    ASSERT_OK(store_render_find(s, "Ret", 3, 0, base, &qo, &within));
    ASSERT_EQ(qo, min);
    ASSERT_EQ(store_render_offset(s, "Ret", 3, 0, min - 1, &fo), MQ_EOFFSET_MOVED);
    snprintf(sub, sizeof(sub), "%s/consumequeue/Ret/0", dir);
    ASSERT_LE(count_files(sub), (100 - min) / 10 + 2);
    snprintf(sub, sizeof(sub), "%s/index", dir);
    ASSERT_LE(count_files(sub), (100 - min) / 10 + 2);
    int64_t phys[4];
    ASSERT_EQ(store_query_by_key(s, "Ret", 3, "key99", 5, 0, INT64_MAX, phys, 4), 1);
    store_close(s);
    /* the same after a restart */
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(store_min_offset(s, "Ret", 3, 0), min);
    ASSERT_OK(store_rendered_size(s, "Ret", 3, 0, &base, &size));
    ASSERT_EQ(base, min * 201);
    tu_close(s, dir);
}

static void no_reserved_time(struct store_config *c)
{
    c->file_reserved_time = 0;
    /* no pass of the store's own at deleteWhen's hour (04 by default): it would take files
     * before this test's passes, which count what they delete */
    c->delete_when[0] = '\0';
}

/* fileReservedTime: files older than it go without forcing; the newest file always stays. */
TEST(test_retention_by_age)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(4096, no_reserved_time, &c, &s, &dir));
    struct store_put_result r;
    char body[1000];
    memset(body, 'a', sizeof(body));
    for (int i = 0; i < 45; i++) { /* 3 per file: 15 files */
        struct mq_msg m = tu_msg("Age", 0, body, sizeof(body), NULL);
        ASSERT_OK(store_put(s, &m, &r));
    }
    ASSERT_OK(store_dispatch_wait(s));
    usleep(20000);
    int deleted = store_clean_now(s, 0);
    ASSERT_EQ(deleted, 10); /* at most 10 per pass */
    ASSERT_EQ(store_clean_now(s, 0), 4);
    ASSERT_EQ(store_clean_now(s, 0), 0);
    ASSERT_EQ(store_clog_min_offset(s), (store_clog_max_offset(s) - 1) / 4096 * 4096);
    ASSERT_EQ(store_max_offset(s, "Age", 3, 0), 45);
    ASSERT_OK(store_put(s, &(struct mq_msg){0}, &r) == -EINVAL ? 0 : -1);
    struct mq_msg m = tu_msg("Age", 0, body, sizeof(body), NULL);
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 45);
    tu_close(s, dir);
}

static atomic_int fake_pct;

static int fake_statvfs(const char *path, struct statvfs *out)
{
    (void)path;
    memset(out, 0, sizeof(*out));
    out->f_blocks = 1000;
    out->f_bfree = (fsblkcnt_t)(1000 - 10 * atomic_load(&fake_pct));
    return 0;
}

static void clean_every_10ms(struct store_config *c)
{
    c->clean_resource_interval = 10;
}

/* Disk usage: past 90 % writes are refused with -ENOSPC, past 85 % files go regardless of age. */
TEST(test_disk_full)
{
    struct store_config c;
    struct store *s;
    char *dir;
    atomic_store(&fake_pct, 50);
    int (*real_statvfs)(const char *, struct statvfs *) = store_io.statvfs;
    store_io.statvfs = fake_statvfs;
    ASSERT_OK(tu_open(4096, clean_every_10ms, &c, &s, &dir));
    struct store_put_result r;
    char body[1000];
    memset(body, 'd', sizeof(body));
    struct mq_msg m = tu_msg("Full", 0, body, sizeof(body), NULL);
    for (int i = 0; i < 12; i++)
        ASSERT_OK(store_put(s, &m, &r));
    ASSERT_OK(store_dispatch_wait(s));
    atomic_store(&fake_pct, 95);
    int rc = 0;
    for (int i = 0; i < 500 && rc == 0; i++) {
        usleep(2000);
        rc = store_put(s, &m, &r);
    }
    ASSERT_EQ(rc, -ENOSPC);
    struct store_stats st;
    store_get_stats(s, &st);
    ASSERT_EQ(st.disk_full, 1);
    ASSERT_EQ(st.disk_used_pct, 95);
    for (int i = 0; i < 500 && store_clog_min_offset(s) == 0; i++)
        usleep(2000); /* forced cleaning (files are younger than fileReservedTime) */
    ASSERT_GT(store_clog_min_offset(s), 0);
    atomic_store(&fake_pct, 50);
    for (int i = 0; i < 500 && rc != 0; i++) {
        usleep(2000);
        rc = store_put(s, &m, &r);
    }
    ASSERT_OK(rc);
    store_close(s);
    store_io.statvfs = real_statvfs;
    tu_rmrf(dir);
}

static void roll_in_place(struct store_config *c)
{
    c->roll_in_place = 1; /* the faults are armed for the roll's own file creation */
}

/* A failed roll (disk full) is not visible; the next append works once the fault clears. */
TEST(test_io_fault_roll)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(4096, roll_in_place, &c, &s, &dir));
    char body[500];
    memset(body, 'f', sizeof(body));
    struct store_put_result r;
    struct mq_msg m = tu_msg("Fault", 0, body, sizeof(body), NULL);
    ASSERT_OK(store_put(s, &m, &r)); /* queue files exist before faults are armed */
    ASSERT_OK(store_dispatch_wait(s));
    int ok = 1;
    for (int i = 0; i < 30; i++) {
        int64_t before = store_clog_max_offset(s);
        int needs_roll = before % 4096 + 592 + 8 > 4096 || before == 0;
        if (needs_roll) {
            store_io_fault(i % 2 ? STORE_IO_FTRUNCATE : STORE_IO_MMAP, 1, ENOSPC, 0);
            ASSERT_EQ(store_put(s, &m, &r), -ENOSPC);
            ASSERT_EQ(store_clog_max_offset(s), before);
            store_io_fault_clear();
        }
        ASSERT_OK(store_put(s, &m, &r));
        ASSERT_EQ(r.queue_offset, ok);
        ok++;
    }
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "Fault", 5, 0), ok);
    store_close(s);
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(store_max_offset(s, "Fault", 5, 0), ok);
    tu_close(s, dir);
}

static void no_checkpoints(struct store_config *c)
{
    c->flush_interval_consume_queue = 60000; /* no checkpoint writes racing the armed fault */
}

/* The Nth commitlog write failing (EIO, ENOSPC): the batch is not visible and its queue
 * offsets are reused; the store goes on. */
TEST(test_io_fault_nth_write)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(8192, no_checkpoints, &c, &s, &dir));
    struct mq_msg msgs[40];
    struct store_put_result res[40];
    char bodies[40][200]; /* 40 records span a file roll: up to three writes per batch */
    int64_t stored = 0;
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 40; i++) {
            memset(bodies[i], '.', sizeof(bodies[i]));
            snprintf(bodies[i], 16, "seq:%d", (int)stored + i);
            msgs[i] = tu_msg("W", i % 2, bodies[i], sizeof(bodies[i]), NULL);
        }
        int64_t before = store_clog_max_offset(s);
        long calls = store_io_calls(STORE_IO_PWRITE);
        store_io_fault(STORE_IO_PWRITE, 1 + round % 3, round % 2 ? EIO : ENOSPC, 0);
        int rc = store_put_batch(s, msgs, 40, res, NULL);
        store_io_fault_clear();
        if (store_io_calls(STORE_IO_PWRITE) - calls < 1 + round % 3) {
            ASSERT_EQ(rc, 40); /* fewer writes than the armed one */
            stored += 40;
            continue;
        }
        ASSERT(rc < 40);
        int got = rc < 0 ? 0 : rc;
        for (int i = got; i < 40; i++)
            ASSERT_LT(res[i].status, 0);
        ASSERT_EQ(res[got].status, round % 2 ? -EIO : -ENOSPC);
        if (got == 0)
            ASSERT_EQ(store_clog_max_offset(s), before);
        /* resend what failed */
        ASSERT_EQ(store_put_batch(s, msgs + got, (size_t)(40 - got), res + got, NULL), 40 - got);
        stored += 40;
    }
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "W", 1, 0) + store_max_offset(s, "W", 1, 1), stored);
    static unsigned char seen[1000];
    int64_t n0, n1;
    store_close(s);
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    memset(seen, 0, sizeof(seen));
    ASSERT_OK(read_all(s, "W", 0, seen, 1000, &n0));
    ASSERT_OK(read_all(s, "W", 1, seen, 1000, &n1));
    ASSERT_EQ(n0 + n1, stored);
    for (int i = 0; i < stored; i++)
        ASSERT_EQ(seen[i], 1);
    tu_close(s, dir);
}

static void on_flushed(void *arg, int64_t offset, int status)
{
    (void)offset;
    atomic_store((atomic_int *)arg, status);
}

/* msync failing: the waiter hears -EIO, later flushes succeed. */
TEST(test_io_fault_flush)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, tu_sync_flush, &c, &s, &dir));
    struct mq_msg m = tu_msg("Fl", 0, "x", 1, NULL);
    struct store_put_result r;
    int64_t end;
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    ASSERT_OK(store_wait_flushed(s, end));
    store_io_fault(STORE_IO_MSYNC, 1, EIO, 1);
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    ASSERT_EQ(store_wait_flushed(s, end), -EIO);
    atomic_int status = 1; /* the callback form hears the error too */
    ASSERT_EQ(store_when_flushed(s, end, on_flushed, &status), 0);
    for (int i = 0; i < 1000 && atomic_load(&status) == 1; i++)
        usleep(1000);
    ASSERT_EQ(atomic_load(&status), -EIO);
    store_io_fault_clear();
    /* a flush that started before the clear may still report -EIO once */
    int rc = -EIO;
    for (int i = 0; i < 3 && rc == -EIO; i++)
        rc = store_wait_flushed(s, end);
    ASSERT_OK(rc);
    tu_close(s, dir);
}

static void sync_no_checkpoints(struct store_config *c)
{
    tu_sync_flush(c);
    no_checkpoints(c);
}

/* SYNC_FLUSH: a put leaves its record staged for the group commit's one write. Nobody waiting,
 * it still becomes visible; when the group's write fails the waiter hears the error and the
 * record stays staged, written by the next group in order with its queue offset. */
TEST(test_sync_deferred_write)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, sync_no_checkpoints, &c, &s, &dir));
    const char *bodies[] = {"a", "b", "c"};
    struct mq_msg m = tu_msg("Df", 0, bodies[0], 1, NULL);
    struct store_put_result r;
    int64_t end;
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    for (int i = 0; i < 2000 && store_max_offset(s, "Df", 2, 0) < 1; i++)
        usleep(1000);
    ASSERT_EQ(store_max_offset(s, "Df", 2, 0), 1);

    store_io_fault(STORE_IO_PWRITE, 1, EIO, 1);
    m = tu_msg("Df", 0, bodies[1], 1, NULL);
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    ASSERT_EQ(r.queue_offset, 1);
    ASSERT_EQ(store_wait_flushed(s, end), -EIO);
    ASSERT_EQ(store_max_offset(s, "Df", 2, 0), 1); /* not written, not visible */
    store_io_fault_clear();

    m = tu_msg("Df", 0, bodies[2], 1, NULL);
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    ASSERT_EQ(r.queue_offset, 2);
    /* an attempt that started before the clear may still report -EIO once */
    int rc = -EIO;
    for (int i = 0; i < 3 && rc == -EIO; i++)
        rc = store_wait_flushed(s, end);
    ASSERT_OK(rc);
    ASSERT_OK(store_dispatch_wait(s));
    struct store_get_result *g;
    ASSERT_OK(store_get_messages(s, "Df", 2, 0, 0, 32, 1 << 20, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_FOUND);
    ASSERT_EQ(g->count, 3);
    for (size_t i = 0; i < 3; i++) {
        struct mq_msg d;
        ASSERT(mq_msg_decode(g->msgs[i].data, g->msgs[i].len, 0, MQ_MSG_CHECK_CRC, &d) > 0);
        ASSERT_EQ(d.queue_offset, (int64_t)i);
        ASSERT_EQ(d.body_len, 1);
        ASSERT_EQ(d.body[0], bodies[i][0]);
    }
    store_release(s, g);
    tu_close(s, dir);
}

/* A sync that outlasts syncFlushTimeout: the waiter leaves on time with -ETIMEDOUT (taking
 * itself off the waiters' list while the committer is still in msync), the store carries on,
 * and a waiter still blocked when the store closes is answered by the final flush. */
static int (*real_msync)(void *addr, size_t len, int flags);
static atomic_int msync_delay_ms;

static int slow_msync(void *addr, size_t len, int flags)
{
    usleep((useconds_t)atomic_load(&msync_delay_ms) * 1000);
    return real_msync(addr, len, flags);
}

static void sync_flush_timeout_50ms(struct store_config *c)
{
    tu_sync_flush(c);
    c->sync_flush_timeout = 50;
}

struct blocked_wait {
    struct store *s;
    int64_t end;
    int rc;
};

static void *wait_thread(void *arg)
{
    struct blocked_wait *b = arg;
    b->rc = store_wait_flushed(b->s, b->end);
    return NULL;
}

TEST(test_sync_wait_timeout_and_close)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, sync_flush_timeout_50ms, &c, &s, &dir));
    struct mq_msg m = tu_msg("To", 0, "x", 1, NULL);
    struct store_put_result r;
    int64_t end;
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    ASSERT_OK(store_wait_flushed(s, end));
    real_msync = store_io.msync;
    atomic_store(&msync_delay_ms, 400);
    store_io.msync = slow_msync;
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    int64_t t0 = mq_mono_us();
    ASSERT_EQ(store_wait_flushed(s, end), -ETIMEDOUT);
    ASSERT(mq_mono_us() - t0 < 300 * 1000); /* left at its deadline, not after the sync */
    atomic_store(&msync_delay_ms, 0);
    tu_close(s, dir);
    /* blocked in a sync when the store closes: answered, durable, nothing left hanging */
    ASSERT_OK(tu_open(64 * 1024, tu_sync_flush, &c, &s, &dir));
    struct blocked_wait b = {s, 0, 1};
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &b.end), 1);
    atomic_store(&msync_delay_ms, 150);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, wait_thread, &b), 0);
    usleep(20 * 1000);
    store_close(s);
    pthread_join(t, NULL);
    store_io.msync = real_msync;
    ASSERT_EQ(b.rc, 0);
    tu_rmrf(dir);
}

/* Failing the Nth open/ftruncate/mmap/fsync during open fails cleanly (ASan: no leaks). */
TEST(test_io_fault_nth_open)
{
    enum store_io_op ops[] = {STORE_IO_OPEN, STORE_IO_FTRUNCATE, STORE_IO_MMAP, STORE_IO_FSYNC};
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (int nth = 1; nth <= 6; nth++) {
            struct store_config c;
            struct store *s = NULL;
            char *dir;
            store_io_fault(ops[o], nth, EIO, 0); /* the temp directory is made without the shim */
            int rc = tu_open(4096, NULL, &c, &s, &dir);
            if (rc == 0) {
                struct mq_msg m = tu_msg("N", 0, "x", 1, NULL);
                struct store_put_result r;
                (void)store_put(s, &m, &r);
                store_close(s);
            } else {
                ASSERT_EQ(rc, -EIO);
            }
            store_io_fault_clear();
            ASSERT_OK(store_open(&c, NULL, NULL, &s));
            tu_close(s, dir);
        }
}

/* Dispatch finding no space for a new consume-queue file's blocks (ENOSPC from fallocate, where
 * a store through the mapping into a hole would have raised SIGBUS): the acknowledged record
 * stays in the commitlog, puts are refused with -ENOSPC, and once space is back dispatch
 * resumes, the record becomes visible and puts are accepted again. */
TEST(test_io_fault_dispatch_nospace)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    struct store_put_result r;
    struct mq_msg m0 = tu_msg("Nospc", 0, "zero", 4, "KEYS\001k0\002");
    struct mq_msg m1 = tu_msg("Nospc", 1, "one", 3, "KEYS\001k1\002");
    ASSERT_OK(store_put(s, &m0, &r));
    ASSERT_OK(store_dispatch_wait(s));
    store_io_fault(STORE_IO_FALLOCATE, 1, ENOSPC, 1);
    ASSERT_OK(store_put(s, &m1, &r)); /* the commitlog has room: acknowledged */
    int refused = 0;
    for (int i = 0; i < 200 && !refused; i++) {
        usleep(10000);
        refused = store_put(s, &m0, &r) == -ENOSPC;
        if (!refused)
            ASSERT_OK(r.status);
    }
    ASSERT(refused);
    ASSERT_EQ(store_max_offset(s, "Nospc", 5, 1), 0);
    store_io_fault_clear();
    for (int i = 0; i < 300 && store_max_offset(s, "Nospc", 5, 1) == 0; i++)
        usleep(10000);
    ASSERT_EQ(store_max_offset(s, "Nospc", 5, 1), 1);
    struct store_get_result *g;
    ASSERT_OK(store_get_messages(s, "Nospc", 5, 1, 0, 8, 1 << 20, NULL, 0, &g));
    ASSERT_EQ(g->count, 1);
    struct mq_msg d;
    ASSERT_GT(mq_msg_decode(g->msgs[0].data, g->msgs[0].len, 0, MQ_MSG_CHECK_CRC, &d), 0);
    ASSERT_EQ(d.body_len, 3);
    ASSERT(memcmp(d.body, "one", 3) == 0);
    store_release(s, g);
    ASSERT_OK(store_put(s, &m1, &r));
    int64_t phys[4];
    ASSERT_GE(store_query_by_key(s, "Nospc", 5, "k1", 2, 0, INT64_MAX, phys, 4), 1);
    tu_close(s, dir);
}

/* A restart with no space (every fallocate fails with ENOSPC): the store still opens, as
 * RocketMQ's does. Recovery could neither reserve the rest of the current commitlog file nor
 * create queue 1's consume-queue file (deleted here: the state a crash before its first dispatch
 * leaves); puts are refused with -ENOSPC, queue 0 reads as before, and once space is back queue
 * 1 appears and its next put continues its offsets. */
TEST(test_io_fault_restart_nospace)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    struct store_put_result r;
    struct mq_msg m0 = tu_msg("Full", 0, "zero", 4, NULL);
    struct mq_msg m1 = tu_msg("Full", 1, "one", 3, NULL);
    ASSERT_OK(store_put(s, &m0, &r));
    ASSERT_OK(store_put(s, &m0, &r));
    ASSERT_OK(store_put(s, &m1, &r)); /* queue 1's records last: normal recovery redoes them */
    ASSERT_OK(store_put(s, &m1, &r));
    ASSERT_OK(store_dispatch_wait(s));
    store_close(s);
    char cq[512];
    snprintf(cq, sizeof(cq), "%s/consumequeue/Full/1", dir);
    tu_rmrf(strdup(cq));
    store_io_fault(STORE_IO_FALLOCATE, 1, ENOSPC, 1);
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(store_put(s, &m0, &r), -ENOSPC);
    ASSERT_EQ(store_max_offset(s, "Full", 4, 0), 2);
    ASSERT_EQ(store_max_offset(s, "Full", 4, 1), 0);
    store_io_fault_clear();
    for (int i = 0; i < 300 && store_max_offset(s, "Full", 4, 1) == 0; i++)
        usleep(10000);
    ASSERT_EQ(store_max_offset(s, "Full", 4, 1), 2);
    ASSERT_OK(store_put(s, &m1, &r));
    ASSERT_EQ(r.queue_offset, 2);
    ASSERT_OK(store_put(s, &m0, &r));
    ASSERT_EQ(r.queue_offset, 2);
    tu_close(s, dir);
}

TEST_MAIN(test_crash_sigkill_sync_flush, test_torn_tail_every_byte, test_redispatch_after_restart,
          test_retention, test_retention_by_age, test_disk_full, test_io_fault_roll,
          test_io_fault_nth_write, test_io_fault_flush, test_io_fault_nth_open,
          test_io_fault_dispatch_nospace, test_io_fault_restart_nospace,
          test_sync_wait_timeout_and_close, test_sync_deferred_write)
