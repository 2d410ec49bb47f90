/* ns_main.c — mqnamesrv: `mqnamesrv [-c namesrv.conf] [-p listenPort]`. Loads the config
 * (RocketMQ key names, common/mq_conf), serves the NameServer requests on the remoting server,
 * scans for silent brokers on a timer, and exits 0 on SIGTERM or SIGINT. The main thread runs
 * its own event_base for the signals and the scan timer; the server runs its own I/O threads.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "namesrv/namesrv.h"

struct app {
    struct ns_config conf;
    struct ns_ctx ctx;
    struct event_base *base;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mqnamesrv [-c namesrv.conf] [-p listenPort] [-m]\n"
               "  -c FILE  load configuration (key=value lines)\n"
               "  -p PORT  listen port (default 9876)\n"
               "  -m       print every configuration key with its value and exit\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct app *a = arg;
    mq_info("signal %d received, shutting down", (int)sig);
    event_base_loopbreak(a->base);
}

static void on_scan(evutil_socket_t fd, short what, void *arg)
{
    struct app *a = arg;
    struct rpc_conn **conns;
    size_t n;
    int removed = ns_routes_scan(a->ctx.routes, mq_mono_us() / 1000,
                                 a->conf.brokerChannelExpiredTime, &conns, &n);
    for (size_t i = 0; i < n; i++) {
        rpc_conn_close(conns[i]);
        rpc_conn_unref(conns[i]);
    }
    free(conns);
    if (removed)
        mq_info("liveness scan removed %d broker(s), %zu live", removed,
                ns_routes_live_count(a->ctx.routes));
}

int main(int argc, char **argv)
{
    struct app a;
    char err[512];
    const char *conf_path = NULL, *port = NULL;
    int opt, dump = 0, rc = 1;
    struct rpc_server *srv = NULL;
    struct event *ev_term = NULL, *ev_int = NULL, *ev_scan = NULL;
    memset(&a, 0, sizeof(a));
    while ((opt = getopt(argc, argv, "c:p:mh")) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'm':
            dump = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (mq_conf_defaults(ns_conf_keys, ns_conf_nkeys, &a.conf) != 0)
        return 1;
    if (conf_path &&
        mq_conf_load(ns_conf_keys, ns_conf_nkeys, &a.conf, conf_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "mqnamesrv: %s\n", err);
        return 2;
    }
    if (port && mq_conf_set(ns_conf_keys, ns_conf_nkeys, &a.conf, "listenPort", port, err,
                            sizeof(err)) != 0) {
        fprintf(stderr, "mqnamesrv: -p: %s\n", err);
        return 2;
    }
    if (dump) {
        mq_conf_dump(ns_conf_keys, ns_conf_nkeys, &a.conf, stdout, 1);
        return 0;
    }
    enum mq_log_level lvl;
    if (mq_log_parse_level(a.conf.logLevel, &lvl) != 0) {
        fprintf(stderr, "mqnamesrv: logLevel: unknown level '%s'\n", a.conf.logLevel);
        return 2;
    }
    if (!getenv("MQ_LOG_LEVEL"))
        mq_log_set_level(lvl);
    signal(SIGPIPE, SIG_IGN);

    a.ctx.conf = &a.conf;
    if (ns_routes_new(&a.ctx.routes) != 0 || ns_kv_new(a.conf.kvConfigPath, &a.ctx.kv) != 0) {
        mq_error("cannot set up the route table or the KV config");
        goto out;
    }
    struct rpc_server_opts so = {
        .addr = a.conf.listenAddr,
        .port = a.conf.listenPort,
        .io_threads = a.conf.serverSelectorThreads,
        .worker_threads = a.conf.serverWorkerThreads,
        .max_frame = (size_t)a.conf.maxFrameSize,
        .idle_timeout_ms = a.conf.serverChannelMaxIdleTimeSeconds * 1000,
    };
    if (rpc_server_new(&so, &srv) != 0 || ns_handlers_register(srv, &a.ctx) != 0)
        goto out;
    int err_start = rpc_server_start(srv);
    if (err_start) {
        mq_error("cannot start on %s:%d: %s", a.conf.listenAddr, a.conf.listenPort,
                 mq_strerror(err_start));
        goto out;
    }
    a.base = event_base_new();
    if (!a.base)
        goto out;
    ev_term = evsignal_new(a.base, SIGTERM, on_signal, &a);
    ev_int = evsignal_new(a.base, SIGINT, on_signal, &a);
    ev_scan = event_new(a.base, -1, EV_PERSIST, on_scan, &a);
    struct timeval iv = {a.conf.scanNotActiveBrokerInterval / 1000,
                         (a.conf.scanNotActiveBrokerInterval % 1000) * 1000};
    if (!ev_term || !ev_int || !ev_scan || evsignal_add(ev_term, NULL) ||
        evsignal_add(ev_int, NULL) || event_add(ev_scan, &iv))
        goto out;
    mq_info("The Name Server boot success. listening on %s:%d", a.conf.listenAddr,
            rpc_server_port(srv));
    fprintf(stderr, "mqnamesrv: ready on %s:%d\n", a.conf.listenAddr, rpc_server_port(srv));
    fflush(stderr);
    event_base_dispatch(a.base);
    rc = 0;
out:
    if (ev_term)
        event_free(ev_term);
    if (ev_int)
        event_free(ev_int);
    if (ev_scan)
        event_free(ev_scan);
    rpc_server_free(srv); /* closes every connection: their brokers leave the tables */
    if (a.base)
        event_base_free(a.base);
    ns_routes_free(a.ctx.routes);
    ns_kv_free(a.ctx.kv);
    if (rc == 0)
        mq_info("mqnamesrv stopped");
    return rc;
}
