/* mapped_file.c — reference-counted memory-mapped data files and the per-directory lists of
 * them (RocketMQ's MappedFile / MappedFileQueue): files named by their 20-digit start offset
 * (FORMATS.md Part 1), created at full size and mapped whole. */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mq_log.h"
#include "store/store_io.h"

/* A file made ahead of its turn (store__mlist_spare) is named <20-digit base>.next until it is
 * put in use: never listed, and deleted by the next load if the process died holding it. */
#define SPARE_SUFFIX ".next"

/* Blocks reserved per fallocate call: one call for a whole 1 GiB commitlog file ran 0.2-0.55 s
 * and held up the filesystem's journal, and with it every other writer of the store, as long. */
#define PREALLOC_STEP ((size_t)16 << 20)

void store__mfile_ref(struct store__mfile *f)
{
    atomic_fetch_add(&f->refs, 1);
}

void store__mfile_unref(struct store__mfile *f)
{
    if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    munmap(f->map, f->size);
    if (f->head != f->map)
        munmap((void *)f->head, f->size);
    close(f->fd);
    free(f);
}

int store__mkdirs(const char *path)
{
    char buf[STORE__PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        buf[i] = c;
    }
    return 0;
}

int store__rmdirs(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    char sub[STORE__PATH_MAX];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (e->d_type == DT_DIR)
            store__rmdirs(sub);
        else
            unlink(sub);
    }
    closedir(d);
    return rmdir(path) < 0 ? -errno : 0;
}

/* dir/<20-digit base><suffix> into path[STORE__PATH_MAX]; -ENAMETOOLONG if it does not fit. */
static int file_path(char *path, const char *dir, int64_t base, const char *suffix)
{
    int n = snprintf(path, STORE__PATH_MAX, "%s/%020" PRId64 "%s", dir, base, suffix);
    return n < 0 || n >= STORE__PATH_MAX ? -ENAMETOOLONG : 0;
}

static int mfile_open(const char *dir, int64_t base, size_t size, int create, int flags,
                      struct store__mfile **out)
{
    char path[STORE__PATH_MAX];
    int rc = file_path(path, dir, base, "");
    return rc ? rc : store__mfile_open(path, base, size, create, flags, out);
}

int store__mfile_open(const char *path, int64_t base, size_t size, int create, int flags,
                      struct store__mfile **out)
{
    struct store__mfile *f = calloc(1, sizeof(*f));
    int rc;
    if (!f)
        return -ENOMEM;
    f->fd = -1;
    f->base = base;
    f->size = size;
    atomic_init(&f->refs, 1);
    snprintf(f->path, sizeof(f->path), "%s", path);
    rc = store_io.open(f->path, O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0644);
    if (rc < 0)
        goto out;
    f->fd = rc;
    struct stat st;
    if (fstat(f->fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((size_t)st.st_size > size) {
        mq_error("%s: %lld bytes, more than the configured file size %zu", f->path,
                 (long long)st.st_size, size);
        rc = -EINVAL;
        goto out;
    }
    if ((size_t)st.st_size < size) {
        rc = store_io.ftruncate(f->fd, (off_t)size);
        if (rc < 0)
            goto out;
    }
    if (create && (flags & STORE__MF_PREALLOC)) { /* no SIGBUS on a full disk later */
        for (size_t at = 0; at < size; at += PREALLOC_STEP) {
            rc = store_io.fallocate(f->fd, (off_t)at,
                                    (off_t)(size - at < PREALLOC_STEP ? size - at : PREALLOC_STEP));
            if (rc < 0)
                goto out;
        }
    }
    f->map = store_io.mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        rc = -errno;
        goto out;
    }
    if (flags & (STORE__MF_SEQUENTIAL | STORE__MF_RANDOM))
        madvise(f->map, size, flags & STORE__MF_RANDOM ? MADV_RANDOM : MADV_SEQUENTIAL);
    f->head = f->map;
    if (flags & STORE__MF_HEAD) {
        void *head = store_io.mmap(NULL, size, PROT_READ, MAP_SHARED, f->fd, 0);
        if (head == MAP_FAILED) {
            rc = -errno;
            munmap(f->map, size);
            goto out;
        }
        madvise(head, size, MADV_RANDOM);
        f->head = head;
    }
    *out = f;
    return 0;
out:
    if (f->fd >= 0) {
        close(f->fd);
        if (create)
            unlink(f->path);
    }
    free(f);
    return rc;
}

int store__mlist_init(struct store__mlist *l, const char *dir, size_t file_size, int flags)
{
    memset(l, 0, sizeof(*l));
    if (strlen(dir) >= sizeof(l->dir))
        return -ENAMETOOLONG;
    strcpy(l->dir, dir);
    l->file_size = file_size;
    l->flags = flags;
    pthread_mutex_init(&l->lock, NULL);
    return 0;
}

void store__mlist_destroy(struct store__mlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        store__mfile_unref(l->files[i]);
    free(l->files);
    l->files = NULL;
    l->n = l->cap = 0;
    pthread_mutex_destroy(&l->lock);
}

static int push(struct store__mlist *l, struct store__mfile *f)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        void *p = realloc(l->files, cap * sizeof(*l->files));
        if (!p)
            return -ENOMEM;
        l->files = p;
        l->cap = cap;
    }
    l->files[l->n++] = f;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int store__mlist_load(struct store__mlist *l)
{
    int rc = store__mkdirs(l->dir);
    if (rc)
        return rc;
    DIR *d = opendir(l->dir);
    if (!d)
        return -errno;
    int64_t *bases = NULL;
    size_t nb = 0, cb = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        size_t nl = strlen(e->d_name);
        if (nl == 20 + sizeof(SPARE_SUFFIX) - 1 && !strcmp(e->d_name + 20, SPARE_SUFFIX)) {
            unlinkat(dirfd(d), e->d_name, 0); /* a spare never put in use (store__mlist_spare) */
            continue;
        }
        if (nl != 20)
            continue;
        long long v = strtoll(e->d_name, &end, 10);
        if (*end || v < 0)
            continue;
        if (nb == cb) {
            cb = cb ? cb * 2 : 16;
            int64_t *p = realloc(bases, cb * sizeof(*bases));
            if (!p) {
                rc = -ENOMEM;
                goto out;
            }
            bases = p;
        }
        bases[nb++] = v;
    }
    if (nb)
        qsort(bases, nb, sizeof(*bases), cmp_i64);
    for (size_t i = 0; i < nb; i++) {
        struct store__mfile *f;
        if (i > 0 && bases[i] != bases[i - 1] + (int64_t)l->file_size) {
            mq_warn("%s: gap before %020" PRId64 "; ignoring it and later files", l->dir, bases[i]);
            break;
        }
        rc = mfile_open(l->dir, bases[i], l->file_size, 0, l->flags, &f);
        if (!rc)
            rc = push(l, f);
        if (rc)
            goto out;
    }
out:
    closedir(d);
    free(bases);
    return rc;
}

struct store__mfile *store__mlist_find(struct store__mlist *l, int64_t off)
{
    struct store__mfile *f = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->n > 0 && off >= l->files[0]->base) {
        size_t i = (size_t)((off - l->files[0]->base) / (int64_t)l->file_size);
        if (i < l->n) {
            f = l->files[i];
            store__mfile_ref(f);
        }
    }
    pthread_mutex_unlock(&l->lock);
    return f;
}

static struct store__mfile *at(struct store__mlist *l, int last)
{
    struct store__mfile *f = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->n) {
        f = l->files[last ? l->n - 1 : 0];
        store__mfile_ref(f);
    }
    pthread_mutex_unlock(&l->lock);
    return f;
}

struct store__mfile *store__mlist_last(struct store__mlist *l)
{
    return at(l, 1);
}

struct store__mfile *store__mlist_first(struct store__mlist *l)
{
    return at(l, 0);
}

int64_t store__mlist_min_offset(struct store__mlist *l)
{
    pthread_mutex_lock(&l->lock);
    int64_t v = l->n ? l->files[0]->base : -1;
    pthread_mutex_unlock(&l->lock);
    return v;
}

int store__mlist_create(struct store__mlist *l, int64_t base, struct store__mfile **out)
{
    struct store__mfile *f;
    int rc = store__mkdirs(l->dir);
    if (rc)
        return rc;
    rc = mfile_open(l->dir, base, l->file_size, 1, l->flags, &f);
    if (rc)
        return rc;
    pthread_mutex_lock(&l->lock);
    if (l->n && l->files[l->n - 1]->base + (int64_t)l->file_size != base)
        mq_warn("%s: new file %020" PRId64 " does not follow the last", l->dir, base);
    rc = push(l, f);
    if (!rc)
        store__mfile_ref(f);
    pthread_mutex_unlock(&l->lock);
    if (rc) {
        unlink(f->path);
        store__mfile_unref(f);
        return rc;
    }
    *out = f;
    return 0;
}

int store__mlist_spare(struct store__mlist *l, int64_t base, struct store__mfile **out)
{
    char path[STORE__PATH_MAX];
    int rc = store__mkdirs(l->dir);
    if (!rc)
        rc = file_path(path, l->dir, base, SPARE_SUFFIX);
    if (rc)
        return rc;
    unlink(path); /* one left by a process that died making it */
    return store__mfile_open(path, base, l->file_size, 1, l->flags, out);
}

int store__mlist_adopt(struct store__mlist *l, struct store__mfile *f)
{
    char path[STORE__PATH_MAX];
    int rc = file_path(path, l->dir, f->base, "");
    if (rc)
        return rc;
    pthread_mutex_lock(&l->lock);
    if (l->n && l->files[l->n - 1]->base + (int64_t)l->file_size != f->base)
        rc = -EINVAL;
    if (!rc && rename(f->path, path) < 0)
        rc = -errno;
    if (!rc && (rc = push(l, f)) != 0)
        (void)rename(path, f->path); /* a file under a listed name is a listed file */
    if (!rc) {
        snprintf(f->path, sizeof(f->path), "%s", path);
        store__mfile_ref(f);
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

void store__mlist_spare_drop(struct store__mfile *f)
{
    if (!f)
        return;
    unlink(f->path);
    store__mfile_unref(f);
}

int store__mlist_delete_front(struct store__mlist *l, int max,
                              int (*keep)(struct store__mfile *f, void *arg), void *arg)
{
    int removed = 0;
    pthread_mutex_lock(&l->lock);
    while (removed < max && l->n > 1 && !(keep && keep(l->files[0], arg))) {
        struct store__mfile *f = l->files[0];
        memmove(l->files, l->files + 1, (l->n - 1) * sizeof(*l->files));
        l->n--;
        unlink(f->path);
        mq_info("deleted %s", f->path);
        store__mfile_unref(f);
        removed++;
    }
    pthread_mutex_unlock(&l->lock);
    return removed;
}

void store__mlist_delete_from(struct store__mlist *l, int64_t off)
{
    pthread_mutex_lock(&l->lock);
    while (l->n && l->files[l->n - 1]->base >= off) {
        struct store__mfile *f = l->files[--l->n];
        unlink(f->path);
        mq_info("truncated: deleted %s", f->path);
        store__mfile_unref(f);
    }
    pthread_mutex_unlock(&l->lock);
}

void store__mlist_remove_all(struct store__mlist *l)
{
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n; i++) {
        unlink(l->files[i]->path);
        store__mfile_unref(l->files[i]);
    }
    l->n = 0;
    pthread_mutex_unlock(&l->lock);
    rmdir(l->dir);
}

int store__mfile_zero_from(struct store__mfile *f, int64_t off)
{
    size_t pos = (size_t)(off - f->base);
    if (pos >= f->size)
        return 0;
    /* zero the partial page through the mapping, drop whole pages by truncation */
    size_t page_end = (pos + STORE__PAGE - 1) / STORE__PAGE * STORE__PAGE;
    if (page_end > f->size)
        page_end = f->size;
    memset(f->map + pos, 0, page_end - pos);
    if (page_end < f->size) {
        int rc = store_io.ftruncate(f->fd, (off_t)page_end);
        if (!rc)
            rc = store_io.ftruncate(f->fd, (off_t)f->size);
        if (rc)
            return rc;
        return store__mfile_reserve(f, f->base + (int64_t)page_end);
    }
    return 0;
}

int store__mfile_reserve(struct store__mfile *f, int64_t off)
{
    size_t pos = (size_t)(off - f->base) / STORE__PAGE * STORE__PAGE;
    if (pos >= f->size)
        return 0;
    return store_io.fallocate(f->fd, (off_t)pos, (off_t)(f->size - pos));
}

int store__mfile_sync(struct store__mfile *f, int64_t from, int64_t to)
{
    size_t a = (size_t)(from - f->base), b = (size_t)(to - f->base);
    if (b > f->size)
        b = f->size;
    if (a >= b)
        return 0;
    a = a / STORE__PAGE * STORE__PAGE;
    return store_io.msync(f->map + a, b - a, MS_SYNC);
}

#ifndef MADV_POPULATE_READ /* Linux 5.14 */
#define MADV_POPULATE_READ  22
#define MADV_POPULATE_WRITE 23
#endif

int store__mfile_populate(struct store__mfile *f, size_t from, size_t len, int write)
{
    static atomic_int unsupported; /* a kernel before 5.14: do not ask again */
    from = from / STORE__PAGE * STORE__PAGE;
    if (from >= f->size)
        return 0;
    len = len > f->size - from ? f->size - from : len;
    if (!atomic_load_explicit(&unsupported, memory_order_relaxed)) {
        if (madvise(f->map + from, len, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0)
            return 0;
        if (errno != EINVAL)
            return -errno;
        atomic_store(&unsupported, 1);
    }
    if (write)
        return 0; /* the writes fault their pages as before */
    return readahead(f->fd, (off_t)from, len) < 0 ? -errno : 0;
}
