/* rpc_conn.c — one remoting connection on an event loop: frames parsed from the bufferevent's
 * input, requests dispatched to handlers, responses handed to the owner (client), output
 * written with bodies by reference (small frames into an idle connection sent at once, or
 * gathered in a cork while the loop handles a read or a batch of tasks), a bound on unread
 * output, replies from any thread, and a close that defers freeing until the callback that
 * triggered it has returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>

#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "remoting/remoting_int.h"

#define BODY_COPY_MAX 4096 /* body pieces smaller than this are copied, larger ones referenced */
/* libevent reads at most 4 KiB per readiness event (EVBUFFER_MAX_READ), each behind an
 * epoll_wait and an ioctl(FIONREAD): a frame still missing more than this is read with recv()
 * straight into its own buffer instead — one syscall per socket buffer's worth, and no copy out
 * of the evbuffer. A 20 KB batch of 100 sends took five loop iterations (15 syscalls) before. */
#define DIRECT_READ_MIN 1024u
/* Frames up to this size (and segments) go out with one sendmsg() when nothing is queued. */
#define DIRECT_WRITE_MAX  (64u << 10)
#define DIRECT_WRITE_SEGS 8
#define CORK_MAX          (256u << 10) /* a cork this full is sent at once */
/* libevent's default of 16 KiB per writev made a 1 MiB pull reply take 64 loop iterations. */
#define MAX_SINGLE_WRITE (4u << 20)

static atomic_uint_fast64_t next_conn_id = 1;

struct rpc_conn *rpc_conn_ref(struct rpc_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

void rpc_conn_unref(struct rpc_conn *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        mq_buf_destroy(&c->cork);
        free(c);
    }
}

const char *rpc_conn_peer(const struct rpc_conn *c)
{
    return c->peer;
}

uint64_t rpc_conn_id(const struct rpc_conn *c)
{
    return c->id;
}

int rpc_conn_is_closed(const struct rpc_conn *c)
{
    return atomic_load(&c->closed);
}

void rpc_conn_set_user(struct rpc_conn *c, void *user)
{
    c->user = user;
}

void *rpc_conn_get_user(const struct rpc_conn *c)
{
    return c->user;
}

static void free_bev(struct rpc_conn *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        if (c->rd_frame && c->owner->max_frames_in)
            atomic_fetch_sub(&c->owner->frames_in, c->rd_len);
        free(c->rd_frame);
        c->rd_frame = NULL;
        rpc_conn_unref(c); /* the connection's reference to itself */
    }
}

void rpc__conn_close_now(struct rpc_conn *c, const char *why)
{
    if (atomic_exchange(&c->closed, 1))
        return;
    mq_debug("connection %llu (%s) closed: %s", (unsigned long long)c->id, c->peer, why);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    rpc_conn_ref(c);
    if (c->owner->on_close)
        c->owner->on_close(c->owner, c);
    if (c->in_cb == 0)
        free_bev(c);
    rpc_conn_unref(c);
}

static void leave_cb(struct rpc_conn *c)
{
    if (--c->in_cb == 0 && atomic_load(&c->closed))
        free_bev(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg);

/* Keeps a borrowed body alive while any of its pieces sits in an output buffer: the body's
 * release runs when the last referenced piece has been written or its buffer freed (a closed
 * connection). */
struct body_hold {
    atomic_int refs; /* referenced pieces queued, plus one while they are being added */
    void (*release)(void *arg);
    void *arg;
};

static void hold_put(struct body_hold *h)
{
    if (atomic_fetch_sub(&h->refs, 1) == 1) {
        h->release(h->arg);
        free(h);
    }
}

static void release_piece(const void *data, size_t len, void *extra)
{
    hold_put(extra);
}

static void free_frame(const void *data, size_t len, void *extra)
{
    free(extra);
}

/* Queues the bytes gathered in b (emptied). Into an empty output buffer they are copied;
 * otherwise b's block itself is queued: libevent sizes the chain evbuffer_add allocates after
 * a referenced one from that chain, so a 300-byte header after a 1 MiB body cost 2 MiB. */
static int queue_block(struct evbuffer *out, struct mq_buf *b)
{
    if (b->len == 0)
        return 0;
    if (evbuffer_get_length(out) == 0) {
        int rc = evbuffer_add(out, b->data, b->len);
        b->len = 0;
        return rc ? -ENOMEM : 0;
    }
    size_t len;
    uint8_t *p = mq_buf_steal(b, &len);
    if (evbuffer_add_reference(out, p, len, free_frame, p) != 0) {
        free(p);
        return -ENOMEM;
    }
    return 0;
}

/* cmd's body as segments: its own, or the flat body as one (in *one). *n gets the count. */
static const struct rpc_seg *body_segs(const struct rpc_cmd *cmd, struct rpc_seg *one, uint32_t *n)
{
    *one = (struct rpc_seg){cmd->body, cmd->body_len};
    *n = cmd->nsegs ? cmd->nsegs : 1;
    return cmd->nsegs ? cmd->segs : one;
}

/* Queues b (the encoded header) and cmd's body (flat or segments): pieces of BODY_COPY_MAX
 * bytes and more by reference, smaller ones copied into b's blocks. Takes over cmd's release
 * when a piece is referenced. */
static int add_frame(struct evbuffer *out, struct mq_buf *b, struct rpc_cmd *cmd)
{
    struct rpc_seg one;
    uint32_t n;
    const struct rpc_seg *segs = body_segs(cmd, &one, &n);
    struct body_hold *h = NULL;
    int rc = 0, by_ref = cmd->body_release != NULL; /* borrowed bytes: a release says when done */
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (segs[i].len < BODY_COPY_MAX || !by_ref) {
            rc = mq_buf_append(b, segs[i].p, segs[i].len);
            continue;
        }
        if ((rc = queue_block(out, b)) != 0)
            break;
        if (!h) {
            if (!(h = malloc(sizeof(*h)))) {
                rc = -ENOMEM;
                break;
            }
            atomic_init(&h->refs, 1);
            h->release = cmd->body_release;
            h->arg = cmd->body_release_arg;
            cmd->body_release = NULL; /* the hold releases it now */
        }
        atomic_fetch_add(&h->refs, 1);
        if (evbuffer_add_reference(out, segs[i].p, segs[i].len, release_piece, h) != 0) {
            atomic_fetch_sub(&h->refs, 1);
            rc = -ENOMEM;
        }
    }
    if (rc == 0)
        rc = queue_block(out, b);
    if (h)
        hold_put(h);
    return rc ? -ENOMEM : 0;
}

/* After queueing: a peer that does not read is closed once the output passes the bound. */
static int check_pending(struct rpc_conn *c, struct evbuffer *out)
{
    if (evbuffer_get_length(out) > c->owner->max_pending_out) {
        mq_warn("%s: %zu bytes pending output, peer not reading: closing", c->peer,
                evbuffer_get_length(out));
        rpc__conn_close_now(c, "output limit");
        return -ENOBUFS;
    }
    return 0;
}

/* One non-blocking send of iov straight to c's socket. Returns the bytes written, 0 on any
 * error (the bufferevent meets it and reports it). Bytes that left mean the connection is
 * established even if libevent has not reported BEV_EVENT_CONNECTED yet (its write event, which
 * reports it, may not have run): a close after them is a reset, not a refused connect. */
static size_t sock_send(struct rpc_conn *c, struct iovec *iov, size_t cnt)
{
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = cnt};
    ssize_t w = sendmsg(bufferevent_getfd(c->bev), &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0)
        return 0;
    c->connected = 1;
    return (size_t)w;
}

/* A frame as send_small takes it: its encoded head and its body's segments (n ≤
 * DIRECT_WRITE_SEGS), blen bytes in all. */
struct small_frame {
    const uint8_t *head;
    size_t hlen;
    const struct rpc_seg *segs;
    uint32_t n;
    size_t blen;
};

/* Writes f with one sendmsg(); returns the bytes written (0 on any error). */
static size_t write_now(struct rpc_conn *c, const struct small_frame *f)
{
    const struct rpc_seg *segs = f->segs;
    uint32_t n = f->n;
    struct iovec iov[DIRECT_WRITE_SEGS + 1];
    size_t cnt = 0;
    iov[cnt++] = (struct iovec){(void *)f->head, f->hlen};
    for (uint32_t i = 0; i < n; i++) {
        if (segs[i].len == 0)
            continue;
        iov[cnt++] = (struct iovec){(void *)segs[i].p, segs[i].len};
    }
    return sock_send(c, iov, cnt);
}

/* Queues the bytes of f past the first skip (a partial write_now), copied. */
static int add_rest(struct evbuffer *out, const struct small_frame *f, size_t skip)
{
    int rc = 0;
    for (uint32_t i = 0; i <= f->n && rc == 0; i++) {
        const uint8_t *p = i ? f->segs[i - 1].p : f->head;
        size_t len = i ? f->segs[i - 1].len : f->hlen;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        rc = evbuffer_add(out, p + skip, len - skip);
        skip = 0;
    }
    return rc ? -ENOMEM : 0;
}

/* Moves the corked bytes into the output buffer (before a frame that goes there). */
static int spill_cork(struct rpc_conn *c, struct evbuffer *out)
{
    if (c->cork.len == 0)
        return 0;
    int rc = evbuffer_add(out, c->cork.data, c->cork.len);
    c->cork.len = 0;
    return rc ? -ENOMEM : 0;
}

/* Sends the corked bytes: one send() into an idle connection, the rest (or all, behind queued
 * output) through the output buffer. */
static void flush_cork(struct rpc_conn *c)
{
    if (c->cork.len == 0)
        return;
    if (atomic_load(&c->closed) || !c->bev) {
        c->cork.len = 0;
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t w = 0;
    if (evbuffer_get_length(out) == 0) {
        struct iovec iov = {c->cork.data, c->cork.len};
        w = sock_send(c, &iov, 1);
    }
    if (w < c->cork.len && evbuffer_add(out, c->cork.data + w, c->cork.len - w) != 0) {
        c->cork.len = 0;
        rpc__conn_close_now(c, "out of memory");
        return;
    }
    c->cork.len = 0;
}

static void corked(struct rpc_conn *c);

/* Gathers a small frame into the connection's cork. Returns 0 or -ENOMEM. */
static int cork_frame(struct rpc_conn *c, const struct small_frame *f)
{
    size_t before = c->cork.len;
    int rc = mq_buf_append(&c->cork, f->head, f->hlen);
    for (uint32_t i = 0; i < f->n && rc == 0; i++)
        if (f->segs[i].len)
            rc = mq_buf_append(&c->cork, f->segs[i].p, f->segs[i].len);
    if (rc) {
        c->cork.len = before;
        return -ENOMEM;
    }
    corked(c);
    return 0;
}

/* After bytes were added to c's cork: lists c for the uncork, or sends a full cork now. */
static void corked(struct rpc_conn *c)
{
    if (!c->in_cork_list) {
        c->in_cork_list = 1;
        c->cork_next = c->loop->cork_list;
        c->loop->cork_list = rpc_conn_ref(c);
    }
    if (c->cork.len >= CORK_MAX)
        flush_cork(c);
}

void rpc__cork(struct rpc__loop *loop)
{
    loop->corked++;
}

void rpc__uncork(struct rpc__loop *loop)
{
    if (--loop->corked > 0)
        return;
    while (loop->cork_list) {
        struct rpc_conn *c = loop->cork_list;
        loop->cork_list = c->cork_next;
        c->cork_next = NULL;
        c->in_cork_list = 0;
        flush_cork(c);
        rpc_conn_unref(c);
    }
}

/* Into an idle connection a small frame is written at once with one sendmsg() from the loop
 * thread — or, while the loop is corked, gathered with the others of the same read or task
 * batch and sent with them at the uncork: through the bufferevent each reply cost arming and
 * disarming the write event (two epoll_ctl) and a loop iteration. A partial write queues the
 * rest, copied (small frames only). Returns 1 when f was taken, 0 when it goes through the
 * output buffer as usual (too big, output queued, another thread, or nothing could be
 * written), -ENOMEM after closing the connection. */
static int send_small(struct rpc_conn *c, struct evbuffer *out, const struct small_frame *f)
{
    if (evbuffer_get_length(out) != 0 || f->hlen + f->blen > DIRECT_WRITE_MAX ||
        f->n > DIRECT_WRITE_SEGS || !rpc__loop_on_thread(c->loop))
        return 0;
    int rc = 0;
    if (c->loop->corked) {
        rc = cork_frame(c, f);
    } else {
        size_t w = c->cork.len ? 0 : write_now(c, f); /* corked bytes go first */
        if (w == 0)
            return 0;
        if (w < f->hlen + f->blen)
            rc = add_rest(out, f, w); /* half a frame sent: the rest must follow */
    }
    if (rc) {
        rpc__conn_close_now(c, "out of memory");
        return -ENOMEM;
    }
    return 1;
}

int rpc__conn_send_raw(struct rpc_conn *c, uint8_t *frame, size_t len)
{
    if (atomic_load(&c->closed)) {
        free(frame);
        return -ENOTCONN;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct small_frame f = {frame, len, NULL, 0, 0};
    int rc = send_small(c, out, &f);
    if (rc != 0) {
        free(frame);
        return rc < 0 ? rc : 0;
    }
    if (spill_cork(c, out) != 0) {
        free(frame);
        rpc__conn_close_now(c, "out of memory");
        return -ENOMEM;
    }
    if (evbuffer_add_reference(out, frame, len, free_frame, frame) != 0) {
        free(frame);
        return -ENOMEM;
    }
    return check_pending(c, out);
}

int rpc__conn_send_raw_ref(struct rpc_conn *c, uint8_t *head, size_t hlen, const void *body,
                           size_t blen, void (*release)(void *arg), void *arg)
{
    struct body_hold *h = malloc(sizeof(*h));
    if (!h) {
        free(head);
        release(arg);
        return -ENOMEM;
    }
    atomic_init(&h->refs, 1); /* the body's piece, once queued */
    h->release = release;
    h->arg = arg;
    if (atomic_load(&c->closed)) {
        free(head);
        hold_put(h);
        return -ENOTCONN;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (spill_cork(c, out) != 0) { /* frames corked earlier go first */
        free(head);
        hold_put(h);
        rpc__conn_close_now(c, "out of memory");
        return -ENOMEM;
    }
    if (evbuffer_add_reference(out, head, hlen, free_frame, head) != 0) {
        free(head);
        hold_put(h);
        return -ENOMEM;
    }
    if (evbuffer_add_reference(out, body, blen, release_piece, h) != 0) {
        hold_put(h);
        rpc__conn_close_now(c, "out of memory"); /* half a frame is queued: the stream is lost */
        return -ENOMEM;
    }
    return check_pending(c, out);
}

int rpc__conn_send(struct rpc_conn *c, struct rpc_cmd *cmd, int ser)
{
    int rc = -ENOTCONN;
    struct mq_buf b;
    mq_buf_init(&b);
    if (atomic_load(&c->closed))
        goto out;
    if ((rc = rpc_cmd_encode_head(cmd, ser, &b)) != 0) {
        mq_error("%s: cannot encode %s command: %s", c->peer, rpc_code_name(cmd->code),
                 mq_strerror(rc));
        goto out;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t before = evbuffer_get_length(out);
    struct rpc_seg one;
    struct small_frame f = {b.data, b.len, NULL, 0, cmd->body_len};
    f.segs = body_segs(cmd, &one, &f.n);
    if ((rc = send_small(c, out, &f)) != 0) {
        rc = rc < 0 ? rc : 0;
        goto out;
    }
    if (spill_cork(c, out) != 0) {
        rpc__conn_close_now(c, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = add_frame(out, &b, cmd)) != 0) {
        if (evbuffer_get_length(out) != before) /* half a frame is queued: the stream is lost */
            rpc__conn_close_now(c, "out of memory");
        goto out;
    }
    rc = check_pending(c, out);
out:
    mq_buf_destroy(&b);
    rpc_cmd_free(cmd);
    return rc;
}

static void reply_task(void *a, void *b)
{
    struct rpc_conn *c = a;
    struct rpc_cmd *resp = b;
    rpc__conn_send(c, resp, resp->serialize);
    rpc_conn_unref(c);
}

/* Sends cmd (taken) in cmd->serialize on the connection's loop, from any thread. */
static int post_send(struct rpc_conn *c, struct rpc_cmd *cmd)
{
    if (atomic_load(&c->closed)) {
        rpc_cmd_free(cmd);
        return -ENOTCONN;
    }
    if (rpc__loop_on_thread(c->loop))
        return rpc__conn_send(c, cmd, cmd->serialize);
    rpc_conn_ref(c);
    int rc = rpc__loop_post(c->loop, reply_task, c, cmd);
    if (rc) {
        rpc_cmd_free(cmd);
        rpc_conn_unref(c);
    }
    return rc;
}

int rpc_conn_reply(struct rpc_conn *c, struct rpc_cmd *resp)
{
    if (!resp)
        return -EINVAL;
    resp->flag |= RPC_FLAG_RESPONSE;
    return post_send(c, resp);
}

int rpc_conn_send_oneway(struct rpc_conn *c, struct rpc_cmd *req)
{
    if (!req)
        return -EINVAL;
    req->flag = (req->flag | RPC_FLAG_ONEWAY) & ~RPC_FLAG_RESPONSE;
    req->serialize = (uint8_t)atomic_load(&c->peer_ser);
    return post_send(c, req);
}

static void drained_cb(struct bufferevent *bev, void *arg)
{
    struct rpc_conn *c = arg;
    c->in_cb++;
    rpc__conn_close_now(c, "closed by the application after flushing its output");
    leave_cb(c);
}

/* Graceful close: stop reading, let queued output drain (at most 2 s), then close. */
static void close_graceful(struct rpc_conn *c)
{
    if (atomic_load(&c->closed) || c->draining)
        return;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        rpc__conn_close_now(c, "closed by the application");
        return;
    }
    c->draining = 1;
    struct timeval tv = {2, 0};
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setcb(c->bev, NULL, drained_cb, event_cb, c);
    bufferevent_set_timeouts(c->bev, NULL, &tv);
}

static void close_task(void *a, void *b)
{
    struct rpc_conn *c = a;
    close_graceful(c);
    rpc_conn_unref(c);
}

void rpc_conn_close(struct rpc_conn *c)
{
    if (atomic_load(&c->closed))
        return;
    if (rpc__loop_on_thread(c->loop)) {
        close_graceful(c);
        return;
    }
    rpc_conn_ref(c);
    if (rpc__loop_post(c->loop, close_task, c, NULL) != 0)
        rpc_conn_unref(c);
}

void rpc__dispatch(struct rpc_conn *c, const struct rpc__handler *h, struct rpc_cmd *req)
{
    struct rpc_cmd *resp = NULL;
    if (!h) {
        resp = rpc_cmd_new_response(req, RPC_REQUEST_CODE_NOT_SUPPORTED, NULL);
        if (resp)
            rpc_cmd_set_remarkf(resp, " request type %d not supported", req->code);
    } else {
        int rc = h->fn(c, req, &resp, h->arg);
        if (rc == RPC_DEFER) {
            resp = NULL;
        } else if (rc < 0) {
            rpc_cmd_free(resp);
            resp = rpc_cmd_new_response(req, RPC_SYSTEM_ERROR, mq_strerror(rc));
        }
    }
    if (resp && rpc_cmd_is_oneway(req)) {
        rpc_cmd_free(resp);
    } else if (resp) {
        resp->opaque = req->opaque;
        resp->serialize = req->serialize;
        rpc_conn_reply(c, resp);
    }
    rpc_cmd_free(req);
}

static void handle_cmd(struct rpc_conn *c, struct rpc_cmd *cmd)
{
    struct rpc__owner *o = c->owner;
    if (rpc_cmd_is_response(cmd)) {
        if (o->on_response)
            o->on_response(o, c, cmd);
        else
            rpc_cmd_free(cmd);
        return;
    }
    const struct rpc__handler *h = o->lookup ? o->lookup(o, cmd->code) : NULL;
    if (h && (h->flags & RPC_HANDLER_WORKER) && o->to_worker) {
        o->to_worker(o, h, c, cmd);
        return;
    }
    rpc__dispatch(c, h, cmd);
}

/* Completes c->rd_frame, first from what the evbuffer already holds, then with recv() on the
 * socket. Returns 1 when the frame is whole, 0 when the socket has no more for now, -1 when
 * the connection was closed (EOF or error). */
static int fill_frame(struct rpc_conn *c, struct evbuffer *in)
{
    size_t have = evbuffer_get_length(in), need = c->rd_len - c->rd_have;
    if (have > 0) {
        int n = evbuffer_remove(in, c->rd_frame + c->rd_have, have < need ? have : need);
        if (n > 0)
            c->rd_have += (size_t)n;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    while (c->rd_have < c->rd_len) {
        ssize_t n = recv(fd, c->rd_frame + c->rd_have, c->rd_len - c->rd_have, 0);
        if (n > 0) {
            c->rd_have += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            rpc__conn_close_now(c, n == 0 ? "peer closed" : "socket error");
            return -1;
        }
    }
    return 1;
}

/* Takes the next whole frame off the connection into a malloc()ed block. Returns 1 with
 * *frame and *flen, 0 when more bytes are needed, -1 when the connection was closed. */
static int next_frame(struct rpc_conn *c, struct evbuffer *in, uint8_t **frame, size_t *flen)
{
    if (!c->rd_frame) {
        uint8_t head[4];
        size_t avail = evbuffer_get_length(in);
        if (avail < 4)
            return 0;
        evbuffer_copyout(in, head, 4);
        int rc = rpc_frame_check(head, avail, c->owner->max_frame, flen);
        if (rc && rc != -EAGAIN) {
            mq_warn("%s: bad frame length %u (%s): closing", c->peer, mq_get_be32(head),
                    mq_strerror(rc));
            rpc__conn_close_now(c, "bad frame length");
            return -1;
        }
        size_t want = rc ? (size_t)mq_get_be32(head) + 4 : *flen;
        if (rc && want - avail < DIRECT_READ_MIN)
            return 0;
        /* A frame read over several calls holds its whole size meanwhile: many peers that
         * each begin one and stall would hold gigabytes without this bound. */
        size_t o = c->owner->max_frames_in;
        if (rc && o && atomic_fetch_add(&c->owner->frames_in, want) + want > o) {
            atomic_fetch_sub(&c->owner->frames_in, want);
            mq_warn("%s: a %zu-byte frame would put the frames being received past %zu MiB: "
                    "closing",
                    c->peer, want, o >> 20);
            rpc__conn_close_now(c, "frames being received over the limit");
            return -1;
        }
        if (!(*frame = malloc(want))) {
            if (rc && o)
                atomic_fetch_sub(&c->owner->frames_in, want);
            mq_error("%s: out of memory for a %zu-byte frame: closing", c->peer, want);
            rpc__conn_close_now(c, "out of memory");
            return -1;
        }
        if (!rc) {
            evbuffer_remove(in, *frame, want);
            return 1;
        }
        c->rd_frame = *frame;
        c->rd_len = want;
        c->rd_have = 0;
    }
    int rc = fill_frame(c, in);
    if (rc <= 0)
        return rc;
    *frame = c->rd_frame;
    *flen = c->rd_len;
    c->rd_frame = NULL;
    if (c->owner->max_frames_in)
        atomic_fetch_sub(&c->owner->frames_in, c->rd_len);
    return 1;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct rpc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->in_cb++;
    c->connected = 1;   /* bytes arrived: established, whatever libevent reported so far */
    rpc__cork(c->loop); /* the replies to this read's requests leave together */
    while (!atomic_load(&c->closed) && !c->draining) {
        uint8_t *frame;
        size_t flen;
        if (next_frame(c, in, &frame, &flen) <= 0)
            break;
        struct rpc_cmd *cmd;
        int rc = rpc_frame_decode(frame, flen, frame, &cmd);
        if (rc) {
            mq_warn("%s: malformed frame (%zu bytes): %s: closing", c->peer, flen, mq_strerror(rc));
            rpc__conn_close_now(c, "malformed frame");
            break;
        }
        atomic_store(&c->peer_ser, cmd->serialize);
        handle_cmd(c, cmd);
    }
    if (c->owner->after_read)
        c->owner->after_read(c->owner, c);
    rpc__uncork(c->loop);
    leave_cb(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct rpc_conn *c = arg;
    c->in_cb++;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        bufferevent_set_timeouts(bev, NULL, NULL); /* the connect timeout is over */
    } else if (what & BEV_EVENT_EOF) {
        rpc__conn_close_now(c, "peer closed");
    } else if (what & BEV_EVENT_TIMEOUT) {
        c->timed_out = 1;
        rpc__conn_close_now(c, (what & BEV_EVENT_READING) ? "idle timeout"
                               : c->connected             ? "write timeout"
                                                          : "connect timeout");
    } else if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();
        mq_debug("%s: socket error: %s", c->peer, evutil_socket_error_to_string(err));
        rpc__conn_close_now(c, "socket error");
    }
    leave_cb(c);
}

int rpc__conn_new(struct rpc__loop *loop, struct rpc__owner *owner, struct bufferevent *bev,
                  const char *peer, struct rpc_conn **out)
{
    struct rpc_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    atomic_init(&c->refs, 1);
    atomic_init(&c->closed, 0);
    atomic_init(&c->peer_ser, RPC_SER_JSON);
    c->id = atomic_fetch_add(&next_conn_id, 1);
    c->loop = loop;
    c->owner = owner;
    c->bev = bev;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    bufferevent_setcb(bev, read_cb, NULL, event_cb, c);
    (void)bufferevent_set_max_single_write(bev, MAX_SINGLE_WRITE);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    *out = c;
    return 0;
}
