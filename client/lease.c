/* lease.c — exact hand-over of queues between the consumers of one client instance (the
 * consumers of an mqfs mount share one: mqc_consumer_opts.shared).
 *
 * RocketMQ's rebalance is at-least-once: every consumer computes the allocation on its own, so
 * a queue's new owner may start pulling (from the group's committed offset) before its old
 * owner noticed the change, stopped handing out its messages and committed what it consumed.
 * Both then deliver the same messages. Consumers of one process can do better: a queue is
 * owned by at most one of them at a time through a lease kept here. A consumer that is
 * allocated a queue leased to another asks the holder to rebalance now and waits; the holder
 * lets go once its own rebalance agrees (after its taken message, if any, was acked or
 * nacked), commits, and hands the offset it consumed up to to the next owner, who starts
 * there. Consumers in other processes are not covered (docs/FS.md, "Group views").
 *
 * Lock order: the lease lock may be held while taking a consumer's lock (to wake it); no
 * function here is called with a consumer's lock held. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/consumer_int.h"

struct mqc_lease {
    struct mqc_lease *next;
    char group[MQC_NAME_MAX];
    struct mqc_mq mq;
    struct mqc_consumer *owner;  /* NULL: let go of, `handed` waits for the next owner */
    struct mqc_consumer *waiter; /* asked for the queue while someone else held it */
    int64_t handed;              /* the offset the last owner consumed up to, or -1 */
};

/* Asks a consumer's service thread to rebalance now. Lease lock held. */
static void wake(struct mqc_consumer *c)
{
    pthread_mutex_lock(&c->lock);
    c->rebalance_now = 1;
    pthread_cond_signal(&c->svc_cond);
    pthread_mutex_unlock(&c->lock);
}

static struct mqc_lease **find(struct mqc_instance *inst, const char *group,
                               const struct mqc_mq *mq)
{
    struct mqc_lease **pl = &inst->leases;
    while (*pl && (strcmp((*pl)->group, group) != 0 || mqc_queue_cmp(&(*pl)->mq, mq) != 0))
        pl = &(*pl)->next;
    return pl;
}

int mqc__lease_acquire(struct mqc_consumer *c, const struct mqc_mq *mq, int64_t *handed)
{
    struct mqc_instance *inst = c->inst;
    int rc = 0;
    *handed = -1;
    pthread_mutex_lock(&inst->lease_lock);
    struct mqc_lease **pl = find(inst, c->group, mq), *l = *pl;
    if (!l) {
        if ((l = calloc(1, sizeof(*l))) == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        memcpy(l->group, c->group, sizeof(l->group));
        l->mq = *mq;
        l->handed = -1;
        *pl = l;
    }
    if (l->owner && l->owner != c) {
        l->waiter = c;
        wake(l->owner); /* its rebalance lets go of the queue if it agrees, then wakes c */
        rc = -EBUSY;
        goto out;
    }
    l->owner = c;
    if (l->waiter == c)
        l->waiter = NULL;
    *handed = l->handed;
    l->handed = -1;
out:
    pthread_mutex_unlock(&inst->lease_lock);
    return rc;
}

void mqc__lease_release(struct mqc_consumer *c, const struct mqc_mq *mq, int64_t consumed)
{
    struct mqc_instance *inst = c->inst;
    pthread_mutex_lock(&inst->lease_lock);
    struct mqc_lease **pl = find(inst, c->group, mq), *l = *pl;
    if (l && l->owner == c) {
        l->owner = NULL;
        if (l->waiter && l->waiter != c) { /* keep the offset for the next owner */
            l->handed = consumed;
            wake(l->waiter);
        } else { /* nobody waits: the broker's committed offset is where a later owner starts */
            *pl = l->next;
            free(l);
        }
    }
    pthread_mutex_unlock(&inst->lease_lock);
}

void mqc__lease_forget(struct mqc_consumer *c)
{
    /* Called after its last commit, with its queues still listed and nothing taken any more
     * (it is stopping): their consumed offsets are final. */
    struct mqc_instance *inst = c->inst;
    pthread_mutex_lock(&inst->lease_lock);
    for (struct mqc_lease **pl = &inst->leases; *pl;) {
        struct mqc_lease *l = *pl;
        if (l->waiter == c)
            l->waiter = NULL;
        if (l->owner == c) { /* closing: hand what it consumed to whoever waits */
            int64_t consumed = -1;
            pthread_mutex_lock(&c->lock);
            for (struct pq *q = c->queues; q; q = q->next)
                if (mqc_queue_cmp(&q->mq, &l->mq) == 0)
                    consumed = q->consumed;
            pthread_mutex_unlock(&c->lock);
            l->owner = NULL;
            if (l->waiter && consumed >= 0) {
                l->handed = consumed;
                wake(l->waiter);
            }
        }
        if (!l->owner && !l->waiter) {
            *pl = l->next;
            free(l);
        } else {
            pl = &l->next;
        }
    }
    pthread_mutex_unlock(&inst->lease_lock);
}

void mqc__lease_destroy(struct mqc_instance *inst)
{
    while (inst->leases) {
        struct mqc_lease *l = inst->leases;
        inst->leases = l->next;
        free(l);
    }
    pthread_mutex_destroy(&inst->lease_lock);
}
