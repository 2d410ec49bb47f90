/* test_remoting_segs.c — unit tests for bodies given as segments (rpc_cmd_set_body_segs) over
 * loopback: the bytes arrive in order whatever mix of copied (small) and referenced (large)
 * pieces, the release runs once after the write, and it runs when the connection closes — by the
 * peer or by the server's shutdown — with the reply still queued. Also the flat forms of a
 * segmented body (rpc_cmd_encode, rpc_cmd_clone) and large frames read straight from the socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/mq_bytes.h"
#include "remoting/remoting.h"
#include "tests/unit/mq_test.h"

enum { C_SEGS = 1 };

#define SRC_SIZE (1u << 20)

static uint8_t src[SRC_SIZE]; /* what the segments point into */
static atomic_int releases, handled;

struct seg_body {
    uint32_t n;
    struct rpc_seg segs[];
};

static void release_body(void *arg)
{
    free(arg);
    atomic_fetch_add(&releases, 1);
}

/* The i-th piece of a body: small pieces (copied by the connection) between large ones
 * (referenced), at offsets that differ from piece to piece. */
static struct rpc_seg piece(uint32_t i, size_t left)
{
    size_t len = i % 3 == 1 ? 100 + i % 50 : (64u << 10) + i * 7;
    if (len > left)
        len = left;
    return (struct rpc_seg){src + (i * 4099u) % (SRC_SIZE - (200u << 10)), len};
}

static struct seg_body *make_body(size_t total)
{
    uint32_t n = 0;
    for (size_t left = total; left > 0; n++)
        left -= piece(n, left).len;
    struct seg_body *b = malloc(sizeof(*b) + n * sizeof(b->segs[0]));
    if (!b)
        return NULL;
    b->n = n;
    size_t left = total;
    for (uint32_t i = 0; i < n; i++) {
        b->segs[i] = piece(i, left);
        left -= b->segs[i].len;
    }
    return b;
}

/* Replies with a segmented body of ext "size" bytes. */
static int h_segs(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    int64_t size = 0;
    (void)rpc_cmd_ext_get_int64(req, "size", &size);
    struct seg_body *b = make_body((size_t)size);
    if (!b)
        return -ENOMEM;
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    rpc_cmd_set_body_segs(*resp, b->segs, b->n, release_body, b);
    atomic_fetch_add(&handled, 1);
    return RPC_REPLY;
}

static int start_server(struct rpc_server **srv)
{
    struct rpc_server_opts so = {.io_threads = 1, .max_pending_out = 256u << 20};
    int rc = rpc_server_new(&so, srv);
    if (rc)
        return rc;
    rpc_server_handle(*srv, C_SEGS, h_segs, NULL, 0);
    return rpc_server_start(*srv);
}

/* Waits up to 5 s for *v to reach want. */
static int wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 5000 && atomic_load(v) < want; i++)
        usleep(1000);
    return atomic_load(v);
}

/* Does resp carry the body make_body(total) describes? */
static int body_matches(const struct rpc_cmd *resp, size_t total)
{
    struct seg_body *b = make_body(total);
    int ok = b && resp->body_len == total;
    size_t pos = 0;
    for (uint32_t i = 0; ok && i < b->n; i++) {
        ok = memcmp(resp->body + pos, b->segs[i].p, b->segs[i].len) == 0;
        pos += b->segs[i].len;
    }
    free(b);
    return ok;
}

/* Starts the test server and a client; addr gets the server's address. */
static int start_pair(struct rpc_server **srv, struct rpc_client **cli, char *addr, size_t len)
{
    int rc = start_server(srv);
    if (rc == 0)
        rc = rpc_client_new(NULL, cli);
    if (rc == 0)
        snprintf(addr, len, "127.0.0.1:%d", rpc_server_port(*srv));
    return rc;
}

TEST(test_segs_roundtrip)
{
    for (size_t i = 0; i < SRC_SIZE; i++)
        src[i] = (uint8_t)(i * 7 + i / 251);
    struct rpc_server *srv;
    struct rpc_client *cli;
    char addr[32];
    ASSERT_OK(start_pair(&srv, &cli, addr, sizeof(addr)));
    atomic_store(&releases, 0);
    /* all copied (< 4 KiB), mixed, and several MiB (read by the client straight into the
     * frame) */
    size_t sizes[] = {0, 150, 3000, 70000, 300000, 5u << 20};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct rpc_cmd *req = rpc_cmd_new(C_SEGS), *resp = NULL;
        rpc_cmd_ext_set_int64(req, "size", (int64_t)sizes[k]);
        ASSERT_OK(rpc_client_call(cli, addr, req, 10000, &resp));
        ASSERT_EQ(resp->code, RPC_SUCCESS);
        ASSERT(body_matches(resp, sizes[k]));
        rpc_cmd_free(resp);
        rpc_cmd_free(req);
        ASSERT_EQ(wait_for(&releases, (int)k + 1), (int)k + 1); /* once each, none twice */
    }
    rpc_client_free(cli);
    rpc_server_free(srv);
    ASSERT_EQ(atomic_load(&releases), (int)(sizeof(sizes) / sizeof(sizes[0])));
}

static atomic_int pipe_ok, pipe_done;

static void pipe_cb(int err, struct rpc_cmd *resp, void *arg)
{
    size_t total = (size_t)(uintptr_t)arg;
    if (err == 0 && resp && resp->code == RPC_SUCCESS && body_matches(resp, total))
        atomic_fetch_add(&pipe_ok, 1);
    atomic_fetch_add(&pipe_done, 1);
    rpc_cmd_free(resp);
}

/* Many calls in flight on one connection, replies small (sent at once, or gathered with the
 * other replies of the same read) and large (queued by reference) interleaved: every reply
 * arrives whole with its own body. */
TEST(test_segs_pipelined_mix)
{
    struct rpc_server *srv;
    struct rpc_client *cli;
    char addr[32];
    ASSERT_OK(start_pair(&srv, &cli, addr, sizeof(addr)));
    size_t sizes[] = {0, 150, 3000, 70000, 40000, 200, 300000, 9000};
    enum { N = 400 };
    atomic_store(&pipe_ok, 0);
    atomic_store(&pipe_done, 0);
    for (int i = 0; i < N; i++) {
        size_t total = sizes[i % (int)(sizeof(sizes) / sizeof(sizes[0]))];
        struct rpc_cmd *req = rpc_cmd_new(C_SEGS);
        rpc_cmd_ext_set_int64(req, "size", (int64_t)total);
        ASSERT_OK(rpc_client_call_async(cli, addr, req, 10000, pipe_cb, (void *)(uintptr_t)total));
        rpc_cmd_free(req);
    }
    ASSERT_EQ(wait_for(&pipe_done, N), N);
    ASSERT_EQ(atomic_load(&pipe_ok), N);
    rpc_client_free(cli);
    rpc_server_free(srv);
}

TEST(test_segs_flat_forms)
{
    struct seg_body *b = make_body(200000);
    struct rpc_cmd *c = rpc_cmd_new(C_SEGS);
    atomic_store(&releases, 0);
    rpc_cmd_set_body_segs(c, b->segs, b->n, release_body, b);
    ASSERT_EQ(c->body_len, 200000);
    struct rpc_cmd *copy = rpc_cmd_clone(c);
    ASSERT_NE(copy, NULL);
    ASSERT_EQ(copy->nsegs, 0);
    ASSERT(body_matches(copy, 200000));
    struct mq_buf buf;
    mq_buf_init(&buf);
    ASSERT_OK(rpc_cmd_encode(c, RPC_SER_ROCKETMQ, &buf));
    struct rpc_cmd *dec = NULL;
    ASSERT_OK(rpc_frame_decode(buf.data, buf.len, NULL, &dec));
    ASSERT(body_matches(dec, 200000));
    rpc_cmd_free(dec);
    mq_buf_destroy(&buf);
    rpc_cmd_free(copy);
    ASSERT_EQ(atomic_load(&releases), 0);
    rpc_cmd_free(c);
    ASSERT_EQ(atomic_load(&releases), 1);
}

/* A raw client that asks for a reply far larger than the socket buffers and does not read. */
static void stuck_client(int port, size_t size, int *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    *out = fd;
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
    struct rpc_cmd *req = rpc_cmd_new(C_SEGS);
    rpc_cmd_ext_set_int64(req, "size", (int64_t)size);
    struct mq_buf b;
    mq_buf_init(&b);
    ASSERT_OK(rpc_cmd_encode(req, RPC_SER_ROCKETMQ, &b));
    ASSERT_EQ(send(fd, b.data, b.len, MSG_NOSIGNAL), (ssize_t)b.len);
    mq_buf_destroy(&b);
    rpc_cmd_free(req);
    uint8_t head[4];
    ASSERT_EQ(recv(fd, head, 4, MSG_WAITALL), 4); /* the reply is queued and flowing */
    ASSERT_EQ(mq_get_be32(head) + 4 > size, 1);
}

TEST(test_segs_release_on_close)
{
    struct rpc_server *srv;
    ASSERT_OK(start_server(&srv));
    atomic_store(&releases, 0);
    atomic_store(&handled, 0);
    /* 64 MiB cannot fit in the kernel's buffers: most of it stays queued by reference */
    size_t size = 64u << 20;
    int fd;
    stuck_client(rpc_server_port(srv), size, &fd);
    usleep(100000);
    ASSERT_EQ(atomic_load(&releases), 0);
    close(fd); /* the peer goes away: the queued pieces are dropped and the body released */
    ASSERT_EQ(wait_for(&releases, 1), 1);
    /* the server shutting down with a reply queued releases it too */
    stuck_client(rpc_server_port(srv), size, &fd);
    ASSERT_EQ(atomic_load(&releases), 1);
    rpc_server_free(srv);
    ASSERT_EQ(atomic_load(&releases), 2);
    ASSERT_EQ(atomic_load(&handled), 2);
    close(fd);
}

TEST_MAIN(test_segs_roundtrip, test_segs_pipelined_mix, test_segs_flat_forms,
          test_segs_release_on_close)
