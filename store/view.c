/* view.c — lookups behind the file interface's topic view (docs/FORMATS.md Part 3): the topic
 * file shows a topic's messages in commitlog order, so the broker needs, per queue, where a
 * commitlog position falls in the queue. Consume-queue entries of one queue are in commitlog
 * order, so this is a binary search. */
#include "store/store_int.h"

#include <stdatomic.h>

int64_t store_offset_by_phys(struct store *s, const char *topic, size_t topic_len, int queue_id,
                             int64_t phys)
{
    struct store__queue *q = store__queue_get(s, topic, topic_len, queue_id);
    if (!q)
        return 0;
    int64_t lo = atomic_load(&q->min_off), hi = atomic_load(&q->max_off);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, p = 0;
        int32_t size = 0;
        if (store__cq_entry(q, mid, &p, &size, NULL) != 0)
            return lo; /* deleted under us by retention: the caller sees OFFSET_MOVED next */
        if (p >= phys)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int64_t store_dispatched_offset(struct store *s)
{
    return atomic_load(&s->reput);
}
