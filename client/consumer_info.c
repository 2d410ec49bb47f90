/* consumer_info.c — read-only views of a running consumer for tools and tests: the queues it
 * owns after its last rebalance (what RocketMQ's consumerConnection / consumerStatus show). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/consumer_int.h"

int mqc_consumer_owned(struct mqc_consumer *c, struct mqc_mq **out, size_t *n)
{
    pthread_mutex_lock(&c->lock);
    size_t cnt = 0;
    for (struct pq *q = c->queues; q; q = q->next)
        cnt++;
    struct mqc_mq *v = malloc((cnt ? cnt : 1) * sizeof(*v));
    size_t k = 0;
    for (struct pq *q = c->queues; v && q; q = q->next)
        v[k++] = q->mq;
    pthread_mutex_unlock(&c->lock);
    if (!v)
        return -ENOMEM;
    qsort(v, k, sizeof(*v), mqc_queue_cmp);
    *out = v;
    *n = k;
    return 0;
}
