/* consumer_int.h — the consumer's state, shared by consumer.c (pulls, buffer, take/ack) and
 * consumer_svc.c (heartbeat, rebalance, offset commits, lifecycle). One mutex guards it all;
 * pull callbacks run on the remoting loop thread, the service on its own thread. */
#ifndef MQ_CLIENT_CONSUMER_INT_H
#define MQ_CLIENT_CONSUMER_INT_H

#include "client/client_int.h"
#include "common/mq_tags.h"

#define MQC_MAX_SUBS 16

struct sub {
    char topic[MQC_NAME_MAX];
    char expr[512];
    struct mq_tags tags; /* a tag subscription's; "all" for SQL92 */
    int sql;             /* expr is an SQL92 expression (the broker filters) */
    int64_t version;
};

/* A pulled batch; messages are handed out in order. */
struct chunk {
    struct chunk *next;
    struct mqc_pull_result res;
    size_t next_msg;
};

/* An owned queue ("process queue"). Referenced by the consumer's list and by an in-flight
 * pull; freed when both are gone. */
struct pq {
    struct pq *next;
    struct mqc_consumer *owner;
    struct mqc_mq mq;
    const struct sub *sub;
    char addr[MQC_ADDR_MAX];
    int refs;
    int dropped;
    int pulling;
    int64_t retry_at;  /* monotonic ms: pull again after an error */
    int64_t next_pull; /* offset of the next pull */
    int64_t consumed;  /* next offset to consume (acked) */
    int64_t committed; /* last offset the broker accepted */
    struct chunk *head, *tail;
    size_t buffered;       /* pulled messages not yet taken */
    struct mqc_msg *taken; /* handed out, not yet acked or nacked */
    int releasing;         /* rebalanced away while taken: handed out no more, dropped (and
                            * its lease let go of) once the taken message is acked or nacked */
    int answered;          /* a pull of this queue was answered */
    int64_t known_max;     /* the queue's max offset in the last answer */
};

struct mqc_consumer {
    struct mqc_instance *inst; /* own, or an admin handle's (opts.shared) */
    int own_inst;
    char client_id[192]; /* this consumer's id in its group */
    char group[MQC_NAME_MAX];
    int refs;      /* the owner + one per pull in flight; the last frees (lock) */
    int cb_active; /* on_ready calls running (lock) */
    struct mqc_consumer_opts opts;
    struct sub *subs; /* grown by subscribe, before start only (queues point into it) */
    size_t nsubs;
    int started;
    int rebalanced; /* the first rebalance ran */
    size_t awaited; /* allocated queues another consumer of the instance still holds (lock) */

    pthread_mutex_t lock;
    pthread_cond_t cond;     /* a message became ready, or wakeup */
    pthread_cond_t svc_cond; /* wakes the service thread */
    pthread_t svc;
    int stopping;
    int rebalance_now;
    unsigned wake_gen;
    size_t rr;
    struct pq *queues;
    void (*on_ready)(void *);
    void *on_ready_arg;
};

/* Queue leases among the consumers of one instance (lease.c). None of these is called with a
 * consumer's lock held. acquire: 0 and *handed = the offset the previous owner here consumed up
 * to (-1: none, start from the broker's), or -EBUSY when another consumer holds the queue (it
 * is asked to rebalance now; c is woken when it lets go) or -ENOMEM. release: after the queue
 * was dropped and its offset committed. forget: at free, after the last commit. */
int mqc__lease_acquire(struct mqc_consumer *c, const struct mqc_mq *mq, int64_t *handed);
void mqc__lease_release(struct mqc_consumer *c, const struct mqc_mq *mq, int64_t consumed);
void mqc__lease_forget(struct mqc_consumer *c);

void mqc__pq_pull(struct mqc_consumer *c, struct pq *q);
void mqc__pq_drop(struct mqc_consumer *c, struct pq *q);
void mqc__consumer_register_notify(struct mqc_consumer *c);
/* Drops a reference; the last one frees the consumer. Lock NOT held. */
void mqc__consumer_unref(struct mqc_consumer *c);

#endif
