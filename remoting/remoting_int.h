/* remoting_int.h — internals shared by the files of remoting/: the string arena of commands,
 * event loop threads with a task queue, connections and the handler table.
 */
#ifndef MQ_REMOTING_INT_H
#define MQ_REMOTING_INT_H

#include <pthread.h>
#include <sys/socket.h>
#include <stdatomic.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/mq_bytes.h"
#include "remoting/remoting.h"

/* ---- commands (rpc_cmd.c) ---- */

/* Appends n bytes of s plus a NUL to the command's arena; *off receives the offset. */
int rpc__str_add(struct rpc_cmd *cmd, const char *s, size_t n, uint32_t *off);
/* Makes room for `extra` arena bytes and `entries` more ext entries (no reallocation while a
 * decoder fills them). */
int rpc__cmd_reserve(struct rpc_cmd *cmd, size_t extra, size_t entries);
/* Appends an ext entry without checking for duplicates (decoders; later entries win on get
 * because lookup scans from the end). */
int rpc__ext_append(struct rpc_cmd *cmd, const char *k, size_t kn, const char *v, size_t vn);
void rpc__cmd_release_body(struct rpc_cmd *cmd);
/* The size of the one block rpc_cmd_new allocates. */
size_t rpc__cmd_block_size(void);
/* Copies the segments back to back into dst (room for their sum); returns the bytes. */
size_t rpc__segs_copy(const struct rpc_seg *segs, uint32_t n, uint8_t *dst);
/* Writes the JSON header object of cmd (rpc_json.c). */
struct mq_buf;
int rpc__header_encode_json(const struct rpc_cmd *cmd, struct mq_buf *out);

/* ---- event loop threads (rpc_loop.c) ---- */

typedef void (*rpc__task_fn)(void *a, void *b);

struct rpc__task {
    struct rpc__task *next;
    rpc__task_fn fn;
    void *a, *b;
    int embedded; /* part of a bigger object the task itself ends: not freed by the loop */
};

/* One thread, one event_base; other threads post tasks (queue + wakeup). */
struct rpc__loop {
    struct event_base *base;
    pthread_t thread;
    int running;
    struct event *wakeup;
    pthread_mutex_t mu;
    struct rpc__task *head, *tail;
    int stopping;
    int draining; /* the loop is taking tasks: posters need not wake it (under mu) */
    /* loop thread: while > 0 (a read's frames, a batch of posted tasks being handled), small
     * frames for idle connections gather in their cork and go out with one send() each at
     * rpc__uncork; cork_list holds those connections (referenced) */
    int corked;
    struct rpc_conn *cork_list;
};

int rpc__loop_init(struct rpc__loop *loop);
int rpc__loop_start(struct rpc__loop *loop, const char *name);
/* Runs fn(a, b) on the loop thread. Returns 0 or -ENOMEM / -ESHUTDOWN (loop stopping: the
 * task is not run). */
int rpc__loop_post(struct rpc__loop *loop, rpc__task_fn fn, void *a, void *b);
/* Posts a task node the caller filled (fn, a, b) and owns: no allocation. The node must stay
 * valid until its fn runs, which may end the node's life. Returns 0 or -ESHUTDOWN. */
int rpc__loop_post_node(struct rpc__loop *loop, struct rpc__task *t);
int rpc__loop_on_thread(const struct rpc__loop *loop);
/* Cork / uncork the loop's connections (loop thread; nests). */
void rpc__cork(struct rpc__loop *loop);
void rpc__uncork(struct rpc__loop *loop);
/* Asks the loop to exit once its queue is drained, and joins it. */
void rpc__loop_stop(struct rpc__loop *loop);
void rpc__loop_destroy(struct rpc__loop *loop);
/* Ensures libevent's pthread locking is on (once per process). */
void rpc__threads_init(void);
/* Numeric IPv4 or IPv6 host + port -> socket address. Returns 0 or -EINVAL. */
struct sockaddr_storage;
int rpc__sockaddr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len);

/* ---- handler tables (rpc_server.c, rpc_client.c) ---- */

struct rpc__handler {
    rpc_handler_fn fn;
    void *arg;
    int flags;
};

/* What a connection belongs to: dispatch of requests and responses. */
struct rpc__owner {
    /* request dispatch: returns the handler or NULL (REQUEST_CODE_NOT_SUPPORTED) */
    const struct rpc__handler *(*lookup)(struct rpc__owner *o, int32_t code);
    /* hands a request to a worker thread; NULL = run on the I/O thread */
    int (*to_worker)(struct rpc__owner *o, const struct rpc__handler *h, struct rpc_conn *c,
                     struct rpc_cmd *req);
    /* a response arrived (client side); takes resp */
    void (*on_response)(struct rpc__owner *o, struct rpc_conn *c, struct rpc_cmd *resp);
    /* connection closed (called once, on the loop thread) */
    void (*on_close)(struct rpc__owner *o, struct rpc_conn *c);
    /* the frames of one read were handled (loop thread; may be NULL) */
    void (*after_read)(struct rpc__owner *o, struct rpc_conn *c);
    size_t max_frame;
    size_t max_pending_out;
    size_t max_frames_in;    /* 0 = no limit (clients) */
    atomic_size_t frames_in; /* bytes of the frames being received (rpc_conn.c) */
};

/* ---- connections (rpc_conn.c) ---- */

struct rpc_conn {
    atomic_int refs;
    atomic_int closed;
    atomic_int peer_ser; /* serialization of the last frame received (JSON until then) */
    uint64_t id;
    struct rpc__loop *loop;
    struct rpc__owner *owner;
    struct bufferevent *bev;
    void *user;
    char peer[64];
    int in_cb;                    /* > 0 while one of its bufferevent callbacks runs */
    int connected;                /* client side: connect completed */
    int draining;                 /* closing once the output is flushed */
    int timed_out;                /* closed by a connect or write timeout */
    uint8_t *rd_frame;            /* a large frame being read straight from the socket */
    size_t rd_len, rd_have;       /* its size and the bytes read so far */
    void *owner_data;             /* client side: its per-connection record */
    struct rpc_conn *prev, *next; /* the owner's list of open connections (loop thread) */
    struct mq_buf cork;           /* small frames gathered while the loop is corked */
    struct rpc_conn *cork_next;   /* the loop's cork_list */
    int in_cork_list;
};

/* Wraps a connected (server) or connecting (client) bufferevent; the connection holds one
 * reference for itself until closed. Must be called on the loop thread. */
int rpc__conn_new(struct rpc__loop *loop, struct rpc__owner *owner, struct bufferevent *bev,
                  const char *peer, struct rpc_conn **out);
/* Closes on the loop thread: runs owner->on_close, frees the bufferevent after the current
 * callback has returned and drops the self reference. Idempotent. */
void rpc__conn_close_now(struct rpc_conn *c, const char *why);
/* Writes a command (header encoded in `ser`, body appended by reference). Loop thread only.
 * Takes cmd. Returns 0 or -errno; on an output overflow the connection is closed. */
int rpc__conn_send(struct rpc_conn *c, struct rpc_cmd *cmd, int ser);
/* Writes an already encoded frame (malloc()ed, adopted). Loop thread only. */
int rpc__conn_send_raw(struct rpc_conn *c, uint8_t *frame, size_t len);
/* Writes a frame in two parts: its encoded head (malloc()ed, adopted) and its body by
 * reference; release(arg) runs exactly once, when the body has been written or dropped (also
 * when this fails). Loop thread only. */
int rpc__conn_send_raw_ref(struct rpc_conn *c, uint8_t *head, size_t hlen, const void *body,
                           size_t blen, void (*release)(void *arg), void *arg);
/* Runs a request through its handler and replies as the handler says (any thread). */
void rpc__dispatch(struct rpc_conn *c, const struct rpc__handler *h, struct rpc_cmd *req);

#endif
