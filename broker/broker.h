/* broker.h — mqbroker as a library: configuration, start, stop. main.c is only argument
 * parsing around these calls, so tests and tools can run a broker in-process too.
 */
#ifndef MQ_BROKER_H
#define MQ_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/mq_conf.h"
#include "store/store.h"

/* Broker settings, RocketMQ's broker.conf key names (brk_conf_table lists them). */
struct brk_conf {
    char cluster_name[128];    /* brokerClusterName */
    char broker_name[128];     /* brokerName */
    int64_t broker_id;         /* brokerId: 0 = master */
    char listen_addr[64];      /* listenAddr (ours): interface to bind, 127.0.0.1 */
    int listen_port;           /* listenPort */
    char broker_ip[64];        /* brokerIP1: the address advertised to NameServers */
    char namesrv_addr[1024];   /* namesrvAddr: host:port;host:port */
    int auto_create_topic;     /* autoCreateTopicEnable */
    int auto_create_group;     /* autoCreateSubscriptionGroup */
    int default_topic_queues;  /* defaultTopicQueueNums */
    int long_polling;          /* longPollingEnable */
    int short_polling_ms;      /* shortPollingTimeMills */
    int register_period_ms;    /* registerNameServerPeriod */
    int broker_permission;     /* brokerPermission */
    int client_expiry_ms;      /* channelExpiredTimeout (ours: 120 s) */
    int io_threads;            /* serverSelectorThreads */
    int worker_threads;        /* serverWorkerThreads */
    int max_reconsume_times;   /* maxReconsumeTimes: then the DLQ */
    int rebalance_lock_ms;     /* rebalanceLockMaxLiveTime: an orderly queue lock's life */
    int property_filter;       /* enablePropertyFilter: SQL92 subscriptions are accepted */
    int tx_timeout_ms;         /* transactionTimeOut: a half message is checked once this old */
    int tx_check_max;          /* transactionCheckMax: checks before an open one is dropped */
    int tx_check_interval_ms;  /* transactionCheckInterval */
    struct store_config store; /* the store's keys (storePathRootDir, flushDiskType, ...) */
};

/* Every key a broker.conf may set: the broker's own and the store's (store_conf_keys, at their
 * place inside struct brk_conf). Static storage, built on first use; thread-safe. */
void brk_conf_table(const struct mq_conf_key **keys, size_t *n);
/* Fills conf with every default. Returns 0 or -ENOMEM. */
int brk_conf_defaults(struct brk_conf *conf);

struct broker;

/* Opens the store and metadata, binds the port, starts serving and registering.
 * conf is copied. Returns 0 or -errno (logged). */
int brk_start(const struct brk_conf *conf, struct broker **out);
/* The bound port (useful with listenPort=0 in tests). */
int brk_port(const struct broker *b);
/* Unregisters from the NameServers, stops serving, drains, flushes, persists offsets, writes
 * the checkpoint and removes the abort file. NULL is a no-op. */
void brk_stop(struct broker *b);

#endif
