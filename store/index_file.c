/* index_file.c — index files (RocketMQ index/IndexFile.java, IndexService.java; FORMATS.md
 * 1.4): a hash of `topic#key` → chains of (keyHash, phyOffset, timeDiff, prevIndex) entries in
 * files named yyyyMMddHHmmssSSS; written by the dispatcher, queried newest file first. */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/mq_log.h"
#include "common/mq_util.h"

_Static_assert(STORE__IDX_HEADER == 8 + 8 + 8 + 8 + 4 + 4, "index header, FORMATS.md 1.4");
_Static_assert(STORE__IDX_ENTRY == 4 + 8 + 4 + 4, "index entry, FORMATS.md 1.4");

/* header fields */
#define H_BEGIN_TS  0
#define H_END_TS    8
#define H_BEGIN_PHY 16
#define H_END_PHY   24
#define H_SLOTS     32
#define H_COUNT     36

static size_t idx_file_size(struct store__idx *x)
{
    return STORE__IDX_HEADER + x->slots * STORE__IDX_SLOT + x->max_entries * STORE__IDX_ENTRY;
}

static int push(struct store__idx *x, struct store__mfile *f)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        void *p = realloc(x->files, cap * sizeof(*x->files));
        if (!p)
            return -ENOMEM;
        x->files = p;
        x->cap = cap;
    }
    x->files[x->n++] = f;
    return 0;
}

/* index/index.next: the next file while it is made ahead (never listed: not a time name). */
static int spare_path(const struct store__idx *x, char *path)
{
    int n = snprintf(path, STORE__PATH_MAX, "%s/index.next", x->dir);
    return n < 0 || n >= STORE__PATH_MAX ? -ENAMETOOLONG : 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int store__idx_load(struct store *s)
{
    struct store__idx *x = &s->idx;
    pthread_rwlock_init(&x->lock, NULL);
    x->slots = (size_t)s->conf.max_hash_slot_num;
    x->max_entries = (size_t)s->conf.max_index_num;
    snprintf(x->dir, sizeof(x->dir), "%s/index", s->root);
    int rc = store__mkdirs(x->dir);
    if (rc)
        return rc;
    DIR *d = opendir(x->dir);
    if (!d)
        return -errno;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strlen(e->d_name) != 17 || strspn(e->d_name, "0123456789") != 17)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(names, cap * sizeof(*names));
            if (!p)
                break;
            names = p;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    char spare[STORE__PATH_MAX];
    if (spare_path(x, spare) == 0)
        unlink(spare); /* made ahead and never taken (the process died) */
    if (n)
        qsort(names, n, sizeof(*names), cmp_name);
    for (size_t i = 0; i < n; i++) {
        char path[STORE__PATH_MAX];
        struct stat st;
        struct store__mfile *f;
        snprintf(path, sizeof(path), "%s/%s", x->dir, names[i]);
        if (stat(path, &st) == 0 && (size_t)st.st_size != idx_file_size(x)) {
            mq_warn("%s: size %lld does not match maxHashSlotNum/maxIndexNum; ignored", path,
                    (long long)st.st_size);
        } else if (!rc &&
                   store__mfile_open(path, 0, idx_file_size(x), 0, STORE__MF_RANDOM, &f) == 0) {
            rc = push(x, f);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

void store__idx_free(struct store *s)
{
    store__mlist_spare_drop(atomic_exchange(&s->idx.spare, NULL));
    for (size_t i = 0; i < s->idx.n; i++)
        store__mfile_unref(s->idx.files[i]);
    free(s->idx.files);
    s->idx.files = NULL;
    s->idx.n = 0;
    pthread_rwlock_destroy(&s->idx.lock);
}

static int idx_create(struct store *s, struct store__mfile **out)
{
    struct store__idx *x = &s->idx;
    char path[STORE__PATH_MAX];
    int64_t now = mq_now_ms();
    for (int tries = 0; tries < 1000; tries++, now++) {
        time_t sec = (time_t)(now / 1000);
        struct tm tm;
        localtime_r(&sec, &tm);
        snprintf(path, sizeof(path), "%s/%04d%02d%02d%02d%02d%02d%03d", x->dir, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(now % 1000));
        if (access(path, F_OK) == 0)
            continue;
        struct store__mfile *f = atomic_exchange(&x->spare, NULL);
        int rc = 0;
        if (f && rename(f->path, path) == 0) { /* made ahead, its slot table prefaulted */
            snprintf(f->path, sizeof(f->path), "%s", path);
            x->spare_asked = 0;
            x->warm_file = f;
            x->warm_end = 0;
        } else {
            if (f) { /* made but not renamed: asked again for the next roll */
                store__mlist_spare_drop(f);
                x->spare_asked = 0;
            }
            rc = store__mfile_open(path, 0, idx_file_size(x), 1,
                                   STORE__MF_PREALLOC | STORE__MF_RANDOM, &f);
            if (rc)
                return rc;
            x->warm_file = NULL;
        }
        mq_put_be32(f->map + H_COUNT, 1); /* entry 0 is never used */
        rc = push(x, f);
        if (rc) {
            store__mfile_unref(f);
            return rc;
        }
        *out = f;
        return 0;
    }
    return -EEXIST;
}

#define SLOTS_END(x) (STORE__IDX_HEADER + (x)->slots * STORE__IDX_SLOT)
#define WARM_STEP    (256u << 10) /* entry pages prefaulted at a time */

/* The slot hash of a key: Java's hashCode of "topic#key", made non-negative (IndexService). */
static int32_t slot_hash(uint32_t java_hash)
{
    int32_t h = (int32_t)java_hash;
    return h == INT32_MIN ? 0 : (h < 0 ? -h : h);
}

static int32_t key_hash(const char *key, size_t klen)
{
    return slot_hash(mq_java_hash_more(0, key, klen));
}

/* Java's hash of topic + '#', the start of every key of the topic. */
static uint32_t topic_hash(const char *topic, size_t tl)
{
    return mq_java_hash_more(mq_java_hash_more(0, topic, tl), "#", 1);
}

/* Whether x holds the hash of topic + '#' + k[0..pl) (keeping it now if k's prefix is ASCII:
 * its end is then a character's end, where a hash may be continued). */
static int prefix_kept(struct store__idx *x, const char *k, size_t pl)
{
    if (pl == x->h_prefix_len && memcmp(k, x->h_prefix, pl) == 0)
        return 1;
    x->h_prefix_len = 0;
    for (size_t i = 0; i < pl; i++)
        if ((unsigned char)k[i] >= 0x80)
            return 0;
    memcpy(x->h_prefix, k, pl);
    x->h_prefix_len = pl;
    x->h_prefix_hash = mq_java_hash_more(x->h_topic_hash, k, pl);
    return 1;
}

/* slot_hash of topic#k for the dispatcher, from the hashes of the last topic and the last key's
 * prefix where they still apply: consecutive UNIQ_KEYs share all but their last four characters,
 * so a key costs a 4-character hash instead of a ~40-character one. */
static int32_t put_key_hash(struct store__idx *x, const char *topic, size_t tl, const char *k,
                            size_t kl)
{
    if (tl == 0 || tl > sizeof(x->h_topic)) /* not a topic put would take: not kept */
        return slot_hash(mq_java_hash_more(topic_hash(topic, tl), k, kl));
    if (tl != x->h_topic_len || memcmp(topic, x->h_topic, tl)) {
        memcpy(x->h_topic, topic, tl);
        x->h_topic_len = tl;
        x->h_topic_hash = topic_hash(topic, tl);
        x->h_prefix_len = 0;
    }
    if (kl <= 4 || kl - 4 > STORE__IDX_PREFIX_MAX || !prefix_kept(x, k, kl - 4))
        return slot_hash(mq_java_hash_more(x->h_topic_hash, k, kl));
    return slot_hash(mq_java_hash_more(x->h_prefix_hash, k + kl - 4, 4));
}

/* The slots of a file about to be written (the whole table: keys land anywhere in it), then its
 * entry pages a step ahead of the next entry, by the warm thread where it can. */
static void warm(struct store *s, struct store__mfile *f, size_t next_entry)
{
    struct store__idx *x = &s->idx;
    if (x->warm_file != f) {
        x->warm_file = f;
        if (store__warm_request(s, f, 0, SLOTS_END(x)))
            (void)store__mfile_populate(f, 0, SLOTS_END(x), 1);
        x->warm_end = 0;
    }
    store__warm_ahead(s, f, (int64_t)next_entry, &x->warm_end, WARM_STEP);
}

static void put_key(struct store *s, struct store__mfile *f, int32_t h, int64_t phys, int64_t ts)
{
    struct store__idx *x = &s->idx;
    uint8_t *map = f->map;
    size_t slot_pos = STORE__IDX_HEADER + ((uint32_t)h % x->slots) * STORE__IDX_SLOT;
    uint32_t count = mq_get_be32(map + H_COUNT);
    size_t e_pos = SLOTS_END(x) + count * STORE__IDX_ENTRY;
    warm(s, f, e_pos);
    uint32_t prev = mq_get_be32(map + slot_pos);
    if (prev > count)
        prev = 0;
    int64_t begin = (int64_t)mq_get_be64(map + H_BEGIN_TS);
    int64_t diff = begin <= 0 ? 0 : (ts - begin) / 1000;
    diff = diff < 0 ? 0 : (diff > INT32_MAX ? INT32_MAX : diff);
    uint8_t *e = map + e_pos;
    mq_put_be32(e, (uint32_t)h);
    mq_put_be64(e + 4, (uint64_t)phys);
    mq_put_be32(e + 12, (uint32_t)diff);
    mq_put_be32(e + 16, prev);
    mq_put_be32(map + slot_pos, count);
    if (count <= 1) {
        mq_put_be64(map + H_BEGIN_PHY, (uint64_t)phys);
        mq_put_be64(map + H_BEGIN_TS, (uint64_t)ts);
    }
    if (prev == 0)
        mq_put_be32(map + H_SLOTS, mq_get_be32(map + H_SLOTS) + 1);
    mq_put_be32(map + H_COUNT, count + 1);
    mq_put_be64(map + H_END_PHY, (uint64_t)phys);
    mq_put_be64(map + H_END_TS, (uint64_t)ts);
}

/* The file to add a key to (rolling when full), or NULL. Write lock held. Half way through
 * a file, the next one is asked of the warm thread: the roll then renames it into place
 * instead of creating a file of some 400 MB and faulting in its slot table on this thread. */
static struct store__mfile *writable(struct store *s)
{
    struct store__idx *x = &s->idx;
    struct store__mfile *f = x->n ? x->files[x->n - 1] : NULL;
    uint32_t count = f ? mq_get_be32(f->map + H_COUNT) : 0;
    if (!f || count >= x->max_entries) {
        int rc = idx_create(s, &f);
        if (rc) {
            mq_error("index: cannot create a file: %s", strerror(-rc));
            return NULL;
        }
    } else if (count >= x->max_entries / 2 && !x->spare_asked && !s->conf.roll_in_place) {
        x->spare_asked = store__warm_index_spare(s) == 0;
    }
    return f;
}

void store__idx_make_spare(struct store *s)
{
    struct store__idx *x = &s->idx;
    char path[STORE__PATH_MAX];
    struct store__mfile *f;
    int rc = spare_path(x, path);
    if (!rc) {
        unlink(path); /* never a spare in use: one is asked for only after the last was taken */
        rc = store__mfile_open(path, 0, idx_file_size(x), 1, STORE__MF_PREALLOC | STORE__MF_RANDOM,
                               &f);
    }
    if (rc) {
        mq_debug("index: next file ahead of time: %s", strerror(-rc));
        return;
    }
    (void)store__mfile_populate(f, 0, SLOTS_END(x), 1); /* keys land anywhere in it */
    store__mlist_spare_drop(atomic_exchange(&x->spare, f));
}

/* Writes the oldest queued key. */
static void put_oldest(struct store *s)
{
    struct store__idx *x = &s->idx;
    struct store__idx_pend *pk = &x->pend[x->head];
    x->head = (x->head + 1) % STORE__IDX_AHEAD;
    x->npend--;
    struct store__mfile *f = writable(s);
    if (f)
        put_key(s, f, pk->hash, pk->phys, pk->ts);
}

/* Queues a key; its slot's line is fetched while the keys before it are written. */
static void queue_key(struct store *s, int32_t h, int64_t phys, int64_t ts)
{
    struct store__idx *x = &s->idx;
    if (x->npend == STORE__IDX_AHEAD)
        put_oldest(s);
    struct store__idx_pend *pk = &x->pend[(x->head + x->npend++) % STORE__IDX_AHEAD];
    pk->hash = h;
    pk->phys = phys;
    pk->ts = ts;
    if (x->n)
        __builtin_prefetch(x->files[x->n - 1]->map + STORE__IDX_HEADER +
                               ((uint32_t)h % x->slots) * STORE__IDX_SLOT,
                           1);
}

void store__idx_span_end(struct store *s)
{
    struct store__idx *x = &s->idx;
    while (x->npend)
        put_oldest(s);
    if (x->wr_held) {
        x->wr_held = 0;
        pthread_rwlock_unlock(&x->lock);
    }
}

int store__idx_put(struct store *s, const struct mq_msg *m, const struct store__props *p,
                   int64_t phys)
{
    struct store__idx *x = &s->idx;
    const char *uniq = p->uniq, *keys = p->keys;
    size_t ulen = p->uniq_len, klen = p->keys_len;
    if ((m->sysflag & MQ_SYSFLAG_TX_MASK) == MQ_SYSFLAG_TX_ROLLBACK)
        return 0;
    if (!uniq && !keys)
        return 0;
    /* one write lock per dispatch span, given up now and then for key queries */
    if (x->wr_held && ++x->held_puts >= 4096)
        store__idx_span_end(s);
    if (!x->wr_held) {
        pthread_rwlock_wrlock(&x->lock);
        x->wr_held = 1;
        x->held_puts = 0;
    }
    struct store__mfile *lf = x->n ? x->files[x->n - 1] : NULL;
    if (!x->npend && lf && mq_get_be32(lf->map + H_COUNT) > 1 &&
        phys <= (int64_t)mq_get_be64(lf->map + H_END_PHY))
        return 0; /* indexed before the restart (queued keys are all newer) */
    size_t at = 0;
    for (;;) {
        const char *k;
        size_t kl = 0;
        if (uniq) {
            k = uniq;
            kl = ulen;
            uniq = NULL;
        } else if (keys) {
            while (at < klen && keys[at] == ' ')
                at++;
            if (at >= klen)
                break;
            k = keys + at;
            while (at < klen && keys[at] != ' ')
                at++, kl++;
        } else {
            break;
        }
        if (kl == 0 || kl > 512)
            continue;
        queue_key(s, put_key_hash(x, m->topic, m->topic_len, k, kl), phys, m->store_ts);
    }
    return 0;
}

int store_query_by_key(struct store *s, const char *topic, size_t tlen, const char *k, size_t klen,
                       int64_t begin_ms, int64_t end_ms, int64_t *phys, int max)
{
    struct store__idx *x = &s->idx;
    char key[MQ_MSG_TOPIC_MAX + 2 + 512];
    if (tlen > MQ_MSG_TOPIC_MAX || klen > 512 || max <= 0)
        return 0;
    memcpy(key, topic, tlen);
    key[tlen] = '#';
    memcpy(key + tlen + 1, k, klen);
    int32_t h = key_hash(key, tlen + 1 + klen);
    int found = 0;
    pthread_rwlock_rdlock(&x->lock);
    for (size_t i = x->n; i-- > 0 && found < max;) {
        const uint8_t *map = x->files[i]->map;
        uint32_t count = mq_get_be32(map + H_COUNT);
        int64_t fb = (int64_t)mq_get_be64(map + H_BEGIN_TS);
        int64_t fe = (int64_t)mq_get_be64(map + H_END_TS);
        if (count <= 1 || fe < begin_ms || fb > end_ms)
            continue;
        uint32_t cur =
            mq_get_be32(map + STORE__IDX_HEADER + ((uint32_t)h % x->slots) * STORE__IDX_SLOT);
        for (int steps = 0; cur > 0 && cur < count && found < max && steps < (int)count; steps++) {
            const uint8_t *e =
                map + STORE__IDX_HEADER + x->slots * STORE__IDX_SLOT + cur * STORE__IDX_ENTRY;
            int64_t t = fb + (int64_t)mq_get_be32(e + 12) * 1000;
            if ((int32_t)mq_get_be32(e) == h && t >= begin_ms && t <= end_ms)
                phys[found++] = (int64_t)mq_get_be64(e + 4);
            uint32_t prev = mq_get_be32(e + 16);
            if (prev >= cur || t < begin_ms)
                break;
            cur = prev;
        }
    }
    pthread_rwlock_unlock(&x->lock);
    return found;
}

int store__idx_delete_below(struct store *s, int64_t clog_min)
{
    struct store__idx *x = &s->idx;
    int n = 0;
    pthread_rwlock_wrlock(&x->lock);
    while (x->n > 1 && (int64_t)mq_get_be64(x->files[0]->map + H_END_PHY) < clog_min) {
        struct store__mfile *f = x->files[0];
        memmove(x->files, x->files + 1, (x->n - 1) * sizeof(*x->files));
        x->n--;
        unlink(f->path);
        mq_info("deleted %s", f->path);
        store__mfile_unref(f);
        n++;
    }
    pthread_rwlock_unlock(&x->lock);
    return n;
}

int store__idx_sync(struct store *s)
{
    struct store__idx *x = &s->idx;
    struct store__mfile *f = NULL;
    size_t end = 0;
    /* The file is referenced and synced without the lock: a sync of a busy disk took up to
     * 0.2 s, and the dispatcher, which takes the lock to add keys, waited as long. */
    pthread_rwlock_rdlock(&x->lock);
    if (x->n) {
        f = x->files[x->n - 1];
        store__mfile_ref(f);
        uint32_t count = mq_get_be32(f->map + H_COUNT);
        end = STORE__IDX_HEADER + x->slots * STORE__IDX_SLOT + count * STORE__IDX_ENTRY;
    }
    pthread_rwlock_unlock(&x->lock);
    int rc = f ? store__mfile_sync(f, 0, (int64_t)end) : 0;
    store__mfile_unref(f);
    return rc;
}

/* Recovery (FORMATS.md 1.7): removes index entries at or past the recovered commitlog end,
 * newest first, unlinking each from its slot's chain; drops files that start past it. */
int store__idx_truncate(struct store *s, int64_t clog_end)
{
    struct store__idx *x = &s->idx;
    int removed = 0;
    while (x->n > 0) {
        struct store__mfile *f = x->files[x->n - 1];
        uint8_t *map = f->map;
        uint32_t count = mq_get_be32(map + H_COUNT);
        if (count > 1 && (int64_t)mq_get_be64(map + H_BEGIN_PHY) >= clog_end) {
            unlink(f->path);
            store__mfile_unref(f);
            x->n--;
            continue;
        }
        uint8_t *ents = map + STORE__IDX_HEADER + x->slots * STORE__IDX_SLOT;
        while (count > 1) {
            uint8_t *e = ents + (size_t)(count - 1) * STORE__IDX_ENTRY;
            if ((int64_t)mq_get_be64(e + 4) < clog_end)
                break;
            uint8_t *slot =
                map + STORE__IDX_HEADER + (mq_get_be32(e) % (uint32_t)x->slots) * STORE__IDX_SLOT;
            if (mq_get_be32(slot) == count - 1)
                memcpy(slot, e + 16, 4); /* the slot goes back to the previous entry */
            memset(e, 0, STORE__IDX_ENTRY);
            count--;
            removed++;
        }
        mq_put_be32(map + H_COUNT, count);
        if (count > 1) {
            const uint8_t *last = ents + (size_t)(count - 1) * STORE__IDX_ENTRY;
            int64_t begin = (int64_t)mq_get_be64(map + H_BEGIN_TS);
            mq_put_be64(map + H_END_PHY, mq_get_be64(last + 4));
            mq_put_be64(map + H_END_TS, (uint64_t)(begin + (int64_t)mq_get_be32(last + 12) * 1000));
        }
        break;
    }
    if (removed)
        mq_info("index: removed %d entries past the commitlog end", removed);
    return removed;
}
