/* fuzz_namesrv_body.c — libFuzzer target for REGISTER_BROKER bodies: the first input byte picks
 * the form (odd: 4.9's deflated RegisterBrokerBody, even: JSON with fastjson quirks), the rest
 * is the body. A body that parses is registered into a route table and the views are built.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/mq_log.h"
#include "namesrv/namesrv_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    mq_log_set_level(MQ_LOG_ERROR); /* registrations log at INFO */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct ns__reg_body b;
    int rc = ns__reg_body_parse(data + 1, size - 1, data[0] & 1, &b);
    if (rc == 0) {
        struct ns_routes *r;
        struct ns_register_result res;
        struct ns_register_req q = {.cluster = "C",
                                    .broker_name = "b",
                                    .broker_addr = "a:1",
                                    .dv = b.dv,
                                    .topics = b.topics,
                                    .ntopics = b.ntopics};
        if (ns_routes_new(&r) == 0) {
            ns_routes_register(r, &q, &res);
            for (size_t i = 0; i < b.ntopics && i < 4; i++)
                json_decref(ns_routes_topic_route(r, b.topics[i].name));
            json_decref(ns_routes_cluster_info(r));
            json_decref(ns_routes_topic_list(r));
            ns_routes_free(r);
        }
    }
    ns__reg_body_free(&b);
    return 0;
}
