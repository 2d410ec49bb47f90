/* test_remoting_net.c — unit tests for remoting/'s server and client over loopback: sync,
 * async, oneway, many caller threads, server-to-client notifications, timeouts, a peer closing
 * with calls pending, graceful close, deferred replies from another thread, workers, refused
 * connections and the output limit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/mq_bytes.h"
#include "common/mq_util.h"
#include "remoting/remoting.h"
#include "tests/unit/mq_test.h"

/* ---- loopback server and client ---- */

enum { C_ECHO = 1, C_HOLD, C_CLOSE, C_ONEWAY, C_DEFER, C_WORKER, C_BIG, C_REPLY_CLOSE, C_NOTIFY };

static atomic_int oneway_count, close_count;
static struct rpc_conn *held[256];
static atomic_int nheld;

static int h_echo(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct rpc_cmd *r = rpc_cmd_new_response(req, RPC_SUCCESS, "echo");
    const char *k = rpc_cmd_ext_get(req, "k");
    if (k)
        rpc_cmd_ext_set(r, "k", k);
    rpc_cmd_ext_set(r, "lang", rpc_lang_name(req->language));
    if (req->body)
        rpc_cmd_set_body_copy(r, req->body, req->body_len);
    *resp = r;
    return RPC_REPLY;
}

static int h_hold(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    int i = atomic_fetch_add(&nheld, 1);
    if (i >= 256)
        return -ENOSPC;
    held[i] = rpc_conn_ref(conn);
    return RPC_DEFER;
}

static int h_close(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    rpc_conn_close(conn);
    return RPC_REPLY;
}

/* Replies, then closes: the close waits for the reply to be written (graceful close). */
static int h_reply_close(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                         void *arg)
{
    struct rpc_cmd *r = rpc_cmd_new_response(req, RPC_SUCCESS, "bye");
    rpc_cmd_take_body(r, calloc(1, 1 << 20), 1 << 20);
    rpc_conn_reply(conn, r);
    rpc_conn_close(conn);
    return RPC_REPLY;
}

/* Answers, then notifies the caller with a oneway request of code 40 carrying its opaque. */
static int h_notify(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct rpc_cmd *n = rpc_cmd_new(40);
    rpc_cmd_ext_set_int64(n, "of", req->opaque);
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    return rpc_conn_send_oneway(conn, n) == 0 ? RPC_REPLY : -EIO;
}

static int h_oneway(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    atomic_fetch_add(&oneway_count, 1);
    return RPC_REPLY;
}

struct later {
    struct rpc_conn *conn;
    struct rpc_cmd *resp;
};

static void *reply_later(void *arg)
{
    struct later *l = arg;
    usleep(20000);
    rpc_conn_reply(l->conn, l->resp);
    rpc_conn_unref(l->conn);
    free(l);
    return NULL;
}

static int h_defer(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct later *l = malloc(sizeof(*l));
    pthread_t t;
    l->conn = rpc_conn_ref(conn);
    l->resp = rpc_cmd_new_response(req, RPC_SUCCESS, "later");
    if (pthread_create(&t, NULL, reply_later, l) != 0)
        return -EAGAIN;
    pthread_detach(t);
    return RPC_DEFER;
}

static int h_worker(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof(name));
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    rpc_cmd_ext_set(*resp, "thread", name);
    return RPC_REPLY;
}

static int h_big(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    void *p = calloc(1, 1 << 20);
    rpc_cmd_take_body(*resp, p, 1 << 20);
    return RPC_REPLY;
}

static atomic_int client_close_count;

static void on_close(struct rpc_conn *conn, void *arg)
{
    atomic_fetch_add(arg ? &client_close_count : &close_count, 1);
}

struct fixture {
    struct rpc_server *srv;
    struct rpc_client *cli;
    char addr[32];
};

static int setup(struct fixture *f, int workers, int ser)
{
    struct rpc_server_opts so = {
        .worker_threads = workers, .io_threads = 2, .max_pending_out = 4 << 20};
    struct rpc_client_opts co = {.serialize = ser};
    int rc = rpc_server_new(&so, &f->srv);
    if (rc)
        return rc;
    rpc_server_handle(f->srv, C_ECHO, h_echo, NULL, 0);
    rpc_server_handle(f->srv, C_HOLD, h_hold, NULL, 0);
    rpc_server_handle(f->srv, C_CLOSE, h_close, NULL, 0);
    rpc_server_handle(f->srv, C_ONEWAY, h_oneway, NULL, 0);
    rpc_server_handle(f->srv, C_DEFER, h_defer, NULL, 0);
    rpc_server_handle(f->srv, C_WORKER, h_worker, NULL, RPC_HANDLER_WORKER);
    rpc_server_handle(f->srv, C_BIG, h_big, NULL, 0);
    rpc_server_handle(f->srv, C_REPLY_CLOSE, h_reply_close, NULL, 0);
    rpc_server_handle(f->srv, C_NOTIFY, h_notify, NULL, 0);
    rpc_server_on_close(f->srv, on_close, NULL);
    if ((rc = rpc_server_start(f->srv)) != 0)
        return rc;
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", rpc_server_port(f->srv));
    if ((rc = rpc_client_new(&co, &f->cli)) != 0)
        return rc;
    rpc_client_on_close(f->cli, on_close, f);
    return 0;
}

static void teardown(struct fixture *f)
{
    rpc_client_free(f->cli);
    rpc_server_free(f->srv);
    int n = atomic_exchange(&nheld, 0);
    for (int i = 0; i < n && i < 256; i++) {
        /* a deferred reply after the server is gone is a harmless no-op */
        ASSERT_EQ(rpc_conn_reply(held[i], rpc_cmd_new(0)), -ENOTCONN);
        rpc_conn_unref(held[i]);
    }
}

static atomic_int released;

static void count_release(void *arg)
{
    atomic_fetch_add(&released, 1);
}

TEST(test_loopback_sync)
{
    struct fixture f;
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    for (int ser = 0; ser < 2; ser++) {
        struct rpc_cmd *req = rpc_cmd_new(C_ECHO), *resp = NULL;
        req->language = RPC_LANG_JAVA;
        rpc_cmd_ext_set(req, "k", "v\"1");
        rpc_cmd_set_body_copy(req, "payload", 7);
        struct rpc_client *cli = f.cli, *jcli = NULL;
        if (ser == RPC_SER_JSON) {
            struct rpc_client_opts co = {.serialize = RPC_SER_JSON};
            ASSERT_OK(rpc_client_new(&co, &jcli));
            cli = jcli;
        }
        ASSERT_OK(rpc_client_call(cli, f.addr, req, 3000, &resp));
        ASSERT_EQ(resp->code, RPC_SUCCESS);
        ASSERT_EQ(resp->serialize, ser == RPC_SER_JSON ? RPC_SER_JSON : RPC_SER_ROCKETMQ);
        ASSERT_EQ(resp->opaque, req->opaque);
        ASSERT_STR_EQ(rpc_cmd_ext_get(resp, "k"), "v\"1");
        ASSERT_STR_EQ(rpc_cmd_ext_get(resp, "lang"), "JAVA");
        ASSERT_STR_EQ(rpc_cmd_remark(resp), "echo");
        ASSERT_EQ(resp->body_len, 7);
        ASSERT_MEM_EQ(resp->body, "payload", 7);
        rpc_cmd_free(resp);
        rpc_cmd_free(req);
        rpc_client_free(jcli);
    }
    /* a large body goes by reference on the server side */
    struct rpc_cmd *req = rpc_cmd_new(C_ECHO), *resp = NULL;
    rpc_cmd_take_body(req, calloc(1, 3 << 20), 3 << 20);
    ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 5000, &resp));
    ASSERT_EQ(resp->body_len, 3 << 20);
    rpc_cmd_free(resp);
    rpc_cmd_free(req);
    /* and on the client side: a borrowed body with a release is sent without a copy, intact,
     * and released once, when written (before the answer can arrive) */
    size_t blen = (1 << 20) + 7;
    uint8_t *body = malloc(blen);
    for (size_t i = 0; i < blen; i++)
        body[i] = (uint8_t)(i * 31 + (i >> 9));
    atomic_store(&released, 0);
    req = rpc_cmd_new(C_ECHO);
    rpc_cmd_set_body_ref(req, body, blen, count_release, NULL);
    ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 5000, &resp));
    ASSERT_EQ(atomic_load(&released), 1);
    rpc_cmd_free(req);
    ASSERT_EQ(atomic_load(&released), 1);
    ASSERT_EQ(resp->body_len, blen);
    ASSERT_MEM_EQ(resp->body, body, blen);
    rpc_cmd_free(resp);
    free(body);
    teardown(&f);
}

struct async_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok, errs[8];
};

static void async_cb(int err, struct rpc_cmd *resp, void *arg)
{
    struct async_state *s = arg;
    pthread_mutex_lock(&s->mu);
    if (err == 0 && resp && resp->code == 0)
        s->ok++;
    else if (err < 0 && -err < 8 * 1000)
        s->errs[(-err) % 8]++;
    s->done++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    rpc_cmd_free(resp);
}

static int wait_done(struct async_state *s, int n, int ms)
{
    int64_t end = mq_mono_us() + (int64_t)ms * 1000;
    pthread_mutex_lock(&s->mu);
    while (s->done < n && mq_mono_us() < end) {
        pthread_mutex_unlock(&s->mu);
        usleep(1000);
        pthread_mutex_lock(&s->mu);
    }
    int done = s->done;
    pthread_mutex_unlock(&s->mu);
    return done;
}

#define ASYNC_STATE                                                                                \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0,                                 \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

TEST(test_loopback_async)
{
    struct fixture f;
    struct async_state s = ASYNC_STATE;
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    for (int i = 0; i < 500; i++) {
        struct rpc_cmd *req = rpc_cmd_new(i % 2 ? C_ECHO : C_DEFER);
        ASSERT_OK(rpc_client_call_async(f.cli, f.addr, req, 5000, async_cb, &s));
        rpc_cmd_free(req);
    }
    ASSERT_EQ(wait_done(&s, 500, 10000), 500);
    ASSERT_EQ(s.ok, 500);
    teardown(&f);
}

struct caller {
    struct fixture *f;
    int calls, ok;
};

static void *caller_main(void *arg)
{
    struct caller *c = arg;
    for (int i = 0; i < c->calls; i++) {
        struct rpc_cmd *req = rpc_cmd_new(i % 3 ? C_ECHO : C_DEFER), *resp = NULL;
        char k[32];
        snprintf(k, sizeof(k), "%p-%d", (void *)c, i);
        rpc_cmd_ext_set(req, "k", k);
        if (rpc_client_call(c->f->cli, c->f->addr, req, 5000, &resp) == 0 && resp->code == 0 &&
            (i % 3 == 0 || strcmp(rpc_cmd_ext_get(resp, "k"), k) == 0))
            c->ok++;
        rpc_cmd_free(resp);
        rpc_cmd_free(req);
    }
    return NULL;
}

TEST(test_loopback_many_callers)
{
    /* eight threads share one client; the server has two I/O threads */
    struct fixture f;
    struct caller callers[8];
    pthread_t t[8];
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    for (int i = 0; i < 8; i++) {
        callers[i] = (struct caller){&f, 200, 0};
        ASSERT_OK(pthread_create(&t[i], NULL, caller_main, &callers[i]));
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(callers[i].ok, 200);
    }
    teardown(&f);
}

TEST(test_loopback_callers_share_wake_bits)
{
    /* more sync callers than the client's wake bits (4 words x 32): callers sharing a bit are
     * woken for each other's answers and must sleep again until their own */
    enum { N = 160 };
    static struct caller callers[N];
    static pthread_t t[N];
    struct fixture f;
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    for (int i = 0; i < N; i++) {
        callers[i] = (struct caller){&f, 30, 0};
        ASSERT_OK(pthread_create(&t[i], NULL, caller_main, &callers[i]));
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(callers[i].ok, 30);
    }
    teardown(&f);
}

TEST(test_loopback_oneway_and_unknown)
{
    struct fixture f;
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    atomic_store(&oneway_count, 0);
    for (int i = 0; i < 10; i++) {
        struct rpc_cmd *req = rpc_cmd_new(C_ONEWAY);
        ASSERT_OK(rpc_client_oneway(f.cli, f.addr, req));
        rpc_cmd_free(req);
    }
    /* a oneway echo gets no reply; then a sync call, served after the oneways */
    struct rpc_cmd *req = rpc_cmd_new(C_ECHO), *resp = NULL;
    ASSERT_OK(rpc_client_oneway(f.cli, f.addr, req));
    rpc_cmd_free(req);
    req = rpc_cmd_new(999);
    ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 3000, &resp));
    ASSERT_EQ(resp->code, RPC_REQUEST_CODE_NOT_SUPPORTED);
    ASSERT(strstr(rpc_cmd_remark(resp), "999") != NULL);
    ASSERT_EQ(atomic_load(&oneway_count), 10);
    rpc_cmd_free(resp);
    rpc_cmd_free(req);
    teardown(&f);
}

static atomic_int notified, notified_ser;

static int h_client_notify(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    atomic_store(&notified_ser, req->serialize);
    atomic_fetch_add(&notified, rpc_cmd_is_oneway(req) ? 1 : 100);
    return RPC_REPLY;
}

TEST(test_loopback_server_notifies_client)
{
    struct fixture f;
    for (int ser = 0; ser < 2; ser++) {
        struct rpc_client_opts co = {.serialize = ser};
        ASSERT_OK(setup(&f, 0, ser));
        rpc_client_free(f.cli);
        ASSERT_OK(rpc_client_new(&co, &f.cli));
        ASSERT_OK(rpc_client_handle(f.cli, 40, h_client_notify, NULL));
        atomic_store(&notified, 0);
        struct rpc_cmd *req = rpc_cmd_new(C_NOTIFY), *resp = NULL;
        ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 3000, &resp));
        for (int i = 0; i < 2000 && atomic_load(&notified) == 0; i++)
            usleep(1000);
        ASSERT_EQ(atomic_load(&notified), 1);
        ASSERT_EQ(atomic_load(&notified_ser), ser);
        rpc_cmd_free(resp);
        rpc_cmd_free(req);
        teardown(&f);
    }
}

TEST(test_loopback_timeout)
{
    struct fixture f;
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    struct rpc_cmd *req = rpc_cmd_new(C_HOLD), *resp = NULL;
    int64_t t0 = mq_mono_us();
    ASSERT_EQ(rpc_client_call(f.cli, f.addr, req, 150, &resp), -ETIMEDOUT);
    int64_t dt = mq_mono_us() - t0;
    ASSERT_GE(dt, 140000);
    ASSERT_LT(dt, 2000000);
    ASSERT(resp == NULL);
    /* the connection still works afterwards */
    req->code = C_ECHO;
    ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 3000, &resp));
    rpc_cmd_free(resp);
    rpc_cmd_free(req);
    teardown(&f);
}

TEST(test_loopback_peer_close)
{
    struct fixture f;
    struct async_state s = ASYNC_STATE;
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    atomic_store(&close_count, 0);
    for (int i = 0; i < 20; i++) {
        struct rpc_cmd *req = rpc_cmd_new(C_HOLD);
        ASSERT_OK(rpc_client_call_async(f.cli, f.addr, req, 30000, async_cb, &s));
        rpc_cmd_free(req);
    }
    struct rpc_cmd *req = rpc_cmd_new(C_CLOSE), *resp = NULL;
    int64_t t0 = mq_mono_us();
    ASSERT_EQ(rpc_client_call(f.cli, f.addr, req, 30000, &resp), -ECONNRESET);
    ASSERT_EQ(wait_done(&s, 20, 5000), 20);
    ASSERT_LT(mq_mono_us() - t0, 5000000);
    ASSERT_EQ(s.errs[ECONNRESET % 8], 20);
    ASSERT_EQ(atomic_load(&close_count), 1);
    /* a reply queued before a close is still delivered */
    int closes = atomic_load(&client_close_count);
    req->code = C_REPLY_CLOSE;
    ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 3000, &resp));
    ASSERT_STR_EQ(rpc_cmd_remark(resp), "bye");
    ASSERT_EQ(resp->body_len, 1 << 20);
    rpc_cmd_free(resp);
    /* once the client has seen the close, the next call reconnects (a call racing the FIN
     * would meet a reset, as with any closed connection) */
    for (int i = 0; i < 3000 && atomic_load(&client_close_count) == closes; i++)
        usleep(1000);
    ASSERT_EQ(atomic_load(&client_close_count), closes + 1);
    req->code = C_ECHO;
    ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 3000, &resp));
    ASSERT_EQ(resp->code, 0);
    rpc_cmd_free(resp);
    rpc_cmd_free(req);
    teardown(&f);
}

TEST(test_loopback_deferred_thread)
{
    struct fixture f;
    ASSERT_OK(setup(&f, 0, RPC_SER_JSON));
    struct rpc_cmd *req = rpc_cmd_new(C_DEFER), *resp = NULL;
    ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 3000, &resp));
    ASSERT_EQ(resp->code, 0);
    ASSERT_EQ(resp->serialize, RPC_SER_JSON);
    ASSERT_STR_EQ(rpc_cmd_remark(resp), "later");
    rpc_cmd_free(resp);
    /* the peer goes away before the deferred reply: the reply is dropped quietly, and the
     * client's own shutdown fails the pending call with -ECANCELED */
    struct async_state s = ASYNC_STATE;
    ASSERT_OK(rpc_client_call_async(f.cli, f.addr, req, 3000, async_cb, &s));
    rpc_cmd_free(req);
    usleep(5000);
    rpc_client_free(f.cli);
    f.cli = NULL;
    ASSERT_EQ(s.done, 1);
    ASSERT_EQ(s.errs[ECANCELED % 8], 1);
    usleep(50000);
    teardown(&f);
}

TEST(test_loopback_refused)
{
    struct fixture f;
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    int port = rpc_server_port(f.srv);
    rpc_server_free(f.srv);
    f.srv = NULL;
    struct rpc_cmd *req = rpc_cmd_new(C_ECHO), *resp = NULL;
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ASSERT_EQ(rpc_client_call(f.cli, addr, req, 3000, &resp), -ECONNREFUSED);
    ASSERT_EQ(rpc_client_call(f.cli, "not-an-address", req, 3000, &resp), -EINVAL);
    rpc_cmd_free(req);
    teardown(&f);
}

TEST(test_loopback_worker)
{
    struct fixture f;
    ASSERT_OK(setup(&f, 2, RPC_SER_ROCKETMQ));
    struct rpc_cmd *req = rpc_cmd_new(C_WORKER), *resp = NULL;
    ASSERT_OK(rpc_client_call(f.cli, f.addr, req, 3000, &resp));
    ASSERT_EQ(resp->code, 0);
    ASSERT(strncmp(rpc_cmd_ext_get(resp, "thread"), "rpc-io", 6) != 0);
    rpc_cmd_free(resp);
    rpc_cmd_free(req);
    teardown(&f);
}

TEST(test_loopback_idle_timeout)
{
    struct rpc_server_opts so = {.idle_timeout_ms = 200};
    struct rpc_server *srv;
    ASSERT_OK(rpc_server_new(&so, &srv));
    rpc_server_on_close(srv, on_close, NULL);
    ASSERT_OK(rpc_server_start(srv));
    atomic_store(&close_count, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(rpc_server_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
    char c;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int64_t t0 = mq_mono_us();
    ASSERT_EQ(recv(fd, &c, 1, 0), 0); /* closed by the server */
    ASSERT_GE(mq_mono_us() - t0, 150000);
    ASSERT_EQ(atomic_load(&close_count), 1);
    close(fd);
    rpc_server_free(srv);
}

TEST(test_loopback_output_limit)
{
    /* A peer that sends requests but never reads is dropped once 4 MiB are pending. */
    struct fixture f;
    ASSERT_OK(setup(&f, 0, RPC_SER_ROCKETMQ));
    atomic_store(&close_count, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(rpc_server_port(f.srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
    struct rpc_cmd *req = rpc_cmd_new(C_BIG);
    struct mq_buf b;
    mq_buf_init(&b);
    ASSERT_OK(rpc_cmd_encode(req, RPC_SER_ROCKETMQ, &b));
    for (int i = 0; i < 64 && atomic_load(&close_count) == 0; i++) {
        if (send(fd, b.data, b.len, MSG_NOSIGNAL) < 0)
            break;
        usleep(2000);
    }
    for (int i = 0; i < 2000 && atomic_load(&close_count) == 0; i++)
        usleep(1000);
    ASSERT_EQ(atomic_load(&close_count), 1);
    close(fd);
    mq_buf_destroy(&b);
    rpc_cmd_free(req);
    teardown(&f);
}

TEST_MAIN(test_loopback_sync, test_loopback_async, test_loopback_many_callers,
          test_loopback_callers_share_wake_bits, test_loopback_oneway_and_unknown,
          test_loopback_server_notifies_client, test_loopback_timeout, test_loopback_peer_close,
          test_loopback_deferred_thread, test_loopback_refused, test_loopback_worker,
          test_loopback_idle_timeout, test_loopback_output_limit)
