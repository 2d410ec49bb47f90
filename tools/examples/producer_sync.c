/* producer_sync.c — the simplest producer: mqc_send waits for the broker's answer (with
 * retries on another broker when one fails). Prints one line per message:
 *   OK <i> <broker> <queueId> <queueOffset> <msgId> <offsetMsgId>   or   FAIL <i> <error>
 * and exits 0 only when every send succeeded.
 *   example_producer_sync -n 127.0.0.1:9876 -t TopicTest -c 10 [-T tag] [-s bytes] [-z zlib] */
#include "common/mq_err.h"
#include "tools/examples/example.h"

int main(int argc, char **argv)
{
    struct example_args a;
    example_args(argc, argv, &a);
    struct mqc_config cfg = {.namesrv = a.namesrv,
                             .group = a.group ? a.group : "example_producer",
                             .compress_type = a.compress_type,
                             .compress_over = a.compress_over,
                             .send_timeout_ms = 1000,
                             .poll_namesrv_ms = a.rebalance_ms}; /* -r: route refresh period */
    struct mqc_producer *p = NULL;
    int rc = mqc_producer_new(&cfg, &p);
    if (rc) {
        fprintf(stderr, "producer: %s\n", mq_strerror(rc));
        return 1;
    }
    long failed = 0;
    for (long i = 0; i < a.count; i++) {
        size_t len = 0;
        char *body = example_body("sync", i, a.size, &len);
        char key[32];
        snprintf(key, sizeof(key), "key-%ld", i);
        struct mqc_message m = {
            .topic = a.topic, .tags = a.tag, .keys = key, .body = body, .body_len = len};
        struct mqc_send_result res;
        rc = mqc_send(p, &m, &res);
        if (rc == 0)
            printf("OK %ld %s %d %lld %s %s\n", i, res.broker, res.queue_id,
                   (long long)res.queue_offset, res.msg_id, res.offset_msg_id);
        else
            printf("FAIL %ld %s\n", i, mq_strerror(rc));
        failed += rc != 0;
        free(body);
        example_sleep_ms(a.interval_ms);
    }
    mqc_producer_free(p);
    return failed ? 1 : 0;
}
