/* mqbench_store.c — mqbench-store: the store's append throughput, in process: 100-byte and
 * 1 KiB bodies, one message per call and batched, ASYNC_FLUSH, then SYNC_FLUSH with 64
 * concurrent single-message appenders (group commit); the same bytes written with plain write()
 * in the same run as the raw limit; and the process's anonymous memory after storing many
 * messages across 100 queues (consume queues and indexes are file-backed, so it must stay
 * flat). Prints figures and a final `RESULT key=value ...` line.
 *
 * Usage: mqbench-store [-d DIR] [-n MESSAGES] [-q] [-p PHASES]
 *   -q  a tenth of the messages
 *   -p  comma-separated subset of raw,single100,batch100,single1k,batch1k,sync,rss,disk
 * The disk phase (only when named) times one 4 KiB append-like write made durable, on a
 * fallocated (unwritten extents) and on a zero-filled file, with fdatasync and with msync.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/mq_log.h"
#include "common/mq_util.h"
#include "store/store.h"
#include "tools/bench/bench_util.h"

static char root[400];
static int run_no;

static void rmrf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static struct store *open_store(const char *flush, char *dir, size_t dlen)
{
    struct store_config c;
    struct store *s;
    store_config_defaults(&c);
    snprintf(dir, dlen, "%s/run%d", root, run_no++);
    snprintf(c.store_path_root_dir, sizeof(c.store_path_root_dir), "%s", dir);
    snprintf(c.flush_disk_type, sizeof(c.flush_disk_type), "%s", flush);
    c.mapped_file_size_commit_log = 256 << 20;
    int rc = store_open(&c, NULL, NULL, &s);
    if (rc) {
        fprintf(stderr, "store_open %s: %d\n", dir, rc);
        exit(1);
    }
    return s;
}

static long rss_anon_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "RssAnon: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* Appends n messages of body bytes, batch per call, over nq queues; returns msgs/s. */
static double run_put(const char *flush, size_t body, long n, int batch, int nq, long *rss_delta)
{
    char dir[512];
    struct store *s = open_store(flush, dir, sizeof(dir));
    uint8_t *b = calloc(1, body);
    struct mq_msg *msgs = calloc((size_t)batch, sizeof(*msgs));
    struct store_put_result *res = calloc((size_t)batch, sizeof(*res));
    memset(b, 'm', body);
    for (int i = 0; i < batch; i++) {
        msgs[i].topic = "BenchTopic";
        msgs[i].topic_len = 10;
        msgs[i].body = b;
        msgs[i].body_len = (uint32_t)body;
        msgs[i].born_ts = mq_now_ms();
        msgs[i].born_host = (struct mq_host){0, {127, 0, 0, 1}, 40000};
    }
    long rss0 = rss_anon_kb();
    int64_t t0 = mq_mono_us();
    for (long done = 0; done < n;) {
        int k = (int)(n - done < batch ? n - done : batch);
        for (int i = 0; i < k; i++)
            msgs[i].queue_id = (int)((done + i) % nq);
        int rc = store_put_batch(s, msgs, (size_t)k, res, NULL);
        if (rc != k) {
            fprintf(stderr, "put: %d\n", rc);
            exit(1);
        }
        done += k;
    }
    int64_t t1 = mq_mono_us();
    store_dispatch_wait(s);
    if (rss_delta)
        *rss_delta = rss_anon_kb() - rss0;
    store_close(s);
    rmrf(dir);
    free(b);
    free(msgs);
    free(res);
    return (double)n * 1e6 / (double)(t1 - t0);
}

/* The raw limit: the same number of bytes with write() in 1 MiB chunks (page cache). */
static double raw_write_mbps(int64_t bytes)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/raw", root);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    static uint8_t buf[1 << 20];
    memset(buf, 'r', sizeof(buf));
    int64_t t0 = mq_mono_us();
    for (int64_t done = 0; done < bytes; done += sizeof(buf))
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
            perror("write");
            exit(1);
        }
    int64_t t1 = mq_mono_us();
    close(fd);
    unlink(path);
    return (double)bytes / (double)(t1 - t0);
}

/* Average latency of one small write + msync(MS_SYNC) on a mapped file: the disk's durable
 * write latency, which bounds group commit at (appenders / latency). */
static double msync_latency_us(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/lat", root);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    size_t len = 4 << 20;
    if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
        perror("lat");
        exit(1);
    }
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int n = 200;
    int64_t t0 = mq_mono_us();
    for (int i = 0; i < n; i++) {
        size_t off = (size_t)i * 6400;
        m[off] = 1;
        msync(m + off / 4096 * 4096, 8192, MS_SYNC);
    }
    int64_t t1 = mq_mono_us();
    munmap(m, len);
    close(fd);
    unlink(path);
    return (double)(t1 - t0) / n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median µs of writing 4 KiB at successive offsets of a 64 MiB file (as appends do) and making
 * it durable: zeroed = the file was written with zeros first, else fallocated; msync through
 * a shared mapping, else fdatasync on the descriptor. */
static double disk_sync_us(int zeroed, int use_msync)
{
    char path[512];
    const size_t len = 64 << 20, chunk = 1 << 20;
    const int n = 200;
    double lat[200];
    snprintf(path, sizeof(path), "%s/disk", root);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    uint8_t *z = calloc(1, chunk), page[4096];
    memset(page, 'x', sizeof(page));
    int bad = fd < 0 || !z;
    if (!bad && zeroed)
        for (size_t off = 0; off < len && !bad; off += chunk)
            bad = pwrite(fd, z, chunk, (off_t)off) != (ssize_t)chunk;
    else if (!bad)
        bad = posix_fallocate(fd, 0, (off_t)len) != 0;
    uint8_t *m = bad ? MAP_FAILED : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bad || m == MAP_FAILED || fsync(fd) < 0) {
        perror("disk phase");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        off_t off = (off_t)i * 4096;
        int64_t t0 = mq_mono_us();
        if (pwrite(fd, page, sizeof(page), off) != (ssize_t)sizeof(page) ||
            (use_msync ? msync(m + off, sizeof(page), MS_SYNC) : fdatasync(fd)) < 0) {
            perror("disk phase");
            exit(1);
        }
        lat[i] = (double)(mq_mono_us() - t0);
    }
    munmap(m, len);
    close(fd);
    unlink(path);
    free(z);
    qsort(lat, n, sizeof(lat[0]), cmp_double);
    return lat[n / 2];
}

struct sync_arg {
    struct store *s;
    atomic_long *count;
    atomic_int *stop;
    int id;
};

static void *sync_worker(void *p)
{
    struct sync_arg *a = p;
    uint8_t body[100];
    memset(body, 's', sizeof(body));
    struct mq_msg m = {.topic = "SyncTopic",
                       .topic_len = 9,
                       .queue_id = a->id % 8,
                       .body = body,
                       .body_len = sizeof(body)};
    struct store_put_result r;
    while (!atomic_load(a->stop)) {
        int64_t end;
        if (store_put_batch(a->s, &m, 1, &r, &end) != 1 || store_wait_flushed(a->s, end))
            break;
        atomic_fetch_add(a->count, 1);
    }
    return NULL;
}

static double run_sync(int threads, int ms)
{
    char dir[512];
    struct store *s = open_store("SYNC_FLUSH", dir, sizeof(dir));
    atomic_long count = 0;
    atomic_int stop = 0;
    pthread_t th[256];
    struct sync_arg args[256];
    int64_t t0 = mq_mono_us();
    double cpu0 = bench_cpu_s();
    for (int i = 0; i < threads; i++) {
        args[i] = (struct sync_arg){s, &count, &stop, i};
        pthread_create(&th[i], NULL, sync_worker, &args[i]);
    }
    usleep((useconds_t)ms * 1000);
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    int64_t t1 = mq_mono_us();
    double cpu1 = bench_cpu_s();
    struct store_stats st;
    store_get_stats(s, &st);
    long done = atomic_load(&count);
    printf("  %ld messages in %lld flushes: %.1f per group commit, %.1f us CPU per message\n", done,
           (long long)st.flushes, (double)done / (double)(st.flushes ? st.flushes : 1),
           (cpu1 - cpu0) * 1e6 / (double)(done ? done : 1));
    store_close(s);
    rmrf(dir);
    return (double)atomic_load(&count) * 1e6 / (double)(t1 - t0);
}

/* The event-driven form: one thread appends single messages and registers a durability
 * callback for each, with up to `window` waiting (a broker serving many connections). */
static atomic_long cb_done;
static atomic_long cb_inflight;

static void on_durable(void *arg, int64_t offset, int status)
{
    (void)arg, (void)offset;
    if (status == 0)
        atomic_fetch_add(&cb_done, 1);
    atomic_fetch_sub(&cb_inflight, 1);
}

static double run_sync_callbacks(long window, int ms)
{
    char dir[512];
    struct store *s = open_store("SYNC_FLUSH", dir, sizeof(dir));
    uint8_t body[100];
    memset(body, 'c', sizeof(body));
    struct mq_msg m = {.topic = "CbTopic", .topic_len = 7, .body = body, .body_len = 100};
    struct store_put_result r;
    atomic_store(&cb_done, 0);
    atomic_store(&cb_inflight, 0);
    int64_t t0 = mq_mono_us(), stop = t0 + (int64_t)ms * 1000;
    for (long i = 0; mq_mono_us() < stop; i++) {
        while (atomic_load(&cb_inflight) >= window)
            sched_yield();
        int64_t end;
        m.queue_id = (int)(i % 8);
        if (store_put_batch(s, &m, 1, &r, &end) != 1)
            break;
        atomic_fetch_add(&cb_inflight, 1);
        int rc = store_when_flushed(s, end, on_durable, NULL);
        if (rc == 1)
            on_durable(NULL, end, 0);
        else if (rc < 0)
            break;
    }
    while (atomic_load(&cb_inflight) > 0)
        sched_yield();
    int64_t t1 = mq_mono_us();
    store_close(s);
    rmrf(dir);
    return (double)atomic_load(&cb_done) * 1e6 / (double)(t1 - t0);
}

int main(int argc, char **argv)
{
    long n = 2000000;
    const char *base = NULL, *phases = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "d:n:qp:")) != -1) {
        if (opt == 'd')
            base = optarg;
        else if (opt == 'p')
            phases = optarg;
        else if (opt == 'n')
            n = atol(optarg);
        else if (opt == 'q')
            n /= 10;
        else {
            fprintf(stderr, "usage: mqbench-store [-d DIR] [-n MESSAGES] [-q] [-p PHASES]\n");
            return 2;
        }
    }
    mq_log_set_level(MQ_LOG_WARN);
    if (!base)
        base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(root, sizeof(root), "%s/mqbench-storeXXXXXX", base);
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    long rss = 0;
    const int rec100 = 91 + 100 + 10, rec1k = 91 + 1024 + 10;
    double raw = 0, s100 = 0, b100 = 0, s1k = 0, b1k = 0, sync64 = 0, synccb = 0, lat = 0;
#define PHASE(name) (!phases || strstr(phases, name))
    if (PHASE("raw")) {
        raw = raw_write_mbps((int64_t)n * rec100);
        printf("raw write():            %8.0f MB/s\n", raw);
    }
    if (PHASE("single100")) {
        s100 = run_put("ASYNC_FLUSH", 100, n / 4, 1, 8, NULL);
        printf("100 B single, async:    %8.0f msgs/s\n", s100);
    }
    if (PHASE("batch100")) {
        b100 = run_put("ASYNC_FLUSH", 100, n, 256, 8, NULL);
        printf("100 B batch 256, async: %8.0f msgs/s  %6.0f MB/s\n", b100, b100 * rec100 / 1e6);
    }
    if (PHASE("single1k")) {
        s1k = run_put("ASYNC_FLUSH", 1024, n / 8, 1, 8, NULL);
        printf("1 KiB single, async:    %8.0f msgs/s\n", s1k);
    }
    if (PHASE("batch1k")) {
        b1k = run_put("ASYNC_FLUSH", 1024, n / 4, 64, 8, NULL);
        printf("1 KiB batch 64, async:  %8.0f msgs/s  %6.0f MB/s\n", b1k, b1k * rec1k / 1e6);
    }
    if (PHASE("sync")) {
        lat = msync_latency_us();
        printf(
            "raw msync latency:      %8.0f us  (group-commit bound, 64 appenders: %.0f msgs/s)\n",
            lat, 64 * 1e6 / lat);
        sync64 = run_sync(64, 2000);
        printf("100 B sync, 64 threads: %8.0f msgs/s\n", sync64);
        synccb = run_sync_callbacks(4096, 2000);
        printf("100 B sync, callbacks, 4096 in flight: %8.0f msgs/s\n", synccb);
    }
    if (phases && strstr(phases, "disk")) {
        const char *name[4] = {"fallocated + fdatasync", "zero-filled + fdatasync",
                               "fallocated + msync", "zero-filled + msync"};
        for (int rep = 0; rep < 3; rep++) /* interleaved: the disk's latency drifts */
            for (int v = 0; v < 4; v++)
                printf("4 KiB write made durable, %-24s median %6.0f us\n", name[v],
                       disk_sync_us(v & 1, v >> 1));
    }
    if (PHASE("rss")) {
        run_put("ASYNC_FLUSH", 100, n, 100, 100, &rss);
        printf("RssAnon growth after %ld msgs over 100 queues: %ld KiB\n", n, rss);
    }
    double ratio = raw > 0 ? b100 * rec100 / 1e6 / raw : 0;
    printf("RESULT raw_write_MBps=%.0f put100_single_mps=%.0f put100_batch_mps=%.0f "
           "put1k_single_mps=%.0f put1k_batch_mps=%.0f sync64_mps=%.0f "
           "sync_cb4096_mps=%.0f batch100_vs_raw=%.2f msync_us=%.0f sync64_vs_bound=%.2f "
           "rss_anon_growth_kb=%ld\n",
           raw, s100, b100, s1k, b1k, sync64, synccb, ratio, lat, sync64 * lat / 64e6, rss);
    rmdir(root);
    return 0;
}
