/* hold.h — long-polling holds (RocketMQ's PullRequestHoldService, without its polling loop):
 * a pull that finds nothing is parked here, keyed by topic and queue, until the store reports
 * an arrival past the pull's offset or the pull's deadline passes. One thread fires holds;
 * a parked pull costs one small record and no thread.
 *
 * Thread-safe. `item` is the caller's (e.g. the connection reference and the request); the
 * module only passes it back to `fire`, exactly once.
 */
#ifndef MQ_BROKER_HOLD_H
#define MQ_BROKER_HOLD_H

#include <stdint.h>

struct brk_hold;

/* Runs on the hold thread for each parked item: `timed_out` is 1 when its deadline passed, 0
 * when a message arrived, and -1 when the service is shutting down. */
typedef void (*brk_hold_fire_fn)(void *item, int timed_out, void *arg);

/* With fire_inline, items woken by brk_hold_notify are fired on the notifying thread (after it
 * drops the lock) instead of the hold thread: for cheap callbacks such as handing a prepared
 * reply to a connection. Deadlines always fire on the hold thread. */
int brk_hold_new(brk_hold_fire_fn fire, void *arg, int fire_inline, struct brk_hold **out);
/* Fires every parked item with timed_out = -1, stops the thread, frees. NULL is a no-op. */
void brk_hold_free(struct brk_hold *h);

/* Parks item until a message at or after `offset` arrives in (topic, queue_id), or until
 * deadline_ms (monotonic milliseconds). Returns 0 or -ENOMEM (then item is not parked). */
int brk_hold_add(struct brk_hold *h, const char *topic, int queue_id, int64_t offset,
                 int64_t deadline_ms, void *item);

/* The queue's max offset is now max_offset (one past the newest message): wakes every item
 * parked there with offset < max_offset. Cheap; callable from the store's dispatch thread. */
void brk_hold_notify(struct brk_hold *h, const char *topic, int queue_id, int64_t max_offset);

/* How many items are parked (for runtime info and tests). */
uint64_t brk_hold_count(struct brk_hold *h);

#endif
