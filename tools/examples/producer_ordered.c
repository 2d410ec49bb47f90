/* producer_ordered.c — ordered messages: a selector maps each order id to one queue (hash of the
 * id modulo the number of queues), so every step of an order is stored, and consumed, in
 * sequence. -k order ids; message i is step i / k of order i % k. One line per message:
 *   OK <i> <orderId> <step> <broker> <queueId> <queueOffset>   or   FAIL <i> <error>
 *   example_producer_ordered -n 127.0.0.1:9876 -t TopicTest -c 40 -k 4 */
#include "common/mq_err.h"
#include "tools/examples/example.h"

/* Same order id -> same queue, as long as the topic's queues do not change. */
static size_t by_order_id(const struct mqc_mq *queues, size_t n, const struct mqc_message *m,
                          void *arg)
{
    long order_id = *(const long *)arg;
    return (size_t)order_id % n;
}

int main(int argc, char **argv)
{
    struct example_args a;
    example_args(argc, argv, &a);
    struct mqc_config cfg = {.namesrv = a.namesrv, .group = a.group ? a.group : "example_producer"};
    struct mqc_producer *p = NULL;
    int rc = mqc_producer_new(&cfg, &p);
    if (rc) {
        fprintf(stderr, "producer: %s\n", mq_strerror(rc));
        return 1;
    }
    long failed = 0;
    for (long i = 0; i < a.count; i++) {
        long order_id = i % a.orders, step = i / a.orders;
        char body[64], key[32];
        snprintf(body, sizeof(body), "order-%ld-step-%ld", order_id, step);
        snprintf(key, sizeof(key), "order-%ld", order_id);
        struct mqc_message m = {
            .topic = a.topic, .tags = a.tag, .keys = key, .body = body, .body_len = strlen(body)};
        struct mqc_send_result res;
        rc = mqc_send_select(p, &m, by_order_id, &order_id, &res);
        if (rc == 0)
            printf("OK %ld %ld %ld %s %d %lld\n", i, order_id, step, res.broker, res.queue_id,
                   (long long)res.queue_offset);
        else
            printf("FAIL %ld %s\n", i, mq_strerror(rc));
        failed += rc != 0;
    }
    mqc_producer_free(p);
    return failed ? 1 : 0;
}
