/* test_remoting.c — unit tests for remoting/: both header serializations, round trips, every
 * class of malformed input, fastjson bodies, and a loopback server/client (sync, async, oneway,
 * timeout, peer closing with calls pending, deferred replies from another thread, workers).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/mq_bytes.h"
#include "common/mq_util.h"
#include "remoting/remoting.h"
#include "tests/unit/mq_test.h"

static struct rpc_cmd *sample_cmd(void)
{
    struct rpc_cmd *c = rpc_cmd_new(105);
    c->opaque = 42;
    c->flag = 0;
    rpc_cmd_set_remark(c, "hello \"remark\"\n");
    rpc_cmd_ext_set(c, "topic", "TopicTest");
    rpc_cmd_ext_set_int64(c, "queueOffset", -1234567890123LL);
    rpc_cmd_ext_set_bool(c, "compressed", 1);
    rpc_cmd_set_body_copy(c, "body\0bytes", 10);
    return c;
}

static int roundtrip(int ser)
{
    struct rpc_cmd *c = sample_cmd(), *d = NULL;
    struct mq_buf b;
    size_t flen = 0;
    int ok = 0;
    int64_t off;
    int bv;
    mq_buf_init(&b);
    if (rpc_cmd_encode(c, ser, &b) || rpc_frame_check(b.data, b.len, 1 << 20, &flen) ||
        flen != b.len || rpc_frame_decode(b.data, b.len, NULL, &d))
        goto out;
    ok = d->code == 105 && d->opaque == 42 && d->language == RPC_LANG_CPP &&
         d->version == RPC_VERSION_DEFAULT && d->serialize == ser &&
         strcmp(rpc_cmd_remark(d), "hello \"remark\"\n") == 0 && d->ext_n == 3 &&
         strcmp(rpc_cmd_ext_get(d, "topic"), "TopicTest") == 0 &&
         rpc_cmd_ext_get_int64(d, "queueOffset", &off) == 0 && off == -1234567890123LL &&
         rpc_cmd_ext_get_bool(d, "compressed", &bv) == 0 && bv == 1 && d->body_len == 10 &&
         memcmp(d->body, "body\0bytes", 10) == 0 && !rpc_cmd_is_response(d);
out:
    rpc_cmd_free(c);
    rpc_cmd_free(d);
    mq_buf_destroy(&b);
    return ok;
}

TEST(test_roundtrip_binary)
{
    ASSERT(roundtrip(RPC_SER_ROCKETMQ));
}

TEST(test_roundtrip_json)
{
    ASSERT(roundtrip(RPC_SER_JSON));
}

/* Builds a frame around a header: length, type << 24 | headerLen, header, body. */
static size_t frame(uint8_t *out, int ser, const void *hdr, size_t hlen, const void *body,
                    size_t blen)
{
    mq_put_be32(out, (uint32_t)(4 + hlen + blen));
    mq_put_be32(out + 4, (uint32_t)ser << 24 | (uint32_t)hlen);
    memcpy(out + 8, hdr, hlen);
    if (blen)
        memcpy(out + 8 + hlen, body, blen);
    return 8 + hlen + blen;
}

TEST(test_json_from_java)
{
    /* As RemotingSerializable (fastjson) writes it, extFields values as strings and numbers. */
    const char *h = "{\"code\":105,\"extFields\":{\"topic\":\"TopicTest\",\"queueId\":3,"
                    "\"sysFlag\":true,\"n\":null},\"flag\":0,\"language\":\"JAVA\","
                    "\"opaque\":7,\"serializeTypeCurrentRPC\":\"JSON\",\"version\":373}";
    uint8_t buf[512];
    size_t n = frame(buf, 0, h, strlen(h), "xy", 2);
    struct rpc_cmd *d;
    ASSERT_OK(rpc_frame_decode(buf, n, NULL, &d));
    ASSERT_EQ(d->code, 105);
    ASSERT_EQ(d->opaque, 7);
    ASSERT_EQ(d->version, 373);
    ASSERT_EQ(d->language, RPC_LANG_JAVA);
    ASSERT_EQ(d->serialize, RPC_SER_JSON);
    ASSERT(rpc_cmd_remark(d) == NULL);
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "topic"), "TopicTest");
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "queueId"), "3");
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "sysFlag"), "true");
    ASSERT(rpc_cmd_ext_get(d, "n") == NULL);
    ASSERT_EQ(d->body_len, 2);
    int32_t q;
    ASSERT_OK(rpc_cmd_ext_get_int32(d, "queueId", &q));
    ASSERT_EQ(q, 3);
    ASSERT_EQ(rpc_cmd_ext_get_int32(d, "topic", &q), -EINVAL);
    ASSERT_EQ(rpc_cmd_ext_get_int32(d, "none", &q), -ENOENT);
    rpc_cmd_free(d);
    /* unknown language names are tolerated */
    h = "{\"code\":1,\"language\":\"NODE\",\"flag\":1}";
    n = frame(buf, 0, h, strlen(h), NULL, 0);
    ASSERT_OK(rpc_frame_decode(buf, n, NULL, &d));
    ASSERT_EQ(d->language, RPC_LANG_OTHER);
    ASSERT(rpc_cmd_is_response(d));
    ASSERT(d->body == NULL);
    rpc_cmd_free(d);
}

TEST(test_binary_golden)
{
    /* code 105, lang JAVA, version 1, opaque 9, flag 2 (oneway), remark "r",
     * ext {"k": "vv"} */
    static const uint8_t h[] = {0, 105, 0, 0, 1, 0, 0, 0, 9,   0, 0, 0, 2, 0,   0,  0,
                                1, 'r', 0, 0, 0, 9, 0, 1, 'k', 0, 0, 0, 2, 'v', 'v'};
    uint8_t buf[128];
    size_t n = frame(buf, 1, h, sizeof(h), NULL, 0);
    struct rpc_cmd *d;
    ASSERT_OK(rpc_frame_decode(buf, n, NULL, &d));
    ASSERT_EQ(d->code, 105);
    ASSERT_EQ(d->version, 1);
    ASSERT_EQ(d->opaque, 9);
    ASSERT(rpc_cmd_is_oneway(d));
    ASSERT_STR_EQ(rpc_cmd_remark(d), "r");
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "k"), "vv");
    /* and our encoder writes exactly those bytes */
    struct mq_buf b;
    mq_buf_init(&b);
    d->language = RPC_LANG_JAVA;
    ASSERT_OK(rpc_cmd_encode(d, RPC_SER_ROCKETMQ, &b));
    ASSERT_EQ(b.len, n);
    ASSERT_MEM_EQ(b.data, buf, n);
    mq_buf_destroy(&b);
    rpc_cmd_free(d);
}

static int decode_err(int ser, const void *h, size_t hlen)
{
    uint8_t buf[1024];
    size_t n = frame(buf, ser, h, hlen, NULL, 0);
    struct rpc_cmd *d = NULL;
    int rc = rpc_frame_decode(buf, n, NULL, &d);
    rpc_cmd_free(d);
    return rc;
}

TEST(test_malformed_frames)
{
    uint8_t buf[64] = {0};
    size_t flen;
    struct rpc_cmd *d;
    /* short: fewer than 4 bytes, or fewer than the length says */
    ASSERT_EQ(rpc_frame_check(buf, 3, 1 << 20, &flen), -EAGAIN);
    mq_put_be32(buf, 20);
    ASSERT_EQ(rpc_frame_check(buf, 10, 1 << 20, &flen), -EAGAIN);
    /* below the minimum, above the maximum, negative */
    mq_put_be32(buf, 3);
    ASSERT_EQ(rpc_frame_check(buf, 8, 1 << 20, &flen), -EBADMSG);
    mq_put_be32(buf, (1 << 20) + 1);
    ASSERT_EQ(rpc_frame_check(buf, 8, 1 << 20, &flen), -EMSGSIZE);
    mq_put_be32(buf, 0x80000000u);
    ASSERT_EQ(rpc_frame_check(buf, 8, SIZE_MAX, &flen), -EMSGSIZE);
    /* frame shorter than the prefix */
    mq_put_be32(buf, 2);
    ASSERT_EQ(rpc_frame_decode(buf, 6, NULL, &d), -EBADMSG);
    /* length field disagrees with the frame size */
    mq_put_be32(buf, 30);
    mq_put_be32(buf + 4, 1u << 24);
    ASSERT_EQ(rpc_frame_decode(buf, 20, NULL, &d), -EBADMSG);
    /* header length beyond the frame */
    mq_put_be32(buf, 12);
    mq_put_be32(buf + 4, 1u << 24 | 100);
    ASSERT_EQ(rpc_frame_decode(buf, 16, NULL, &d), -EBADMSG);
    /* bad serialize type */
    ASSERT_EQ(decode_err(2, "{}", 2), -EBADMSG);
    ASSERT_EQ(decode_err(0xFF, "{}", 2), -EBADMSG);
}

TEST(test_malformed_binary_headers)
{
    uint8_t h[64] = {0};
    /* too short for the fixed part */
    ASSERT_EQ(decode_err(1, h, 10), -EBADMSG);
    /* remark length beyond the header */
    mq_put_be32(h + 13, 100);
    ASSERT_EQ(decode_err(1, h, 21), -EBADMSG);
    /* remark length negative */
    mq_put_be32(h + 13, 0xFFFFFFFFu);
    ASSERT_EQ(decode_err(1, h, 21), -EBADMSG);
    /* no room for the extFields length */
    mq_put_be32(h + 13, 0);
    ASSERT_EQ(decode_err(1, h, 19), -EBADMSG);
    /* huge extFields length */
    mq_put_be32(h + 17, 0x7FFFFFFFu);
    ASSERT_EQ(decode_err(1, h, 21), -EBADMSG);
    /* truncated key: key length 10, 3 bytes present */
    mq_put_be32(h + 17, 5);
    mq_put_be16(h + 21, 10);
    ASSERT_EQ(decode_err(1, h, 26), -EBADMSG);
    /* negative key length */
    mq_put_be16(h + 21, 0xFFFF);
    ASSERT_EQ(decode_err(1, h, 26), -EBADMSG);
    /* truncated value: key "a", value length 50 */
    mq_put_be32(h + 17, 9);
    mq_put_be16(h + 21, 1);
    h[23] = 'a';
    mq_put_be32(h + 24, 50);
    ASSERT_EQ(decode_err(1, h, 30), -EBADMSG);
    /* value length field cut by the extFields length */
    mq_put_be32(h + 17, 5);
    ASSERT_EQ(decode_err(1, h, 26), -EBADMSG);
    /* trailing bytes after extFields */
    mq_put_be32(h + 17, 0);
    ASSERT_EQ(decode_err(1, h, 22), -EBADMSG);
    ASSERT_EQ(decode_err(1, h, 21), 0);
}

TEST(test_malformed_json_headers)
{
    const char *bad[] = {
        "",
        "{",
        "[]",
        "\"x\"",
        "{\"code\":\"105\"}",
        "{\"code\":1e3}",
        "{\"code\":99999999999}",
        "{\"version\":70000}",
        "{\"code\":1,\"extFields\":[1,2]}",
        "{\"code\":1,\"remark\":5}",
        "{\"code\":1}garbage",
        "{\"code\":1,\"extFields\":{\"a\":\"\\ud800\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (decode_err(0, bad[i], strlen(bad[i])) != -EBADMSG)
            MQ_TEST_FAIL_("accepted bad JSON header #%zu: %s", i, bad[i]);
    /* deep nesting is refused without recursion trouble */
    char deep[600];
    memset(deep, '[', sizeof(deep));
    ASSERT_EQ(decode_err(0, deep, sizeof(deep)), -EBADMSG);
}

TEST(test_json_bare_keys)
{
    const char *s = "{\"brokerAddrs\":{0:\"127.0.0.1:10911\", 1 :\"b\"},\"a\":[1,2,{3:[4]}],"
                    "\"s\":\"{5:6}\"}";
    json_t *v = rpc_json_loads(s, strlen(s));
    ASSERT(v != NULL);
    json_t *addrs = json_object_get(v, "brokerAddrs");
    ASSERT_STR_EQ(json_string_value(json_object_get(addrs, "0")), "127.0.0.1:10911");
    ASSERT_STR_EQ(json_string_value(json_object_get(addrs, "1")), "b");
    json_t *a = json_object_get(v, "a");
    ASSERT_EQ(json_integer_value(json_array_get(a, 1)), 2);
    ASSERT(json_is_array(json_object_get(json_array_get(a, 2), "3")));
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "s")), "{5:6}");
    json_decref(v);
    ASSERT(rpc_json_loads("{0:", 3) == NULL);
    /* standard JSON out */
    struct rpc_cmd *c = rpc_cmd_new(0);
    json_t *o = json_pack("{s:{s:s}}", "brokerAddrs", "0", "x");
    ASSERT_OK(rpc_cmd_set_body_json(c, o));
    ASSERT_EQ(c->body_len, strlen("{\"brokerAddrs\":{\"0\":\"x\"}}"));
    ASSERT_MEM_EQ(c->body, "{\"brokerAddrs\":{\"0\":\"x\"}}", c->body_len);
    json_decref(o);
    rpc_cmd_free(c);
}

TEST(test_cmd_helpers)
{
    struct rpc_cmd *c = rpc_cmd_new(10);
    ASSERT_OK(rpc_cmd_ext_set(c, "a", "1"));
    ASSERT_OK(rpc_cmd_ext_set(c, "a", "2"));
    ASSERT_EQ(c->ext_n, 1);
    ASSERT_STR_EQ(rpc_cmd_ext_get(c, "a"), "2");
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "key%d", i);
        ASSERT_OK(rpc_cmd_ext_set_int64(c, k, i));
    }
    int64_t v;
    ASSERT_OK(rpc_cmd_ext_get_int64(c, "key77", &v));
    ASSERT_EQ(v, 77);
    struct rpc_cmd *d = rpc_cmd_clone(c);
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "key99"), "99");
    struct rpc_cmd *r = rpc_cmd_new_response(d, 17, "no topic");
    ASSERT(rpc_cmd_is_response(r));
    ASSERT_EQ(r->opaque, d->opaque);
    ASSERT_STR_EQ(rpc_cmd_remark(r), "no topic");
    ASSERT_STR_EQ(rpc_code_name(105), "GET_ROUTEINFO_BY_TOPIC");
    ASSERT_STR_EQ(rpc_lang_name(9), "GO");
    ASSERT_EQ(rpc_lang_from_name("PHP", 3), 10);
    rpc_cmd_free(c);
    rpc_cmd_free(d);
    rpc_cmd_free(r);
    rpc_cmd_free(NULL);
}

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

TEST_MAIN(test_roundtrip_binary, test_roundtrip_json, test_json_from_java, test_binary_golden,
          test_malformed_frames, test_malformed_binary_headers, test_malformed_json_headers,
          test_json_bare_keys, test_cmd_helpers, test_loopback_sync, test_loopback_async,
          test_loopback_oneway_and_unknown, test_loopback_server_notifies_client,
          test_loopback_timeout, test_loopback_peer_close, test_loopback_deferred_thread,
          test_loopback_refused, test_loopback_worker, test_loopback_output_limit)
