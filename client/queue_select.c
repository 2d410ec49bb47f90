/* queue_select.c — where a send goes and which queues a consumer owns: RocketMQ 4.x's
 * latency fault avoidance (MQFaultStrategy, LatencyFaultToleranceImpl), queue selection
 * (TopicPublishInfo.selectOneMessageQueue) and AllocateMessageQueueAveragely. */
#include <string.h>

#include "client/client_int.h"

/* MQFaultStrategy: a send latency at or above latencyMax[i] makes the broker unavailable for
 * notAvailableDuration[i] milliseconds. */
static const int64_t latency_max[] = {50, 100, 550, 1000, 2000, 3000, 15000};
static const int64_t not_available[] = {0, 0, 30000, 60000, 120000, 180000, 600000};
#define NSTEPS               (sizeof(latency_max) / sizeof(latency_max[0]))
#define ISOLATION_LATENCY_MS 30000

int64_t mqc_fault_duration(int64_t latency_ms)
{
    for (size_t i = NSTEPS; i-- > 0;)
        if (latency_ms >= latency_max[i])
            return not_available[i];
    return 0;
}

static struct mqc_fault_item *find_item(const struct mqc_faults *f, const char *broker)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->items[i].broker, broker) == 0)
            return (struct mqc_fault_item *)&f->items[i];
    return NULL;
}

void mqc_fault_update(struct mqc_faults *f, const char *broker, int64_t latency_ms, int isolation,
                      int64_t now_ms)
{
    int64_t lat = isolation ? ISOLATION_LATENCY_MS : latency_ms;
    struct mqc_fault_item *it = find_item(f, broker);
    if (!it) {
        if (f->n == MQC_FAULT_MAX) { /* forget the item that became available first */
            size_t oldest = 0;
            for (size_t i = 1; i < f->n; i++)
                if (f->items[i].available_after_ms < f->items[oldest].available_after_ms)
                    oldest = i;
            it = &f->items[oldest];
        } else {
            it = &f->items[f->n++];
        }
        size_t n = strlen(broker);
        if (n >= sizeof(it->broker))
            n = sizeof(it->broker) - 1;
        memcpy(it->broker, broker, n);
        it->broker[n] = '\0';
    }
    it->latency_ms = lat;
    it->available_after_ms = now_ms + mqc_fault_duration(lat);
}

int mqc_fault_available(const struct mqc_faults *f, const char *broker, int64_t now_ms)
{
    const struct mqc_fault_item *it = find_item(f, broker);
    return !it || now_ms >= it->available_after_ms;
}

int mqc_select_queue(const struct mqc_mq *queues, size_t n, uint32_t *index,
                     const char *last_failed, const struct mqc_faults *f, int64_t now_ms)
{
    if (n == 0)
        return -1;
    /* First choice: a queue on an available broker other than the one that just failed. */
    for (size_t k = 0; k < n; k++) {
        size_t pos = (*index)++ % n;
        const struct mqc_mq *q = &queues[pos];
        if (last_failed && strcmp(q->broker, last_failed) == 0)
            continue;
        if (f && !mqc_fault_available(f, q->broker, now_ms))
            continue;
        return (int)pos;
    }
    /* Every broker is excluded: take the next queue not on the broker that just failed,
     * else any queue (RocketMQ falls back the same way rather than failing the send). */
    for (size_t k = 0; k < n; k++) {
        size_t pos = (*index)++ % n;
        if (!last_failed || strcmp(queues[pos].broker, last_failed) != 0)
            return (int)pos;
    }
    return (int)((*index)++ % n);
}

size_t mqc_allocate_averagely(size_t nq, const char *const *cids, size_t ncids, const char *cid,
                              size_t *out)
{
    size_t index = ncids;
    for (size_t i = 0; i < ncids; i++)
        if (strcmp(cids[i], cid) == 0) {
            index = i;
            break;
        }
    if (index == ncids || nq == 0)
        return 0;
    size_t mod = nq % ncids;
    size_t avg = nq <= ncids ? 1 : (mod > 0 && index < mod ? nq / ncids + 1 : nq / ncids);
    size_t start = (mod > 0 && index < mod) ? index * avg : index * avg + mod;
    if (start >= nq)
        return 0;
    size_t range = avg < nq - start ? avg : nq - start;
    for (size_t i = 0; i < range; i++)
        out[i] = (start + i) % nq;
    return range;
}
