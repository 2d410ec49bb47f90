/* main.c — `mqbroker [-c broker.conf] [-n namesrvAddr] [-p listenPort]`: loads the
 * configuration, starts the broker, and stops it cleanly on SIGTERM or SIGINT. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/mq_err.h"
#include "common/mq_log.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mqbroker [-c broker.conf] [-n namesrvAddr] [-p listenPort]\n"
                 "       mqbroker -m      print every configuration key with its default\n");
}

int main(int argc, char **argv)
{
    /* Request frames of up to 4 MiB arrive all the time: keep such blocks in the heap instead of
     * mapping and unmapping (and faulting in) fresh memory for every one. */
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    struct brk_conf conf;
    char err[512];
    const struct mq_conf_key *keys;
    size_t nkeys;
    brk_conf_table(&keys, &nkeys);
    if (brk_conf_defaults(&conf))
        return 1;
    const char *conf_path = NULL, *namesrv = NULL, *port = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:n:p:mh")) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 'n':
            namesrv = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'm':
            mq_conf_dump(keys, nkeys, &conf, stdout, 1);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (conf_path && mq_conf_load(keys, nkeys, &conf, conf_path, err, sizeof(err))) {
        fprintf(stderr, "mqbroker: %s\n", err);
        return 2;
    }
    if ((namesrv && mq_conf_set(keys, nkeys, &conf, "namesrvAddr", namesrv, err, sizeof(err))) ||
        (port && mq_conf_set(keys, nkeys, &conf, "listenPort", port, err, sizeof(err)))) {
        fprintf(stderr, "mqbroker: %s\n", err);
        return 2;
    }
    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct broker *b = NULL;
    int rc = brk_start(&conf, &b);
    if (rc) {
        fprintf(stderr, "mqbroker: cannot start: %s\n", mq_strerror(rc));
        return 1;
    }
    fprintf(stderr, "mqbroker: ready on port %d\n", brk_port(b));
    int sig = 0;
    sigwait(&set, &sig);
    mq_info("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    brk_stop(b);
    return 0;
}
