/* consumer_pull.c — a consumer in a group (clustering): it subscribes to a topic with a tag
 * expression, the group's members share the topic's queues (rebalanced as members come and
 * go), and each message is taken, processed (printed) and acked; acked offsets are committed
 * to the broker. One line per message:
 *   MSG <broker> <queueId> <queueOffset> <tags> <body>
 * with -v also "OWNED <broker>:<queueId> ..." whenever the owned queues change. With -L level,
 * each message's first delivery is not processed but retried later at that delay level
 * (RECONSUME_LATER: "RETRY <topic> <queueOffset> <body>"); its redelivery, from
 * %RETRY%<group>, prints "MSG ... <body> reconsumed=<n> from=<RETRY_TOPIC>". Stops after
 * -c messages (0: never), after -w ms without one, or on SIGTERM/SIGINT; exits 0. With -q the
 * subscription is an SQL92 expression over the messages' properties, filtered by the broker
 * (which needs enablePropertyFilter=true).
 *   example_consumer_pull -n 127.0.0.1:9876 -t TopicTest -g example_group -e 'TagA || TagB'
 *   example_consumer_pull -t TopicTest -g sql_group -q "a IS NOT NULL AND a BETWEEN 1 AND 3" */
#include <errno.h>
#include <signal.h>

#include "common/mq_err.h"
#include "tools/examples/example.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = 1;
}

/* Prints the owned queues when they differ from the last print. */
static void print_owned(struct mqc_consumer *c, char *last, size_t cap)
{
    struct mqc_mq *qs;
    size_t n;
    if (mqc_consumer_owned(c, &qs, &n))
        return;
    char line[4096] = "OWNED";
    size_t len = strlen(line);
    for (size_t i = 0; i < n && len < sizeof(line) - 1; i++)
        len += (size_t)snprintf(line + len, sizeof(line) - len, " %s:%d", qs[i].broker,
                                qs[i].queue_id);
    free(qs);
    if (strcmp(line, last) != 0) {
        printf("%s\n", line);
        snprintf(last, cap, "%s", line);
    }
}

int main(int argc, char **argv)
{
    struct example_args a;
    example_args(argc, argv, &a);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct mqc_config cfg = {.namesrv = a.namesrv, .group = a.group ? a.group : "example_consumer"};
    struct mqc_consumer_opts opts = {.from = MQC_FROM_FIRST,
                                     .rebalance_ms = (int)a.rebalance_ms, /* 0: 20 s */
                                     .persist_ms = 200,
                                     .retry = a.retry_level >= 0};
    struct mqc_consumer *c = NULL;
    int rc = mqc_consumer_new(&cfg, &opts, &c);
    if (rc == 0 && (rc = a.sql ? mqc_consumer_subscribe_sql(c, a.topic, a.sql)
                               : mqc_consumer_subscribe(c, a.topic, a.expr)) == 0)
        rc = mqc_consumer_start(c);
    if (rc) {
        fprintf(stderr, "consumer: %s\n", mq_strerror(rc));
        mqc_consumer_free(c);
        return 1;
    }
    char owned[4096] = "";
    long got = 0, idle = 0;
    while (!stop && (a.count == 0 || got < a.count)) {
        if (a.verbose)
            print_owned(c, owned, sizeof(owned));
        struct mqc_msg *m;
        rc = mqc_consumer_take(c, 100, &m); /* short waits: notice signals and queue changes */
        if (rc == -EAGAIN) {
            idle += 100;
            if (a.idle_ms > 0 && idle >= a.idle_ms)
                break;
            continue;
        }
        if (rc)
            break;
        idle = 0;
        if (a.retry_level >= 0 && m->reconsume_times == 0) {
            printf("RETRY %s %lld %.*s\n", m->mq.topic, (long long)m->queue_offset,
                   (int)m->body_len, (const char *)m->body);
            if ((rc = mqc_consumer_retry_later(c, m, (int)a.retry_level)) != 0)
                fprintf(stderr, "retry later: %s\n", mq_strerror(rc));
            continue;
        }
        const char *tags = "-", *from = "";
        size_t tlen = 1, flen = 0;
        (void)mqc_msg_prop(m, "TAGS", &tags, &tlen);
        (void)mqc_msg_prop(m, "RETRY_TOPIC", &from, &flen);
        printf("MSG %s %d %lld %.*s %.*s", m->mq.broker, m->mq.queue_id, (long long)m->queue_offset,
               (int)tlen, tags, (int)m->body_len, (const char *)m->body);
        if (m->reconsume_times)
            printf(" reconsumed=%d from=%.*s", (int)m->reconsume_times, (int)flen, from);
        printf("\n");
        mqc_consumer_ack(c, m);
        got++;
    }
    mqc_consumer_free(c); /* commits the acked offsets, leaves the group */
    return 0;
}
