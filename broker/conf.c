/* conf.c — the broker's configuration keys: one table (RocketMQ's broker.conf names,
 * defaults and bounds). */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

#define F(field) offsetof(struct brk_conf, field)
#define S(field) sizeof(((struct brk_conf *)0)->field)

static const struct mq_conf_key brk_conf_keys[] = {
    {"brokerClusterName", MQ_CONF_STR, F(cluster_name), S(cluster_name), "DefaultCluster", 0, 0,
     "cluster this broker belongs to"},
    {"brokerName", MQ_CONF_STR, F(broker_name), S(broker_name), "broker-a", 0, 0,
     "broker name; master and slaves share it"},
    {"brokerId", MQ_CONF_INT64, F(broker_id), 0, "0", 0, 1024, "0 = master"},
    {"listenAddr", MQ_CONF_STR, F(listen_addr), S(listen_addr), "127.0.0.1", 0, 0,
     "address to bind (0.0.0.0 for every interface)"},
    {"listenPort", MQ_CONF_INT, F(listen_port), 0, "10911", 0, 65535, "port for clients"},
    {"brokerIP1", MQ_CONF_STR, F(broker_ip), S(broker_ip), "127.0.0.1", 0, 0,
     "address advertised to NameServers and clients"},
    {"namesrvAddr", MQ_CONF_STR, F(namesrv_addr), S(namesrv_addr), "", 0, 0,
     "NameServers, host:port;host:port"},
    {"autoCreateTopicEnable", MQ_CONF_BOOL, F(auto_create_topic), 0, "true", 0, 1,
     "create topics on first send (through TBW102)"},
    {"autoCreateSubscriptionGroup", MQ_CONF_BOOL, F(auto_create_group), 0, "true", 0, 1,
     "create consumer groups on first use"},
    {"defaultTopicQueueNums", MQ_CONF_INT, F(default_topic_queues), 0, "8", 1, 1024,
     "queues of TBW102, the template of auto-created topics"},
    {"longPollingEnable", MQ_CONF_BOOL, F(long_polling), 0, "true", 0, 1,
     "hold pulls until a message arrives"},
    {"shortPollingTimeMills", MQ_CONF_INT, F(short_polling_ms), 0, "1000", 0, 60000,
     "hold time of a pull when long polling is off"},
    {"registerNameServerPeriod", MQ_CONF_INT, F(register_period_ms), 0, "30000", 100, 60000,
     "period of registration with the NameServers"},
    {"brokerPermission", MQ_CONF_INT, F(broker_permission), 0, "6", 0, 7, "READ 4 | WRITE 2"},
    {"channelExpiredTimeout", MQ_CONF_INT, F(client_expiry_ms), 0, "120000", 1000, 3600000,
     "drop a client silent for this long"},
    {"serverSelectorThreads", MQ_CONF_INT, F(io_threads), 0, "1", 1, 64, "network I/O threads"},
    {"serverWorkerThreads", MQ_CONF_INT, F(worker_threads), 0, "2", 0, 256,
     "threads for slow requests (queries)"},
    {"maxReconsumeTimes", MQ_CONF_INT, F(max_reconsume_times), 0, "16", 0, 1000,
     "redeliveries before a message goes to %DLQ%<group>"},
    {"rebalanceLockMaxLiveTime", MQ_CONF_INT, F(rebalance_lock_ms), 0, "60000", 1000, 3600000,
     "ms an orderly consumer's queue lock lasts without renewal (RocketMQ's "
     "rocketmq.broker.rebalance.lockMaxLiveTime)"},
    {"enablePropertyFilter", MQ_CONF_BOOL, F(property_filter), 0, "false", 0, 1,
     "accept SQL92 subscriptions: filter pulled messages by their properties"},
    {"transactionTimeOut", MQ_CONF_INT, F(tx_timeout_ms), 0, "6000", 0, 86400000,
     "ms after which an open transaction's producer is asked for its outcome"},
    {"transactionCheckMax", MQ_CONF_INT, F(tx_check_max), 0, "15", 1, 1000,
     "checks of an open transaction before its half message is dropped"},
    {"transactionCheckInterval", MQ_CONF_INT, F(tx_check_interval_ms), 0, "60000", 100, 86400000,
     "ms between two rounds of transaction checks"},
};

#define NBROKER_KEYS (sizeof(brk_conf_keys) / sizeof(brk_conf_keys[0]))

static struct mq_conf_key *all_keys;
static size_t all_n;
static pthread_once_t all_once = PTHREAD_ONCE_INIT;

/* The store's keys, moved to where struct store_config sits inside struct brk_conf. */
static void build_table(void)
{
    all_keys = calloc(NBROKER_KEYS + store_conf_nkeys, sizeof(*all_keys));
    if (!all_keys)
        return;
    memcpy(all_keys, brk_conf_keys, sizeof(brk_conf_keys));
    for (size_t i = 0; i < store_conf_nkeys; i++) {
        all_keys[NBROKER_KEYS + i] = store_conf_keys[i];
        all_keys[NBROKER_KEYS + i].offset += offsetof(struct brk_conf, store);
    }
    all_n = NBROKER_KEYS + store_conf_nkeys;
}

void brk_conf_table(const struct mq_conf_key **keys, size_t *n)
{
    pthread_once(&all_once, build_table);
    *keys = all_keys;
    *n = all_keys ? all_n : 0;
}

int brk_conf_defaults(struct brk_conf *conf)
{
    const struct mq_conf_key *keys;
    size_t n;
    memset(conf, 0, sizeof(*conf));
    brk_conf_table(&keys, &n);
    if (n == 0)
        return -ENOMEM;
    store_config_defaults(&conf->store);
    return mq_conf_defaults(keys, n, conf);
}
