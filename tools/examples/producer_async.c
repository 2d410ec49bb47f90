/* producer_async.c — mqc_send_async returns at once; the callback runs on the client's network
 * thread when the broker answers (after retries). The producer bounds the bytes in flight and
 * mqc_producer_free waits for every callback. One line per message, from the callback:
 *   OK <i> <broker> <queueId> <queueOffset> <msgId>   or   FAIL <i> <error>
 *   example_producer_async -n 127.0.0.1:9876 -t TopicTest -c 100 */
#include <pthread.h>
#include <stdatomic.h>

#include "common/mq_err.h"
#include "tools/examples/example.h"

static atomic_long failures;

static void on_sent(int err, const struct mqc_send_result *res, void *arg)
{
    long i = (long)(intptr_t)arg;
    if (err == 0)
        printf("OK %ld %s %d %lld %s\n", i, res->broker, res->queue_id,
               (long long)res->queue_offset, res->msg_id);
    else
        printf("FAIL %ld %s\n", i, mq_strerror(err));
    if (err)
        atomic_fetch_add(&failures, 1);
}

int main(int argc, char **argv)
{
    struct example_args a;
    example_args(argc, argv, &a);
    struct mqc_config cfg = {.namesrv = a.namesrv,
                             .group = a.group ? a.group : "example_producer",
                             .compress_type = a.compress_type,
                             .compress_over = a.compress_over};
    struct mqc_producer *p = NULL;
    int rc = mqc_producer_new(&cfg, &p);
    if (rc) {
        fprintf(stderr, "producer: %s\n", mq_strerror(rc));
        return 1;
    }
    for (long i = 0; i < a.count; i++) {
        size_t len = 0;
        char *body = example_body("async", i, a.size, &len);
        struct mqc_message m = {.topic = a.topic, .tags = a.tag, .body = body, .body_len = len};
        /* The message is copied before mqc_send_async returns. */
        rc = mqc_send_async(p, &m, on_sent, (void *)(intptr_t)i);
        if (rc) {
            printf("FAIL %ld %s\n", i, mq_strerror(rc));
            atomic_fetch_add(&failures, 1);
        }
        free(body);
        example_sleep_ms(a.interval_ms);
    }
    mqc_producer_free(p); /* waits for the outstanding callbacks */
    return atomic_load(&failures) ? 1 : 0;
}
