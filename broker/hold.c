/* hold.c — long-polling holds: a map from "topic@queue" to the parked items, a min-heap of
 * deadlines, a ready list, and one thread that fires items (see hold.h). */
#include "broker/hold.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mq_map.h"
#include "common/mq_util.h"

struct held {
    struct held *next, *prev; /* in its queue's list, or in the ready list */
    struct qlist *q;          /* NULL once moved to the ready list */
    size_t heap_pos;          /* index in the deadline heap; SIZE_MAX when not in it */
    int64_t offset;
    int64_t deadline_ms;
    int timed_out;
    void *item;
};

struct qlist {
    struct held head; /* circular list sentinel */
    char *key;        /* its key in brk_hold.queues */
};

struct brk_hold {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int stopping;
    struct mq_map queues; /* "topic@qid" -> struct qlist */
    struct held **heap;
    size_t nheap, capheap;
    atomic_size_t parked; /* nheap, for brk_hold_notify's look without the lock */
    struct held ready;    /* sentinel */
    uint64_t count;       /* parked and ready items, not yet fired (brk_hold_count) */
    brk_hold_fire_fn fire;
    void *arg;
    int fire_inline;
};

static void list_init(struct held *s)
{
    s->next = s->prev = s;
}

static void list_push(struct held *s, struct held *h)
{
    h->prev = s->prev;
    h->next = s;
    s->prev->next = h;
    s->prev = h;
}

static void list_del(struct held *h)
{
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->next = h->prev = h;
}

/* ---- deadline heap ---- */

static void heap_swap(struct brk_hold *h, size_t a, size_t b)
{
    struct held *t = h->heap[a];
    h->heap[a] = h->heap[b];
    h->heap[b] = t;
    h->heap[a]->heap_pos = a;
    h->heap[b]->heap_pos = b;
}

static void heap_up(struct brk_hold *h, size_t i)
{
    while (i > 0 && h->heap[(i - 1) / 2]->deadline_ms > h->heap[i]->deadline_ms) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct brk_hold *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->nheap && h->heap[l]->deadline_ms < h->heap[m]->deadline_ms)
            m = l;
        if (r < h->nheap && h->heap[r]->deadline_ms < h->heap[m]->deadline_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void heap_remove(struct brk_hold *h, struct held *x)
{
    size_t i = x->heap_pos;
    if (i == SIZE_MAX)
        return;
    h->nheap--;
    atomic_store_explicit(&h->parked, h->nheap, memory_order_relaxed);
    if (i != h->nheap) {
        h->heap[i] = h->heap[h->nheap];
        h->heap[i]->heap_pos = i;
        heap_down(h, i);
        heap_up(h, i);
    }
    x->heap_pos = SIZE_MAX;
}

/* Moves an item from its queue (and the heap) to the ready list; a queue left empty is
 * dropped, so memory follows what is parked. Lock held. */
static void make_ready(struct brk_hold *h, struct held *x, int timed_out)
{
    struct qlist *q = x->q;
    heap_remove(h, x);
    list_del(x);
    x->q = NULL;
    if (q && q->head.next == &q->head) {
        mq_map_del(&h->queues, q->key);
        free(q->key);
        free(q);
    }
    x->timed_out = timed_out;
    list_push(&h->ready, x);
}

static void *hold_main(void *arg)
{
    struct brk_hold *h = arg;
    pthread_setname_np(pthread_self(), "brk-hold");
    pthread_mutex_lock(&h->lock);
    for (;;) {
        int64_t now = mq_mono_us() / 1000;
        while (h->nheap > 0 && h->heap[0]->deadline_ms <= now)
            make_ready(h, h->heap[0], 1);
        if (h->ready.next != &h->ready) {
            struct held *x = h->ready.next;
            list_del(x);
            h->count--;
            pthread_mutex_unlock(&h->lock);
            h->fire(x->item, x->timed_out, h->arg);
            free(x);
            pthread_mutex_lock(&h->lock);
            continue;
        }
        if (h->stopping)
            break;
        if (h->nheap == 0) {
            pthread_cond_wait(&h->cond, &h->lock);
        } else {
            struct timespec ts;
            mq_deadline(&ts, CLOCK_REALTIME, (h->heap[0]->deadline_ms - now) * 1000);
            pthread_cond_timedwait(&h->cond, &h->lock, &ts);
        }
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

int brk_hold_new(brk_hold_fire_fn fire, void *arg, int fire_inline, struct brk_hold **out)
{
    struct brk_hold *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    mq_map_init(&h->queues);
    list_init(&h->ready);
    h->fire = fire;
    h->arg = arg;
    h->fire_inline = fire_inline;
    if (pthread_create(&h->thread, NULL, hold_main, h) != 0) {
        mq_map_destroy(&h->queues);
        pthread_cond_destroy(&h->cond);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return -EAGAIN;
    }
    *out = h;
    return 0;
}

void brk_hold_free(struct brk_hold *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    while (h->nheap > 0) /* every parked item is in the heap */
        make_ready(h, h->heap[0], -1);
    mq_map_destroy(&h->queues);
    h->stopping = 1;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL); /* it drains the ready list before leaving */
    free(h->heap);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static void make_key(char *buf, size_t cap, const char *topic, int queue_id)
{
    snprintf(buf, cap, "%s@%d", topic, queue_id);
}

int brk_hold_add(struct brk_hold *h, const char *topic, int queue_id, int64_t offset,
                 int64_t deadline_ms, void *item)
{
    char key[160];
    make_key(key, sizeof(key), topic, queue_id);
    struct held *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->offset = offset;
    x->deadline_ms = deadline_ms;
    x->item = item;
    pthread_mutex_lock(&h->lock);
    int rc = -ENOMEM;
    if (h->stopping)
        goto fail;
    struct qlist *q = mq_map_get(&h->queues, key);
    if (!q) {
        q = calloc(1, sizeof(*q));
        if (!q)
            goto fail;
        list_init(&q->head);
        if (!(q->key = strdup(key)) || mq_map_put(&h->queues, key, q, NULL)) {
            free(q->key);
            free(q);
            goto fail;
        }
    }
    if (h->nheap == h->capheap) {
        size_t cap = h->capheap ? h->capheap * 2 : 64;
        struct held **p = realloc(h->heap, cap * sizeof(*p));
        if (!p)
            goto fail;
        h->heap = p;
        h->capheap = cap;
    }
    x->q = q;
    list_push(&q->head, x);
    x->heap_pos = h->nheap;
    h->heap[h->nheap++] = x;
    atomic_store_explicit(&h->parked, h->nheap, memory_order_relaxed);
    heap_up(h, x->heap_pos);
    h->count++;
    if (h->heap[0] == x) /* a new earliest deadline: the thread must re-arm */
        pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    /* The caller reads the queue's offset next: ordered after `parked`, so that either it
     * sees a message that came meanwhile or brk_hold_notify sees this item. */
    atomic_thread_fence(memory_order_seq_cst);
    return 0;
fail:
    pthread_mutex_unlock(&h->lock);
    free(x);
    return rc;
}

void brk_hold_notify(struct brk_hold *h, const char *topic, int queue_id, int64_t max_offset)
{
    /* Nothing parked (every send's arrival while no consumer waits): no key, no lock. The
     * fence orders the caller's new offset before the look (see brk_hold_add). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&h->parked, memory_order_relaxed) == 0)
        return;
    char key[160];
    make_key(key, sizeof(key), topic, queue_id);
    struct held local; /* items to fire here (fire_inline) */
    list_init(&local);
    pthread_mutex_lock(&h->lock);
    struct qlist *q = mq_map_get(&h->queues, key);
    int woke = 0;
    if (q) {
        /* Count first: make_ready frees q when it empties. */
        size_t n = 0, k = 0;
        for (struct held *x = q->head.next; x != &q->head; x = x->next)
            n++;
        struct held *x = q->head.next;
        while (k++ < n) {
            struct held *next = x->next;
            if (x->offset < max_offset) {
                make_ready(h, x, 0);
                if (h->fire_inline) {
                    list_del(x);
                    list_push(&local, x);
                    h->count--;
                }
                woke = 1;
            }
            x = next;
        }
    }
    if (woke && !h->fire_inline)
        pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    while (local.next != &local) {
        struct held *x = local.next;
        list_del(x);
        h->fire(x->item, 0, h->arg);
        free(x);
    }
}

uint64_t brk_hold_count(struct brk_hold *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t n = h->count;
    pthread_mutex_unlock(&h->lock);
    return n;
}
