/* bench_namesrv.c — mqbench-namesrv: GET_ROUTEINFO_BY_TOPIC throughput from N concurrent
 * connections and the latency of one call, next to the loopback TCP round trip measured in
 * the same run (a 64-byte ping-pong over a plain socket pair on 127.0.0.1).
 *
 * Usage: mqbench-namesrv [-n host:port] [-c conns] [-d seconds] [-l calls] [-t topics]
 *   Without -n an in-process NameServer (the mq_namesrv library on a remoting server with
 *   one I/O thread) is started on a free port. A fake broker registers `topics` topics.
 * The last line is `RESULT key=value ...`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/mq_bytes.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "namesrv/namesrv.h"

static struct {
    char host[64];
    int port;
    int conns, seconds, calls, topics;
} opt = {"127.0.0.1", 0, 8, 3, 20000, 16};

static int connect_to(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int full_io(int fd, void *p, size_t n, int wr)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = wr ? send(fd, (char *)p + done, n - done, MSG_NOSIGNAL)
                       : recv(fd, (char *)p + done, n - done, 0);
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

/* One raw call: write the frame, read one whole response frame; returns its code or -1. */
static int raw_call(int fd, const struct mq_buf *req, uint8_t **buf, size_t *cap)
{
    uint8_t head[4];
    if (full_io(fd, req->data, req->len, 1) || full_io(fd, head, 4, 0))
        return -1;
    size_t len = mq_get_be32(head);
    if (len > *cap) {
        *cap = len;
        *buf = realloc(*buf, len);
    }
    if (full_io(fd, *buf, len, 0))
        return -1;
    struct rpc_cmd *c = NULL;
    uint8_t *frame = malloc(len + 4);
    memcpy(frame, head, 4);
    memcpy(frame + 4, *buf, len);
    int code = rpc_frame_decode(frame, len + 4, frame, &c) == 0 ? c->code : -1;
    rpc_cmd_free(c);
    return code;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct mq_buf route_req;
static atomic_int stop_flag;
static atomic_long total_calls, total_errors;

static void *load_thread(void *arg)
{
    int fd = connect_to(opt.host, opt.port);
    uint8_t *buf = NULL;
    size_t cap = 0;
    long n = 0, errs = 0;
    while (!atomic_load(&stop_flag)) {
        if (raw_call(fd, &route_req, &buf, &cap) != 0)
            errs++;
        n++;
    }
    atomic_fetch_add(&total_calls, n);
    atomic_fetch_add(&total_errors, errs);
    free(buf);
    close(fd);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(int64_t *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_i64);
    int i = (int)(p * (n - 1) + 0.5);
    return (double)v[i];
}

/* Loopback TCP round trip: an echo thread on a socket pair over 127.0.0.1. */
static void *echo_thread(void *arg)
{
    int fd = *(int *)arg;
    char b[64];
    while (full_io(fd, b, sizeof(b), 0) == 0 && full_io(fd, b, sizeof(b), 1) == 0)
        ;
    close(fd);
    return NULL;
}

static void tcp_rtt(int n, double *p50, double *p99)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1) ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
        perror("tcp_rtt");
        exit(1);
    }
    int cfd = connect_to("127.0.0.1", ntohs(sa.sin_port));
    int sfd = accept(lfd, NULL, NULL);
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pthread_t t;
    pthread_create(&t, NULL, echo_thread, &sfd);
    int64_t *lat = malloc(sizeof(*lat) * (size_t)n);
    char b[64] = {0};
    for (int i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        full_io(cfd, b, sizeof(b), 1);
        full_io(cfd, b, sizeof(b), 0);
        lat[i] = now_ns() - t0;
    }
    close(cfd);
    pthread_join(t, NULL);
    close(lfd);
    *p50 = pct(lat, n, 0.50) / 1000.0;
    *p99 = pct(lat, n, 0.99) / 1000.0;
    free(lat);
}

/* Latency of one call through the remoting client library (sync call, one connection). */
static void client_latency(const char *addr, int n, double *p50, double *p99)
{
    struct rpc_client *cli;
    if (rpc_client_new(NULL, &cli) != 0)
        exit(1);
    struct rpc_cmd *req = rpc_cmd_new(105), *resp;
    rpc_cmd_ext_set(req, "topic", "BenchTopic0");
    int64_t *lat = malloc(sizeof(*lat) * (size_t)n);
    for (int i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        if (rpc_client_call(cli, addr, req, 3000, &resp) != 0 || resp->code != 0) {
            fprintf(stderr, "route query failed\n");
            exit(1);
        }
        lat[i] = now_ns() - t0;
        rpc_cmd_free(resp);
    }
    *p50 = pct(lat, n, 0.50) / 1000.0;
    *p99 = pct(lat, n, 0.99) / 1000.0;
    free(lat);
    rpc_cmd_free(req);
    rpc_client_free(cli);
}

/* Latency of one call over a plain blocking socket (no client library). */
static void raw_latency(int n, double *p50, double *p99)
{
    int fd = connect_to(opt.host, opt.port);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int64_t *lat = malloc(sizeof(*lat) * (size_t)n);
    for (int i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        if (raw_call(fd, &route_req, &buf, &cap) != 0) {
            fprintf(stderr, "route query failed\n");
            exit(1);
        }
        lat[i] = now_ns() - t0;
    }
    *p50 = pct(lat, n, 0.50) / 1000.0;
    *p99 = pct(lat, n, 0.99) / 1000.0;
    free(lat);
    free(buf);
    close(fd);
}

/* Pipelined throughput through the client library: `window` async calls in flight on one
 * connection, for `secs` seconds. */
struct pipe_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;
    long done, errors;
};

static void pipe_cb(int err, struct rpc_cmd *resp, void *arg)
{
    struct pipe_state *p = arg;
    pthread_mutex_lock(&p->mu);
    p->done++;
    if (err || resp->code != 0)
        p->errors++;
    p->inflight--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    rpc_cmd_free(resp);
}

static double client_pipelined(const char *addr, int window, int secs, long *errors)
{
    struct rpc_client *cli;
    struct pipe_state p = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    if (rpc_client_new(NULL, &cli) != 0)
        exit(1);
    struct rpc_cmd *req = rpc_cmd_new(105);
    rpc_cmd_ext_set(req, "topic", "BenchTopic0");
    int64_t t0 = now_ns(), end = t0 + (int64_t)secs * 1000000000LL;
    pthread_mutex_lock(&p.mu);
    while (now_ns() < end) {
        while (p.inflight >= window)
            pthread_cond_wait(&p.cv, &p.mu);
        p.inflight++;
        pthread_mutex_unlock(&p.mu);
        if (rpc_client_call_async(cli, addr, req, 5000, pipe_cb, &p) != 0)
            exit(1);
        pthread_mutex_lock(&p.mu);
    }
    while (p.inflight > 0)
        pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    double rate = (double)p.done / ((double)(now_ns() - t0) / 1e9);
    *errors = p.errors;
    rpc_cmd_free(req);
    rpc_client_free(cli);
    return rate;
}

static void register_broker(int fd)
{
    json_t *table = json_object();
    for (int i = 0; i < opt.topics; i++) {
        char name[32];
        snprintf(name, sizeof(name), "BenchTopic%d", i);
        json_object_set_new(table, name,
                            json_pack("{s:s,s:i,s:i,s:i,s:i}", "topicName", name, "readQueueNums",
                                      8, "writeQueueNums", 8, "perm", 6, "topicSysFlag", 0));
    }
    json_t *body = json_pack("{s:{s:o,s:{s:I,s:I}},s:[]}", "topicConfigSerializeWrapper",
                             "topicConfigTable", table, "dataVersion", "timestamp",
                             (json_int_t)mq_now_ms(), "counter", (json_int_t)1, "filterServerList");
    struct rpc_cmd *req = rpc_cmd_new(103);
    rpc_cmd_ext_set(req, "brokerName", "bench-broker");
    rpc_cmd_ext_set(req, "brokerAddr", "127.0.0.1:10911");
    rpc_cmd_ext_set(req, "clusterName", "BenchCluster");
    rpc_cmd_ext_set(req, "brokerId", "0");
    rpc_cmd_set_body_json(req, body);
    json_decref(body);
    struct mq_buf b;
    mq_buf_init(&b);
    rpc_cmd_encode(req, RPC_SER_ROCKETMQ, &b);
    uint8_t *buf = NULL;
    size_t cap = 0;
    if (raw_call(fd, &b, &buf, &cap) != 0) {
        fprintf(stderr, "register failed\n");
        exit(1);
    }
    free(buf);
    mq_buf_destroy(&b);
    rpc_cmd_free(req);
}

int main(int argc, char **argv)
{
    int o;
    while ((o = getopt(argc, argv, "n:c:d:l:t:h")) != -1) {
        switch (o) {
        case 'n': {
            char *colon = strrchr(optarg, ':');
            if (!colon)
                return 2;
            snprintf(opt.host, sizeof(opt.host), "%.*s", (int)(colon - optarg), optarg);
            opt.port = atoi(colon + 1);
            break;
        }
        case 'c':
            opt.conns = atoi(optarg);
            break;
        case 'd':
            opt.seconds = atoi(optarg);
            break;
        case 'l':
            opt.calls = atoi(optarg);
            break;
        case 't':
            opt.topics = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: mqbench-namesrv [-n host:port] [-c conns] [-d seconds] "
                            "[-l latency calls] [-t topics]\n");
            return o == 'h' ? 0 : 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    mq_log_set_level(MQ_LOG_WARN);
    struct ns_ctx ctx = {0};
    struct rpc_server *srv = NULL;
    if (opt.port == 0) {
        struct rpc_server_opts so = {.io_threads = 1};
        if (ns_routes_new(&ctx.routes) || ns_kv_new(NULL, &ctx.kv) || rpc_server_new(&so, &srv) ||
            ns_handlers_register(srv, &ctx) || rpc_server_start(srv))
            return 1;
        opt.port = rpc_server_port(srv);
    }
    char addr[96];
    snprintf(addr, sizeof(addr), "%s:%d", opt.host, opt.port);
    int bfd = connect_to(opt.host, opt.port); /* the fake broker stays connected */
    register_broker(bfd);

    struct rpc_cmd *req = rpc_cmd_new(105);
    rpc_cmd_ext_set(req, "topic", "BenchTopic0");
    mq_buf_init(&route_req);
    rpc_cmd_encode(req, RPC_SER_ROCKETMQ, &route_req);
    rpc_cmd_free(req);
    printf("mqbench-namesrv: %s, %d topics, %d connections, %d s, %d latency calls\n", addr,
           opt.topics, opt.conns, opt.seconds, opt.calls);

    double tcp50, tcp99, cli50, cli99, raw50, raw99;
    tcp_rtt(opt.calls, &tcp50, &tcp99);
    printf("loopback TCP round trip (64 B): p50 %.1f us  p99 %.1f us\n", tcp50, tcp99);
    raw_latency(opt.calls, &raw50, &raw99);
    printf("route query latency (plain socket):    p50 %.1f us  p99 %.1f us  "
           "(%.2fx / %.2fx TCP)\n",
           raw50, raw99, raw50 / tcp50, raw99 / tcp99);
    client_latency(addr, opt.calls, &cli50, &cli99);
    printf("route query latency (rpc_client_call): p50 %.1f us  p99 %.1f us  "
           "(%.2fx / %.2fx TCP)\n",
           cli50, cli99, cli50 / tcp50, cli99 / tcp99);

    long perr = 0;
    double prate = client_pipelined(addr, 64, opt.seconds, &perr);
    printf("route queries pipelined through rpc_client_call_async (1 connection, 64 in flight): "
           "%.0f/s (%ld errors)\n",
           prate, perr);
    atomic_fetch_add(&total_errors, perr);

    pthread_t *th = calloc((size_t)opt.conns, sizeof(*th));
    int64_t t0 = now_ns();
    for (int i = 0; i < opt.conns; i++)
        pthread_create(&th[i], NULL, load_thread, NULL);
    sleep((unsigned)opt.seconds);
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < opt.conns; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(now_ns() - t0) / 1e9;
    double qps = (double)atomic_load(&total_calls) / secs;
    printf("route queries: %ld in %.2f s from %d connections = %.0f/s (%ld errors); one "
           "connection at TCP p50 would do %.0f/s\n",
           atomic_load(&total_calls), secs, opt.conns, qps, atomic_load(&total_errors),
           1e6 / tcp50);
    printf("RESULT qps=%.0f pipelined_qps=%.0f conns=%d p50_us=%.1f p99_us=%.1f raw_p50_us=%.1f "
           "raw_p99_us=%.1f "
           "tcp_p50_us=%.1f tcp_p99_us=%.1f p50_ratio=%.2f raw_p50_ratio=%.2f errors=%ld\n",
           qps, prate, opt.conns, cli50, cli99, raw50, raw99, tcp50, tcp99, cli50 / tcp50,
           raw50 / tcp50, atomic_load(&total_errors));
    free(th);
    close(bfd);
    mq_buf_destroy(&route_req);
    rpc_server_free(srv);
    ns_routes_free(ctx.routes);
    ns_kv_free(ctx.kv);
    return atomic_load(&total_errors) ? 1 : 0;
}
