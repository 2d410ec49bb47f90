/* producer_batch.c — mqc_send_batch sends up to -b messages of one topic in one request; they
 * land in one queue, in order, at consecutive offsets. One line per batch:
 *   OK <first i> <n> <broker> <queueId> <first queueOffset>   or   FAIL <first i> <n> <error>
 *   example_producer_batch -n 127.0.0.1:9876 -t TopicTest -c 100 -b 10 */
#include "common/mq_err.h"
#include "tools/examples/example.h"

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
    struct mqc_message *msgs = calloc((size_t)a.batch, sizeof(*msgs));
    char **bodies = calloc((size_t)a.batch, sizeof(*bodies));
    long failed = 0;
    for (long first = 0; msgs && bodies && first < a.count; first += a.batch) {
        long n = a.count - first < a.batch ? a.count - first : a.batch;
        for (long k = 0; k < n; k++) {
            size_t len = 0;
            bodies[k] = example_body("batch", first + k, a.size, &len);
            msgs[k] = (struct mqc_message){
                .topic = a.topic, .tags = a.tag, .body = bodies[k], .body_len = len};
        }
        struct mqc_send_result res;
        rc = mqc_send_batch(p, msgs, (size_t)n, &res);
        if (rc == 0)
            printf("OK %ld %ld %s %d %lld\n", first, n, res.broker, res.queue_id,
                   (long long)res.queue_offset);
        else
            printf("FAIL %ld %ld %s\n", first, n, mq_strerror(rc));
        failed += rc != 0;
        for (long k = 0; k < n; k++)
            free(bodies[k]);
    }
    free(bodies);
    free(msgs);
    mqc_producer_free(p);
    return failed ? 1 : 0;
}
