/* producer_oneway.c — mqc_send_oneway writes the request and does not wait: no result, no
 * retry; fastest, for data that may be lost (logs, metrics). Prints "SENT <i>" per message
 * handed to the network, "FAIL <i> <error>" when that failed.
 *   example_producer_oneway -n 127.0.0.1:9876 -t TopicTest -c 10 */
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
    long failed = 0;
    for (long i = 0; i < a.count; i++) {
        size_t len = 0;
        char *body = example_body("oneway", i, a.size, &len);
        struct mqc_message m = {.topic = a.topic, .tags = a.tag, .body = body, .body_len = len};
        rc = mqc_send_oneway(p, &m);
        if (rc == 0)
            printf("SENT %ld\n", i);
        else
            printf("FAIL %ld %s\n", i, mq_strerror(rc));
        failed += rc != 0;
        free(body);
    }
    mqc_producer_free(p);
    return failed ? 1 : 0;
}
