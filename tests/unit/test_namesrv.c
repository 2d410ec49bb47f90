/* test_namesrv.c — unit tests for namesrv/: the route table (register, data-version changes,
 * slaves, unregister, expiry, cluster info, topic list and deletion) and the KV config
 * (including persistence).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "namesrv/namesrv.h"
#include "tests/unit/mq_test.h"

static const struct ns_topic_conf topics_ab[] = {
    {"TopicA", 4, 4, 6, 0},
    {"TopicB", 8, 2, 4, 1},
};

static struct ns_register_req req_for(const char *name, const char *addr, int64_t id,
                                      int64_t counter, int64_t now)
{
    struct ns_register_req q = {
        .cluster = "DefaultCluster",
        .broker_name = name,
        .broker_addr = addr,
        .ha_server_addr = "127.0.0.1:10912",
        .broker_id = id,
        .dv = {1700000000000, counter},
        .topics = topics_ab,
        .ntopics = 2,
        .now_ms = now,
    };
    return q;
}

static int route_exists(struct ns_routes *r, const char *topic)
{
    json_t *v = ns_routes_topic_route(r, topic);
    json_decref(v);
    return v != NULL;
}

TEST(test_register_and_route)
{
    struct ns_routes *r;
    struct ns_register_result res;
    ASSERT_OK(ns_routes_new(&r));
    ASSERT(!route_exists(r, "TopicA"));
    struct ns_register_req q = req_for("broker-a", "127.0.0.1:10911", 0, 1, 1000);
    ASSERT_OK(ns_routes_register(r, &q, &res));
    ASSERT(res.first);
    ASSERT(res.routes_updated);
    json_t *route = ns_routes_topic_route(r, "TopicB");
    ASSERT(route != NULL);
    json_t *qd = json_array_get(json_object_get(route, "queueDatas"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(qd, "brokerName")), "broker-a");
    ASSERT_EQ(json_integer_value(json_object_get(qd, "readQueueNums")), 8);
    ASSERT_EQ(json_integer_value(json_object_get(qd, "writeQueueNums")), 2);
    ASSERT_EQ(json_integer_value(json_object_get(qd, "perm")), 4);
    ASSERT_EQ(json_integer_value(json_object_get(qd, "topicSysFlag")), 1);
    json_t *bd = json_array_get(json_object_get(route, "brokerDatas"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(bd, "cluster")), "DefaultCluster");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(bd, "brokerAddrs"), "0")),
                  "127.0.0.1:10911");
    ASSERT(json_is_object(json_object_get(route, "filterServerTable")));
    json_decref(route);
    /* invalid requests */
    q.broker_addr = "";
    ASSERT_EQ(ns_routes_register(r, &q, &res), -EINVAL);
    ns_routes_free(r);
}

TEST(test_data_version_change)
{
    struct ns_routes *r;
    struct ns_register_result res;
    ASSERT_OK(ns_routes_new(&r));
    struct ns_register_req q = req_for("broker-a", "127.0.0.1:10911", 0, 1, 1000);
    q.ntopics = 1;
    ASSERT_OK(ns_routes_register(r, &q, &res));
    /* same version, more topics: not rebuilt (RouteInfoManager only rebuilds on change) */
    q.ntopics = 2;
    ASSERT_OK(ns_routes_register(r, &q, &res));
    ASSERT(!res.routes_updated);
    ASSERT(!res.first);
    ASSERT(!route_exists(r, "TopicB"));
    q.dv.counter = 2;
    ASSERT_OK(ns_routes_register(r, &q, &res));
    ASSERT(res.routes_updated);
    ASSERT(route_exists(r, "TopicB"));
    /* QUERY_DATA_VERSION */
    int changed, have;
    struct ns_data_version cur, dv = {1700000000000, 2};
    ns_routes_query_version(r, "127.0.0.1:10911", &dv, 2000, &changed, &have, &cur);
    ASSERT(!changed);
    ASSERT(have);
    ASSERT_EQ(cur.counter, 2);
    dv.counter = 3;
    ns_routes_query_version(r, "127.0.0.1:10911", &dv, 2000, &changed, &have, &cur);
    ASSERT(changed);
    ns_routes_query_version(r, "127.0.0.1:1", &dv, 2000, &changed, &have, &cur);
    ASSERT(changed);
    ASSERT(!have);
    ns_routes_free(r);
}

TEST(test_slave_and_unregister)
{
    struct ns_routes *r;
    struct ns_register_result res;
    ASSERT_OK(ns_routes_new(&r));
    struct ns_register_req m = req_for("broker-a", "127.0.0.1:10911", 0, 1, 1000);
    struct ns_register_req s = req_for("broker-a", "127.0.0.1:10921", 1, 1, 1000);
    ASSERT_OK(ns_routes_register(r, &m, &res));
    ASSERT_OK(ns_routes_register(r, &s, &res));
    ASSERT(!res.routes_updated); /* slaves never write queue data */
    ASSERT_STR_EQ(res.master_addr, "127.0.0.1:10911");
    ASSERT_STR_EQ(res.ha_server_addr, "127.0.0.1:10912");
    ASSERT_EQ(ns_routes_live_count(r), 2);
    /* the master leaves: the broker name stays with its slave */
    ns_routes_unregister(r, "DefaultCluster", "127.0.0.1:10911", "broker-a", 0);
    ASSERT(route_exists(r, "TopicA"));
    ASSERT_EQ(ns_routes_live_count(r), 1);
    /* the slave leaves: everything goes */
    ns_routes_unregister(r, "DefaultCluster", "127.0.0.1:10921", "broker-a", 1);
    ASSERT(!route_exists(r, "TopicA"));
    json_t *info = ns_routes_cluster_info(r);
    ASSERT_EQ(json_object_size(json_object_get(info, "brokerAddrTable")), 0);
    ASSERT_EQ(json_object_size(json_object_get(info, "clusterAddrTable")), 0);
    json_decref(info);
    ASSERT_EQ(ns_routes_live_count(r), 0);
    ns_routes_free(r);
}

TEST(test_expiry)
{
    struct ns_routes *r;
    struct ns_register_result res;
    struct rpc_conn **conns;
    size_t n;
    ASSERT_OK(ns_routes_new(&r));
    struct ns_register_req a = req_for("broker-a", "127.0.0.1:10911", 0, 1, 1000);
    struct ns_register_req b = req_for("broker-b", "127.0.0.1:20911", 0, 1, 5000);
    b.ntopics = 1;
    ASSERT_OK(ns_routes_register(r, &a, &res));
    ASSERT_OK(ns_routes_register(r, &b, &res));
    ASSERT_EQ(ns_routes_scan(r, 100000, 120000, &conns, &n), 0);
    ASSERT_EQ(ns_routes_scan(r, 121001, 120000, &conns, &n), 1);
    ASSERT_EQ(n, 0);
    free(conns);
    /* TopicA still served by broker-b, TopicB (only on broker-a) gone */
    ASSERT(route_exists(r, "TopicA"));
    ASSERT(!route_exists(r, "TopicB"));
    json_t *route = ns_routes_topic_route(r, "TopicA");
    ASSERT_EQ(json_array_size(json_object_get(route, "queueDatas")), 1);
    json_decref(route);
    ASSERT_EQ(ns_routes_scan(r, 200000, 120000, &conns, &n), 1);
    free(conns);
    ASSERT(!route_exists(r, "TopicA"));
    ns_routes_free(r);
}

TEST(test_cluster_info_topics_delete)
{
    struct ns_routes *r;
    struct ns_register_result res;
    ASSERT_OK(ns_routes_new(&r));
    struct ns_register_req a = req_for("broker-a", "127.0.0.1:10911", 0, 1, 1000);
    struct ns_register_req b = req_for("broker-b", "127.0.0.1:20911", 0, 1, 1000);
    b.cluster = "Other";
    ASSERT_OK(ns_routes_register(r, &a, &res));
    ASSERT_OK(ns_routes_register(r, &b, &res));
    json_t *info = ns_routes_cluster_info(r);
    json_t *clusters = json_object_get(info, "clusterAddrTable");
    ASSERT_EQ(json_object_size(clusters), 2);
    ASSERT_STR_EQ(json_string_value(json_array_get(json_object_get(clusters, "Other"), 0)),
                  "broker-b");
    ASSERT_EQ(json_object_size(json_object_get(info, "brokerAddrTable")), 2);
    json_decref(info);
    json_t *list = ns_routes_topic_list(r);
    ASSERT_EQ(json_array_size(json_object_get(list, "topicList")), 2);
    json_decref(list);
    list = ns_routes_topics_by_cluster(r, "Other");
    ASSERT_EQ(json_array_size(json_object_get(list, "topicList")), 2);
    json_decref(list);
    list = ns_routes_topics_by_cluster(r, "Nope");
    ASSERT_EQ(json_array_size(json_object_get(list, "topicList")), 0);
    json_decref(list);
    ASSERT_OK(ns_routes_delete_topic(r, "TopicA"));
    ASSERT_EQ(ns_routes_delete_topic(r, "TopicA"), -ENOENT);
    ASSERT(!route_exists(r, "TopicA"));
    json_t *route = ns_routes_topic_route(r, "TopicB");
    ASSERT_EQ(json_array_size(json_object_get(route, "brokerDatas")), 2);
    json_decref(route);
    ns_routes_free(r);
}

TEST(test_kv)
{
    char path[] = "test_namesrv_kvXXXXXX"; /* in the working directory */
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    close(fd);
    unlink(path);
    struct ns_kv *kv;
    ASSERT_OK(ns_kv_new(path, &kv));
    ASSERT(ns_kv_get(kv, "NS", "k") == NULL);
    ASSERT(ns_kv_keys_by_value(kv, "NS", "v") == NULL);
    ASSERT(ns_kv_table(kv, "NS") == NULL);
    ASSERT_OK(ns_kv_put(kv, "NS", "k1", "v"));
    ASSERT_OK(ns_kv_put(kv, "NS", "k2", "v"));
    ASSERT_OK(ns_kv_put(kv, "NS", "k3", "w"));
    char *s = ns_kv_get(kv, "NS", "k3");
    ASSERT_STR_EQ(s, "w");
    free(s);
    s = ns_kv_keys_by_value(kv, "NS", "v");
    ASSERT_STR_EQ(s, "k1;k2");
    free(s);
    json_t *t = ns_kv_table(kv, "NS");
    ASSERT_EQ(json_object_size(json_object_get(t, "table")), 3);
    json_decref(t);
    ASSERT_OK(ns_kv_delete(kv, "NS", "k1"));
    ASSERT_EQ(ns_kv_delete(kv, "NS", "k1"), -ENOENT);
    ns_kv_free(kv);
    /* reloaded from the file */
    ASSERT_OK(ns_kv_new(path, &kv));
    s = ns_kv_get(kv, "NS", "k2");
    ASSERT_STR_EQ(s, "v");
    free(s);
    ASSERT(ns_kv_get(kv, "NS", "k1") == NULL);
    ns_kv_free(kv);
    /* a corrupt file is refused */
    FILE *f = fopen(path, "w");
    fputs("{not json", f);
    fclose(f);
    ASSERT_EQ(ns_kv_new(path, &kv), -EINVAL);
    unlink(path);
}

TEST_MAIN(test_register_and_route, test_data_version_change, test_slave_and_unregister, test_expiry,
          test_cluster_info_topics_delete, test_kv)
