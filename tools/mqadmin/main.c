/* main.c — `mqadmin <subcommand> [options]`: RocketMQ's mqadmin subcommand names and option
 * letters over libmqclient. One table maps each subcommand to its options, help and function;
 * this file parses the command line against it, opens the admin handle and runs the function.
 * Exit codes: 0 ok, 1 failure, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "tools/mqadmin/mqadmin.h"

#define NS_HELP "  -n ADDR     NameServers host:port[;host:port] (default $NAMESRV_ADDR)\n"

static const struct adm_cmd cmds[] = {
    {"updateTopic", "cbtrwp", "t", "-t topic (-c cluster | -b brokerAddr) [-r 8] [-w 8] [-p 6]",
     "create or update a topic on every master of a cluster, or on one broker",
     "  -t TOPIC    topic name\n"
     "  -c CLUSTER  every master of this cluster\n"
     "  -b ADDR     one broker, ip:port\n"
     "  -r N        read queues (default 8)\n"
     "  -w N        write queues (default 8)\n"
     "  -p PERM     permission: 2 write, 4 read, 6 both (default 6)\n",
     adm_update_topic},
    {"deleteTopic", "ct", "ct", "-t topic -c cluster",
     "delete a topic from every master of a cluster and from every NameServer",
     "  -t TOPIC    topic name\n"
     "  -c CLUSTER  cluster name\n",
     adm_delete_topic},
    {"topicList", "", "", "", "list every topic the NameServers know", "", adm_topic_list},
    {"topicRoute", "t", "t", "-t topic", "show a topic's route: brokers and queue counts",
     "  -t TOPIC    topic name\n", adm_topic_route},
    {"topicStatus", "t", "t", "-t topic",
     "per queue: min and max offsets and the newest message's store time",
     "  -t TOPIC    topic name\n", adm_topic_status},
    {"clusterList", "", "", "", "list the brokers of every cluster with their put/get counters", "",
     adm_cluster_list},
    {"brokerStatus", "b", "b", "-b brokerAddr", "show a broker's runtime statistics",
     "  -b ADDR     broker, ip:port\n", adm_broker_status},
    {"updateSubGroup", "cbg", "g", "-g group (-c cluster | -b brokerAddr)",
     "create or update a subscription (consumer) group",
     "  -g GROUP    consumer group\n"
     "  -c CLUSTER  every master of this cluster\n"
     "  -b ADDR     one broker, ip:port\n",
     adm_update_sub_group},
    {"deleteSubGroup", "cbgr", "g", "-g group (-c cluster | -b brokerAddr) [-r true]",
     "delete a subscription (consumer) group; -r true also drops its offsets",
     "  -g GROUP    consumer group\n"
     "  -c CLUSTER  every master of this cluster\n"
     "  -b ADDR     one broker, ip:port\n"
     "  -r BOOL     removeOffset: true also deletes the group's committed offsets\n",
     adm_delete_sub_group},
    {"consumerProgress", "gt", "g", "-g group [-t topic]",
     "per queue: broker offset, the group's committed offset, and the lag",
     "  -g GROUP    consumer group\n"
     "  -t TOPIC    only this topic (default: every topic the group has offsets in)\n",
     adm_consumer_progress},
    {"consumerConnection", "g", "g", "-g group",
     "the group's live clients (id, address, language, version), subscriptions and settings",
     "  -g GROUP    consumer group\n", adm_consumer_connection},
    {"sendMessage", "tpkcbid", "tp",
     "-t topic -p body [-k keys] [-c tags] [-b broker -i queueId] [-d delayLevel]",
     "send one message",
     "  -t TOPIC    topic\n"
     "  -p BODY     message body\n"
     "  -k KEYS     keys, space-separated\n"
     "  -c TAGS     tag\n"
     "  -b BROKER   broker name (with -i: send to that queue)\n"
     "  -i QID      queue id\n"
     "  -d LEVEL    delay level: delivered after the broker's messageDelayLevel[LEVEL-1]\n"
     "              (default levels 1s 5s 10s 30s 1m 2m ... 2h; 0: at once)\n",
     adm_send_message},
    {"consumeMessage", "tgcqobsw", "t",
     "-t topic [-g group] [-c count] [-q queueId [-b broker] -o offset] [-s tagExpr]",
     "print messages: from queues at an offset, or as a member of a group (acked, committed)",
     "  -t TOPIC    topic\n"
     "  -g GROUP    consume as this group (offsets committed); without -q\n"
     "  -c N        at most N messages (default 32)\n"
     "  -q QID      only this queue id (default: every readable queue)\n"
     "  -b BROKER   only this broker name\n"
     "  -o OFFSET   start offset in each queue (default: its min offset)\n"
     "  -s EXPR     tag expression, e.g. 'TagA || TagB' (default *)\n"
     "  -w MS       stop after MS without a new message (default 3000)\n",
     adm_consume_message},
    {"queryMsgByKey", "tk", "tk", "-t topic -k key",
     "find messages by key (KEYS or unique id) on every broker of the topic",
     "  -t TOPIC    topic\n"
     "  -k KEY      key\n",
     adm_query_msg_by_key},
    {"queryMsgById", "i", "i", "-i offsetMsgId",
     "show a message by its offset message id (store host + commitlog offset)",
     "  -i MSGID    32 hex characters, as SendResult.offsetMsgId / the msgId of a pulled message\n",
     adm_query_msg_by_id},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

const char *adm_opt(const struct adm *a, char letter)
{
    return a->opt[(unsigned char)letter & 127];
}

long long adm_int(const struct adm *a, char letter, long long def, int *ok)
{
    const char *v = adm_opt(a, letter);
    if (!v)
        return def;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end) {
        fprintf(stderr, "mqadmin %s: -%c needs an integer, not '%s'\n", a->name, letter, v);
        *ok = 0;
        return -1;
    }
    return x;
}

int adm_fail(const struct adm *a, int err, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mqadmin %s: ", a->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (err)
        fprintf(stderr, ": %s", mq_strerror(err));
    fputc('\n', stderr);
    return ADM_FAIL;
}

int adm_usage_error(const struct adm *a, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mqadmin %s: ", a->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'mqadmin %s --help'.\n", a->name);
    return ADM_USAGE;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mqadmin <subcommand> [options] [--json]\n"
                 "       mqadmin <subcommand> --help\n\nsubcommands:\n");
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(out, "  %-18s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(out, "\nEvery subcommand takes -n NAMESRV (default $NAMESRV_ADDR, else "
                 "127.0.0.1:9876) and --json\n(machine-readable output). Exit codes: 0 ok, "
                 "1 failure, 2 usage.\n");
}

static void cmd_usage(const struct adm_cmd *c, FILE *out)
{
    fprintf(out, "usage: mqadmin %s [-n namesrv] %s [--json]\n%s\n\noptions:\n%s%s", c->name,
            c->synopsis, c->summary, NS_HELP, c->options_help);
    fprintf(out, "  --json      print JSON instead of tables\n"
                 "  -h, --help  this help\n");
}

/* Parses argv (argv[0] is the subcommand) against c's options into a. Returns -1 to go on, or
 * the exit code. */
static int parse(const struct adm_cmd *c, int argc, char **argv, struct adm *a)
{
    char spec[64] = "+n:h";
    size_t k = strlen(spec);
    for (const char *p = c->opts; *p && k + 3 < sizeof(spec); p++) {
        spec[k++] = *p;
        spec[k++] = ':';
    }
    spec[k] = '\0';
    static const struct option longs[] = {
        {"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, spec, longs, NULL)) != -1) {
        if (ch == 'h') {
            cmd_usage(c, stdout);
            return ADM_OK;
        }
        if (ch == 'J') {
            a->json = 1;
        } else if (ch == '?' || ch == ':') {
            if (optopt && strchr(c->opts, optopt))
                return adm_usage_error(a, "option -%c needs a value", optopt);
            return adm_usage_error(a, "unknown option '%s'", argv[optind - 1]);
        } else {
            a->opt[ch & 127] = optarg;
        }
    }
    if (optind < argc)
        return adm_usage_error(a, "unexpected argument '%s'", argv[optind]);
    for (const char *p = c->required; *p; p++)
        if (!adm_opt(a, *p))
            return adm_usage_error(a, "option -%c is required", *p);
    a->namesrv = adm_opt(a, 'n');
    if (!a->namesrv || !*a->namesrv)
        a->namesrv = getenv("NAMESRV_ADDR");
    if (!a->namesrv || !*a->namesrv)
        a->namesrv = "127.0.0.1:9876";
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return ADM_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return ADM_OK;
    }
    const struct adm_cmd *c = NULL;
    for (size_t i = 0; i < NCMDS && !c; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            c = &cmds[i];
    if (!c) {
        fprintf(stderr, "mqadmin: unknown subcommand '%s'\n\n", argv[1]);
        usage(stderr);
        return ADM_USAGE;
    }
    struct adm a;
    memset(&a, 0, sizeof(a));
    a.name = c->name;
    int rc = parse(c, argc - 1, argv + 1, &a);
    if (rc >= 0)
        return rc;
    struct mqc_config cfg = {.namesrv = a.namesrv, .group = "TOOLS_CONSUMER"};
    int err = mqc_admin_new(&cfg, &a.admin);
    if (err)
        return adm_fail(&a, err, "cannot use NameServers '%s'", a.namesrv);
    rc = c->fn(&a);
    mqc_admin_free(a.admin);
    return rc;
}
