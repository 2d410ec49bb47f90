/* rpc_server.c — the remoting server: a listener on the first I/O loop hands accepted sockets
 * to the I/O loops round-robin (queue + wakeup), a request-code -> handler table (sorted, binary
 * searched), optional worker threads for slow handlers, and an orderly shutdown.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/listener.h>

#include "common/mq_log.h"
#include "remoting/remoting_int.h"

#define WORKER_QUEUE_MAX 100000

struct handler_entry {
    int32_t code;
    struct rpc__handler h;
};

struct job {
    struct job *next;
    const struct rpc__handler *h;
    struct rpc_conn *conn;
    struct rpc_cmd *req;
};

struct rpc_server {
    struct rpc__owner owner; /* first: the connections' owner callbacks get it */
    struct rpc_server_opts opts;
    char addr[64];
    struct handler_entry *handlers;
    size_t nhandlers;
    struct rpc__handler def;
    rpc_close_fn close_fn;
    void *close_arg;
    rpc_read_done_fn read_done_fn;
    void *read_done_arg;
    int nloops;
    struct rpc__loop *loops;
    struct rpc_conn **conns; /* per loop: list of open connections */
    unsigned next_loop;
    struct evconnlistener *lis;
    int port;
    int started;
    /* workers */
    pthread_t *workers;
    int nworkers;
    pthread_mutex_t wmu;
    pthread_cond_t wcond;
    struct job *jhead, *jtail;
    size_t jlen;
    int wstop;
};

static const struct rpc__handler *srv_lookup(struct rpc__owner *o, int32_t code)
{
    struct rpc_server *s = (struct rpc_server *)o;
    size_t lo = 0, hi = s->nhandlers;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->handlers[mid].code == code)
            return &s->handlers[mid].h;
        if (s->handlers[mid].code < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return s->def.fn ? &s->def : NULL;
}

static int srv_to_worker(struct rpc__owner *o, const struct rpc__handler *h, struct rpc_conn *c,
                         struct rpc_cmd *req)
{
    struct rpc_server *s = (struct rpc_server *)o;
    struct job *j = NULL;
    if (s->nworkers == 0) {
        rpc__dispatch(c, h, req);
        return 0;
    }
    pthread_mutex_lock(&s->wmu);
    if (s->jlen < WORKER_QUEUE_MAX && !s->wstop)
        j = malloc(sizeof(*j));
    if (j) {
        j->next = NULL;
        j->h = h;
        j->conn = rpc_conn_ref(c);
        j->req = req;
        if (s->jtail)
            s->jtail->next = j;
        else
            s->jhead = j;
        s->jtail = j;
        s->jlen++;
        pthread_cond_signal(&s->wcond);
    }
    pthread_mutex_unlock(&s->wmu);
    if (!j) {
        struct rpc_cmd *resp = rpc_cmd_new_response(req, RPC_SYSTEM_BUSY, "too many requests");
        if (resp && !rpc_cmd_is_oneway(req))
            rpc_conn_reply(c, resp);
        else
            rpc_cmd_free(resp);
        rpc_cmd_free(req);
        return -EBUSY;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct rpc_server *s = arg;
    pthread_setname_np(pthread_self(), "rpc-worker");
    pthread_mutex_lock(&s->wmu);
    for (;;) {
        while (!s->jhead && !s->wstop)
            pthread_cond_wait(&s->wcond, &s->wmu);
        struct job *j = s->jhead;
        if (!j)
            break;
        s->jhead = j->next;
        if (!s->jhead)
            s->jtail = NULL;
        s->jlen--;
        pthread_mutex_unlock(&s->wmu);
        rpc__dispatch(j->conn, j->h, j->req);
        rpc_conn_unref(j->conn);
        free(j);
        pthread_mutex_lock(&s->wmu);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

static void srv_on_close(struct rpc__owner *o, struct rpc_conn *c)
{
    struct rpc_server *s = (struct rpc_server *)o;
    if (s->close_fn)
        s->close_fn(c, s->close_arg);
    int li = (int)(c->loop - s->loops);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns[li] = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void add_conn_task(void *a, void *b)
{
    struct rpc__loop *loop = a;
    struct rpc_server *s = NULL;
    intptr_t fd = ((intptr_t *)b)[0];
    s = (struct rpc_server *)((intptr_t *)b)[1];
    const char *peer = (const char *)((intptr_t *)b + 2);
    struct bufferevent *bev =
        bufferevent_socket_new(loop->base, (evutil_socket_t)fd, BEV_OPT_CLOSE_ON_FREE);
    struct rpc_conn *c = NULL;
    if (!bev || rpc__conn_new(loop, &s->owner, bev, peer, &c) != 0) {
        mq_error("cannot set up a connection from %s: out of memory", peer);
        if (bev)
            bufferevent_free(bev);
        else
            evutil_closesocket((evutil_socket_t)fd);
        free(b);
        return;
    }
    c->connected = 1;
    if (s->opts.idle_timeout_ms > 0) {
        struct timeval tv = {s->opts.idle_timeout_ms / 1000,
                             (s->opts.idle_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(bev, &tv, NULL);
    }
    int li = (int)(loop - s->loops);
    c->next = s->conns[li];
    if (c->next)
        c->next->prev = c;
    s->conns[li] = c;
    mq_debug("connection %llu from %s", (unsigned long long)c->id, peer);
    free(b);
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct rpc_server *s = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* task argument: fd, server, peer text */
    intptr_t *b = malloc(2 * sizeof(intptr_t) + 64);
    if (!b) {
        evutil_closesocket(fd);
        return;
    }
    b[0] = fd;
    b[1] = (intptr_t)s;
    char *peer = (char *)(b + 2), host[48] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(peer, 64, "%s:%d", host, port);
    struct rpc__loop *loop = &s->loops[s->next_loop++ % (unsigned)s->nloops];
    if (loop == &s->loops[0]) {
        add_conn_task(loop, b);
    } else if (rpc__loop_post(loop, add_conn_task, loop, b) != 0) {
        evutil_closesocket(fd);
        free(b);
    }
}

static void resume_accept(evutil_socket_t fd, short what, void *arg)
{
    struct rpc_server *s = arg;
    if (s->lis)
        evconnlistener_enable(s->lis);
}

/* accept() failed (EMFILE, ENFILE, ENOBUFS...): pause accepting for 100 ms instead of spinning
 * on a listener that stays readable. */
static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
    struct rpc_server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {0, 100000};
    mq_warn("accept on port %d failed: %s; pausing 100 ms", s->port,
            evutil_socket_error_to_string(err));
    evconnlistener_disable(lis);
    event_base_once(s->loops[0].base, -1, EV_TIMEOUT, resume_accept, s, &tv);
}

int rpc_server_new(const struct rpc_server_opts *opts, struct rpc_server **out)
{
    struct rpc_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (opts)
        s->opts = *opts;
    snprintf(s->addr, sizeof(s->addr), "%s", s->opts.addr ? s->opts.addr : "127.0.0.1");
    s->opts.addr = s->addr;
    if (s->opts.io_threads <= 0)
        s->opts.io_threads = 1;
    if (s->opts.worker_threads < 0)
        s->opts.worker_threads = 0;
    if (!s->opts.max_frame)
        s->opts.max_frame = RPC_MAX_FRAME_DEFAULT;
    if (!s->opts.max_pending_out)
        s->opts.max_pending_out = 64u << 20;
    s->owner.lookup = srv_lookup;
    s->owner.to_worker = srv_to_worker;
    s->owner.on_close = srv_on_close;
    s->owner.max_frame = s->opts.max_frame;
    s->owner.max_pending_out = s->opts.max_pending_out;
    if (!s->opts.max_frames_in)
        s->opts.max_frames_in = RPC_FRAMES_IN_DEFAULT;
    if (s->opts.max_frames_in < 4 * s->opts.max_frame)
        s->opts.max_frames_in = 4 * s->opts.max_frame;
    s->owner.max_frames_in = s->opts.max_frames_in;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->wcond, NULL);
    *out = s;
    return 0;
}

int rpc_server_handle(struct rpc_server *s, int32_t code, rpc_handler_fn fn, void *arg, int flags)
{
    if (s->started || code < 0 || code > 65535)
        return -EINVAL;
    size_t i = 0;
    while (i < s->nhandlers && s->handlers[i].code < code)
        i++;
    if (i < s->nhandlers && s->handlers[i].code == code) {
        if (fn) {
            s->handlers[i].h = (struct rpc__handler){fn, arg, flags};
        } else {
            memmove(&s->handlers[i], &s->handlers[i + 1],
                    (s->nhandlers - i - 1) * sizeof(s->handlers[0]));
            s->nhandlers--;
        }
        return 0;
    }
    if (!fn)
        return 0;
    struct handler_entry *t = realloc(s->handlers, (s->nhandlers + 1) * sizeof(*t));
    if (!t)
        return -ENOMEM;
    s->handlers = t;
    memmove(&t[i + 1], &t[i], (s->nhandlers - i) * sizeof(*t));
    t[i].code = code;
    t[i].h = (struct rpc__handler){fn, arg, flags};
    s->nhandlers++;
    return 0;
}

void rpc_server_handle_default(struct rpc_server *s, rpc_handler_fn fn, void *arg, int flags)
{
    s->def = (struct rpc__handler){fn, arg, flags};
}

void rpc_server_on_close(struct rpc_server *s, rpc_close_fn fn, void *arg)
{
    s->close_fn = fn;
    s->close_arg = arg;
}

static void srv_after_read(struct rpc__owner *o, struct rpc_conn *c)
{
    struct rpc_server *s = (struct rpc_server *)o;
    s->read_done_fn(c, s->read_done_arg);
}

void rpc_server_on_read_done(struct rpc_server *s, rpc_read_done_fn fn, void *arg)
{
    s->read_done_fn = fn;
    s->read_done_arg = arg;
    s->owner.after_read = fn ? srv_after_read : NULL;
}

int rpc_server_port(const struct rpc_server *s)
{
    return s->port;
}

int rpc_server_start(struct rpc_server *s)
{
    int rc = 0;
    char text[96];
    struct sockaddr_storage ss;
    socklen_t sslen;
    snprintf(text, sizeof(text), strchr(s->addr, ':') ? "[%s]:%d" : "%s:%d", s->addr, s->opts.port);
    if (rpc__sockaddr(s->addr, s->opts.port, &ss, &sslen) != 0) {
        mq_error("bad listen address '%s'", text);
        return -EINVAL;
    }
    s->loops = calloc((size_t)s->opts.io_threads, sizeof(*s->loops));
    s->conns = calloc((size_t)s->opts.io_threads, sizeof(*s->conns));
    if (!s->loops || !s->conns)
        return -ENOMEM;
    s->nloops = s->opts.io_threads;
    for (int i = 0; i < s->nloops; i++)
        if ((rc = rpc__loop_init(&s->loops[i])) != 0)
            return rc;
    s->started = 1;
    s->lis = evconnlistener_new_bind(s->loops[0].base, accept_cb, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                     (struct sockaddr *)&ss, (int)sslen);
    if (!s->lis) {
        rc = -errno ? -errno : -EADDRINUSE;
        mq_error("cannot listen on %s: %s", text, strerror(-rc));
        return rc;
    }
    evconnlistener_set_error_cb(s->lis, accept_error_cb);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&bound, &blen);
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    for (int i = 0; i < s->nloops; i++) {
        char name[16];
        snprintf(name, sizeof(name), "rpc-io-%d", i % 100);
        if ((rc = rpc__loop_start(&s->loops[i], name)) != 0)
            return rc;
    }
    s->workers = calloc((size_t)s->opts.worker_threads + 1, sizeof(pthread_t));
    if (!s->workers)
        return -ENOMEM;
    for (int i = 0; i < s->opts.worker_threads; i++) {
        if ((rc = -pthread_create(&s->workers[i], NULL, worker_main, s)) != 0)
            return rc;
        s->nworkers++;
    }
    return 0;
}

static void close_all_task(void *a, void *b)
{
    struct rpc_server *s = a;
    struct rpc__loop *loop = b;
    int li = (int)(loop - s->loops);
    if (li == 0 && s->lis) {
        evconnlistener_free(s->lis);
        s->lis = NULL;
    }
    while (s->conns[li]) {
        struct rpc_conn *c = rpc_conn_ref(s->conns[li]);
        rpc__conn_close_now(c, "server shutdown");
        rpc_conn_unref(c);
    }
}

void rpc_server_free(struct rpc_server *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nloops; i++) {
        if (s->loops[i].running)
            rpc__loop_post(&s->loops[i], close_all_task, s, &s->loops[i]);
        else if (s->loops[i].base)
            close_all_task(s, &s->loops[i]);
    }
    pthread_mutex_lock(&s->wmu);
    s->wstop = 1;
    pthread_cond_broadcast(&s->wcond);
    pthread_mutex_unlock(&s->wmu);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    for (int i = 0; i < s->nloops; i++)
        rpc__loop_stop(&s->loops[i]);
    for (int i = 0; i < s->nloops; i++)
        if (s->loops[i].base)
            close_all_task(s, &s->loops[i]); /* connections added by the last tasks */
    for (int i = 0; i < s->nloops; i++)
        rpc__loop_destroy(&s->loops[i]);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->wcond);
    free(s->workers);
    free(s->loops);
    free(s->conns);
    free(s->handlers);
    free(s);
}
