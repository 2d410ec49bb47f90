/* rpc_client.c — the remoting client: one event loop thread, one connection per address
 * (opened on first use, reopened on the next call after it breaks), calls correlated by opaque
 * in a hash table, a timer per pending call, and every pending call of a broken connection
 * failed at once. Caller threads encode their request and hand it over (queue + wakeup).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event_struct.h>

#include "common/mq_bytes.h"
#include "common/mq_log.h"
#include "remoting/remoting_int.h"

#define WAKE_WORDS          4 /* x 32 bits: sync callers that sleep without sharing a bit */
#define NBUCKETS            4096
#define MAX_CLIENT_HANDLERS 32
#define ADDR_MAX            64

struct cconn;

/* A request handed to the loop thread and, once sent, the pending call: one object from the
 * caller's submit to the completion (the loop's task node and the call's timer inside). A
 * sync call's lives on the caller's stack; an async or oneway one is malloc()ed and freed by
 * the loop when done. */
struct call {
    struct rpc__task node;
    struct call *hnext;         /* hash chain */
    struct call *cprev, *cnext; /* the connection's pending list */
    struct cconn *cc;
    struct rpc_client *cli;
    char addr[ADDR_MAX];
    uint8_t *frame; /* the whole frame, or only its head when body_release is set */
    size_t len;
    const void *body; /* the body by reference (taken over from the request) */
    size_t body_len;
    void (*body_release)(void *arg);
    void *body_arg;
    int32_t opaque;
    int timeout_ms;
    int oneway;
    int on_stack; /* a sync call's: not freed */
    int timer_set;
    rpc_call_cb cb;
    void *arg;
    struct event timer;
};

struct cconn {
    struct cconn *next;
    char addr[ADDR_MAX];
    struct rpc_conn *conn;
    struct call *pend;
};

/* A request's body at least this long with a release is sent by reference, not copied. */
#define BODY_REF_MIN (64u << 10)

struct rpc_client {
    struct rpc__owner owner; /* first: owner callbacks get it */
    struct rpc_client_opts opts;
    struct rpc__loop loop;
    atomic_int next_opaque;
    int closing;
    struct cconn *conns;
    struct call *buckets[NBUCKETS];
    struct {
        int32_t code;
        struct rpc__handler h;
    } handlers[MAX_CLIENT_HANDLERS];
    int nhandlers;
    rpc_close_fn close_fn;
    void *close_arg;
    struct sync_wait *wakes; /* answered sync callers to wake after this read (loop thread) */
    atomic_uint wake_word[WAKE_WORDS]; /* sync callers sleep here, each on its own bit */
};

static struct call **bucket(struct rpc_client *cli, int32_t opaque)
{
    return &cli->buckets[(uint32_t)opaque % NBUCKETS];
}

static void call_free(struct call *p)
{
    if (!p->on_stack)
        free(p);
}

/* Unlinks a pending call from the hash and its connection; stops its timer. */
static void pending_unlink(struct rpc_client *cli, struct call *p)
{
    struct call **pp = bucket(cli, p->opaque);
    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = p->hnext;
    if (p->cprev)
        p->cprev->cnext = p->cnext;
    else if (p->cc)
        p->cc->pend = p->cnext;
    if (p->cnext)
        p->cnext->cprev = p->cprev;
    if (p->timer_set)
        event_del(&p->timer);
}

static void pending_finish(struct rpc_client *cli, struct call *p, int err, struct rpc_cmd *resp)
{
    pending_unlink(cli, p);
    int on_stack = p->on_stack; /* a sync call's ends with its callback */
    p->cb(err, resp, p->arg);
    if (!on_stack)
        free(p);
}

static const struct rpc__handler *cli_lookup(struct rpc__owner *o, int32_t code)
{
    struct rpc_client *cli = (struct rpc_client *)o;
    for (int i = 0; i < cli->nhandlers; i++)
        if (cli->handlers[i].code == code)
            return &cli->handlers[i].h;
    return NULL;
}

static void cli_on_response(struct rpc__owner *o, struct rpc_conn *c, struct rpc_cmd *resp)
{
    struct rpc_client *cli = (struct rpc_client *)o;
    struct call *p = *bucket(cli, resp->opaque);
    while (p && p->opaque != resp->opaque)
        p = p->hnext;
    if (!p) {
        mq_debug("%s: response to unknown or expired call %d dropped", c->peer, resp->opaque);
        rpc_cmd_free(resp);
        return;
    }
    pending_finish(cli, p, 0, resp);
}

static void cli_on_close(struct rpc__owner *o, struct rpc_conn *c)
{
    struct rpc_client *cli = (struct rpc_client *)o;
    struct cconn *cc = c->owner_data, **pp = &cli->conns;
    int err = cli->closing   ? -ECANCELED
              : c->timed_out ? -ETIMEDOUT
              : c->connected ? -ECONNRESET
                             : -ECONNREFUSED;
    while (cc->pend)
        pending_finish(cli, cc->pend, err, NULL);
    while (*pp && *pp != cc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = cc->next;
    if (cli->close_fn)
        cli->close_fn(c, cli->close_arg);
    free(cc);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct call *p = arg;
    pending_finish(p->cli, p, -ETIMEDOUT, NULL);
}

/* "ip:port", "[v6]:port" or "localhost:port". */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[ADDR_MAX];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
        return -EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *h = host, *end;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = '\0';
        h++;
    }
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port <= 0 || port > 65535)
        return -EINVAL;
    return rpc__sockaddr(h, (int)port, ss, sslen);
}

static int get_conn(struct rpc_client *cli, const char *addr, struct cconn **out)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int rc;
    for (struct cconn *cc = cli->conns; cc; cc = cc->next)
        if (strcmp(cc->addr, addr) == 0 && !rpc_conn_is_closed(cc->conn)) {
            *out = cc;
            return 0;
        }
    if ((rc = parse_addr(addr, &ss, &sslen)) != 0)
        return rc;
    struct cconn *cc = calloc(1, sizeof(*cc));
    struct bufferevent *bev = bufferevent_socket_new(cli->loop.base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!cc || !bev) {
        rc = -ENOMEM;
        goto fail;
    }
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, (int)sslen) != 0) {
        rc = -ECONNREFUSED;
        goto fail;
    }
    int one = 1;
    setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {cli->opts.connect_timeout_ms / 1000,
                         (cli->opts.connect_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(bev, NULL, &tv);
    snprintf(cc->addr, sizeof(cc->addr), "%s", addr);
    if ((rc = rpc__conn_new(&cli->loop, &cli->owner, bev, addr, &cc->conn)) != 0)
        goto fail;
    cc->conn->owner_data = cc;
    cc->next = cli->conns;
    cli->conns = cc;
    *out = cc;
    return 0;
fail:
    if (bev)
        bufferevent_free(bev);
    free(cc);
    return rc;
}

static void call_task_run(void *a, void *b)
{
    struct rpc_client *cli = a;
    struct call *t = b;
    struct cconn *cc = NULL;
    int rc = cli->closing ? -ECANCELED : get_conn(cli, t->addr, &cc);
    if (rc)
        goto fail;
    uint8_t *frame = t->frame;
    size_t len = t->len;
    const void *body = t->body;
    size_t body_len = t->body_len;
    void (*release)(void *) = t->body_release;
    void *body_arg = t->body_arg;
    struct rpc_conn *conn = cc->conn;
    if (!t->oneway) {
        t->cc = cc;
        t->cli = cli;
        struct call **bp = bucket(cli, t->opaque);
        t->hnext = *bp;
        *bp = t;
        t->cprev = NULL;
        t->cnext = cc->pend;
        if (cc->pend)
            cc->pend->cprev = t;
        cc->pend = t;
        evtimer_assign(&t->timer, cli->loop.base, timeout_cb, t);
        t->timer_set = 1;
        struct timeval tv = {t->timeout_ms / 1000, (t->timeout_ms % 1000) * 1000};
        evtimer_add(&t->timer, &tv);
    } else {
        call_free(t);
    }
    /* On an output overflow the connection closes and fails the call (and the others) itself:
     * t may be gone after these. */
    if (release)
        rpc__conn_send_raw_ref(conn, frame, len, body, body_len, release, body_arg);
    else
        rpc__conn_send_raw(conn, frame, len);
    return;
fail:
    free(t->frame);
    if (t->body_release)
        t->body_release(t->body_arg);
    int on_stack = t->on_stack;
    if (t->cb && !t->oneway)
        t->cb(rc, NULL, t->arg);
    if (!on_stack)
        free(t);
}

/* A frame's size before it is encoded (binary header; exact unless values were replaced),
 * so that the frame is one allocation. */
static size_t frame_estimate(const struct rpc_cmd *req)
{
    return RPC_FRAME_PREFIX + 17 + 4 + req->strs_len + 4 * (size_t)req->ext_n +
           (req->body ? req->body_len : 0) + (req->nsegs ? req->body_len : 0);
}

/* Encodes req into t (filled by the caller: cb, arg, on_stack) and posts it. */
static int submit(struct rpc_client *cli, const char *addr, struct rpc_cmd *req, int timeout_ms,
                  int oneway, struct call *t)
{
    struct mq_buf b;
    int rc;
    size_t alen = addr ? strlen(addr) : ADDR_MAX;
    if (alen >= ADDR_MAX || timeout_ms < 0)
        return -EINVAL;
    mq_buf_init(&b);
    req->opaque = atomic_fetch_add(&cli->next_opaque, 1);
    req->flag &= ~RPC_FLAG_RESPONSE;
    if (oneway)
        req->flag |= RPC_FLAG_ONEWAY;
    int by_ref = req->body && req->body_release && req->nsegs == 0 && req->body_len >= BODY_REF_MIN;
    /* One block for the frame, at least as big as a command's: the loop thread frees the
     * frame and allocates the reply's command, the caller frees that and allocates the next
     * frame, so with blocks of one size class both find theirs in their malloc thread cache
     * instead of locking each other's arenas. */
    size_t est = frame_estimate(req) - (by_ref ? req->body_len : 0);
    if (est < rpc__cmd_block_size())
        est = rpc__cmd_block_size();
    if (!(b.data = malloc(est)))
        return -ENOMEM;
    b.cap = est;
    rc = by_ref ? rpc_cmd_encode_head(req, cli->opts.serialize, &b)
                : rpc_cmd_encode(req, cli->opts.serialize, &b);
    if (rc)
        goto fail;
    if (by_ref) {
        t->body = req->body;
        t->body_len = req->body_len;
        t->body_release = req->body_release;
        t->body_arg = req->body_release_arg;
    }
    memcpy(t->addr, addr, alen + 1);
    t->opaque = req->opaque;
    t->timeout_ms = timeout_ms;
    t->oneway = oneway;
    t->frame = mq_buf_steal(&b, &t->len);
    t->node.fn = call_task_run;
    t->node.a = cli;
    t->node.b = t;
    rc = rpc__loop_post_node(&cli->loop, &t->node);
    if (rc) {
        free(t->frame);
        t->body_release = NULL;
        return rc; /* the request still owns its body */
    }
    if (by_ref)
        req->body_release = NULL; /* the task releases the body now */
    return 0;
fail:
    mq_buf_destroy(&b);
    return rc;
}

static int submit_alloc(struct rpc_client *cli, const char *addr, struct rpc_cmd *req,
                        int timeout_ms, int oneway, rpc_call_cb cb, void *arg)
{
    struct call *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->cb = cb;
    t->arg = arg;
    int rc = submit(cli, addr, req, timeout_ms, oneway, t);
    if (rc)
        free(t);
    return rc;
}

int rpc_client_call_async(struct rpc_client *cli, const char *addr, struct rpc_cmd *req,
                          int timeout_ms, rpc_call_cb cb, void *arg)
{
    if (!cb)
        return -EINVAL;
    return submit_alloc(cli, addr, req, timeout_ms, 0, cb, arg);
}

int rpc_client_oneway(struct rpc_client *cli, const char *addr, struct rpc_cmd *req)
{
    return submit_alloc(cli, addr, req, 0, 1, NULL, NULL);
}

/* A sync caller's wait. Callers sleep on the client's futex words, each thread on its own bit
 * (FUTEX_WAIT_BITSET), so that the loop thread wakes all the callers one read answered with
 * one FUTEX_WAKE_BITSET per word: one system call and a burst of wakeups to the other CPU
 * that share their interrupts, where a semaphore per caller took a call each. A caller whose
 * word moved, or who shares its bit (more than 32 x WAKE_WORDS callers at once), looks at its
 * own done flag and sleeps again. */
struct sync_wait {
    atomic_int done;
    int err;
    struct rpc_cmd *resp;
    struct rpc_client *cli;
    struct sync_wait *next;
    unsigned word, bit;
};

static atomic_uint next_slot;
static _Thread_local int my_slot = -1;

static void wake_bits(struct rpc_client *cli, unsigned word, unsigned bits)
{
    atomic_fetch_add(&cli->wake_word[word], 1);
    syscall(SYS_futex, (unsigned *)&cli->wake_word[word], FUTEX_WAKE_BITSET_PRIVATE, INT_MAX, NULL,
            NULL, bits);
}

/* A response (always inside the loop's read of it) wakes its caller at the end of that read,
 * together with the other callers answered by it. Errors (timeout, close, shutdown) wake at
 * once. */
static void sync_cb(int err, struct rpc_cmd *resp, void *arg)
{
    struct sync_wait *w = arg;
    w->err = err;
    w->resp = resp;
    if (!err && resp) {
        w->next = w->cli->wakes;
        w->cli->wakes = w;
        return;
    }
    struct rpc_client *cli = w->cli; /* w may be gone once done is set */
    unsigned word = w->word, bit = w->bit;
    atomic_store(&w->done, 1);
    wake_bits(cli, word, bit);
}

static void cli_after_read(struct rpc__owner *o, struct rpc_conn *c)
{
    struct rpc_client *cli = (struct rpc_client *)o;
    struct sync_wait *w = cli->wakes;
    unsigned mask[WAKE_WORDS] = {0};
    cli->wakes = NULL;
    while (w) {
        struct sync_wait *next = w->next; /* w may be gone once done is set */
        mask[w->word] |= w->bit;
        atomic_store(&w->done, 1);
        w = next;
    }
    for (unsigned i = 0; i < WAKE_WORDS; i++)
        if (mask[i])
            wake_bits(cli, i, mask[i]);
}

int rpc_client_call(struct rpc_client *cli, const char *addr, struct rpc_cmd *req, int timeout_ms,
                    struct rpc_cmd **resp)
{
    struct sync_wait w = {.err = 0, .cli = cli};
    *resp = NULL;
    if (rpc__loop_on_thread(&cli->loop))
        return -EDEADLK;
    if (my_slot < 0)
        my_slot = (int)(atomic_fetch_add(&next_slot, 1) % (32 * WAKE_WORDS));
    w.word = (unsigned)my_slot / 32;
    w.bit = 1u << (my_slot % 32);
    atomic_init(&w.done, 0);
    /* The call lives here: the loop is done with it once it has set done. */
    struct call t;
    memset(&t, 0, offsetof(struct call, timer));
    t.on_stack = 1;
    t.cb = sync_cb;
    t.arg = &w;
    int rc = submit(cli, addr, req, timeout_ms, 0, &t);
    if (rc == 0) {
        /* The loop always completes the call: response, timer, close or shutdown. The word is
         * read before done: a wakeup between the two changes it, and the wait returns. */
        for (;;) {
            unsigned seen = atomic_load(&cli->wake_word[w.word]);
            if (atomic_load(&w.done))
                break;
            syscall(SYS_futex, (unsigned *)&cli->wake_word[w.word], FUTEX_WAIT_BITSET_PRIVATE, seen,
                    NULL, NULL, w.bit);
        }
        rc = w.err;
        *resp = w.resp;
    }
    return rc;
}

int rpc_client_handle(struct rpc_client *cli, int32_t code, rpc_handler_fn fn, void *arg)
{
    if (cli->nhandlers == MAX_CLIENT_HANDLERS)
        return -ENOSPC;
    cli->handlers[cli->nhandlers].code = code;
    cli->handlers[cli->nhandlers].h = (struct rpc__handler){fn, arg, 0};
    cli->nhandlers++;
    return 0;
}

void rpc_client_on_close(struct rpc_client *cli, rpc_close_fn fn, void *arg)
{
    cli->close_fn = fn;
    cli->close_arg = arg;
}

int rpc_client_new(const struct rpc_client_opts *opts, struct rpc_client **out)
{
    struct rpc_client *cli = calloc(1, sizeof(*cli));
    int rc;
    if (!cli)
        return -ENOMEM;
    if (opts)
        cli->opts = *opts;
    else
        cli->opts.serialize = RPC_SER_ROCKETMQ;
    if (!cli->opts.max_frame)
        cli->opts.max_frame = RPC_MAX_FRAME_DEFAULT;
    if (cli->opts.connect_timeout_ms <= 0)
        cli->opts.connect_timeout_ms = 3000;
    if (cli->opts.serialize != RPC_SER_JSON)
        cli->opts.serialize = RPC_SER_ROCKETMQ;
    atomic_init(&cli->next_opaque, 1);
    cli->owner.lookup = cli_lookup;
    cli->owner.on_response = cli_on_response;
    cli->owner.on_close = cli_on_close;
    cli->owner.after_read = cli_after_read;
    cli->owner.max_frame = cli->opts.max_frame;
    cli->owner.max_pending_out = 256u << 20;
    if ((rc = rpc__loop_init(&cli->loop)) != 0 ||
        (rc = rpc__loop_start(&cli->loop, "rpc-client"))) {
        rpc__loop_destroy(&cli->loop);
        free(cli);
        return rc;
    }
    *out = cli;
    return 0;
}

static void shutdown_task(void *a, void *b)
{
    struct rpc_client *cli = a;
    cli->closing = 1;
    while (cli->conns) {
        struct rpc_conn *c = rpc_conn_ref(cli->conns->conn);
        rpc__conn_close_now(c, "client shutdown");
        rpc_conn_unref(c);
    }
}

void rpc_client_free(struct rpc_client *cli)
{
    if (!cli)
        return;
    if (rpc__loop_post(&cli->loop, shutdown_task, cli, NULL) != 0)
        mq_error("client shutdown task not queued");
    rpc__loop_stop(&cli->loop);
    rpc__loop_destroy(&cli->loop);
    free(cli);
}
