/* remoting.h — RocketMQ's remoting protocol: the command struct, the pure frame codec (JSON and
 * binary "ROCKETMQ" headers), and a libevent server and client built on it.
 *
 * Wire format: docs/FORMATS.md Part 2. Threads: the server runs `io_threads` event loops (one
 * event_base each) plus optional worker threads; the client runs one event loop thread. Every
 * cross-thread handoff goes through a queue plus a wakeup of the owning loop.
 *
 * Server, replying now or later:
 *     static int on_pull(struct rpc_conn *c, struct rpc_cmd *req, struct rpc_cmd **resp, void *a)
 *     {
 *         const char *topic = rpc_cmd_ext_get(req, "topic");   // owned by req
 *         if (!topic) {
 *             *resp = rpc_cmd_new_response(req, RPC_SYSTEM_ERROR, "no topic");
 *             return RPC_REPLY;
 *         }
 *         struct rpc_cmd *r = rpc_cmd_new_response(req, RPC_SUCCESS, NULL); // keeps opaque
 *         hold_until_data(rpc_conn_ref(c), r);  // later, any thread:
 *         return RPC_DEFER;                      //   rpc_conn_reply(c, r); rpc_conn_unref(c);
 *     }
 *     rpc_server_new(&(struct rpc_server_opts){.port = 10911, .io_threads = 2}, &srv);
 *     rpc_server_handle(srv, 11, on_pull, ctx, 0);
 *     rpc_server_on_close(srv, drop_client, ctx);
 *     rpc_server_start(srv);
 *
 * Client:
 *     rpc_client_new(NULL, &cli);
 *     struct rpc_cmd *req = rpc_cmd_new(105), *resp;
 *     rpc_cmd_ext_set(req, "topic", "TopicTest");
 *     if (rpc_client_call(cli, "127.0.0.1:9876", req, 3000, &resp) == 0 && resp->code == 0)
 *         json_t *route = rpc_json_loads(resp->body, resp->body_len);
 *     rpc_cmd_free(resp); rpc_cmd_free(req);     // or rpc_client_call_async(..., cb, arg)
 */
#ifndef MQ_REMOTING_H
#define MQ_REMOTING_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

/* ---- constants (RocketMQ names in comments; FORMATS.md Part 2 lists them all) ---- */

enum rpc_serialize { RPC_SER_JSON = 0, RPC_SER_ROCKETMQ = 1 }; /* SerializeType */

enum {
    RPC_FLAG_RESPONSE = 1 << 0, /* RPC_TYPE bit: 1 = response */
    RPC_FLAG_ONEWAY = 1 << 1,   /* RPC_ONEWAY bit */
};

/* LanguageCode ordinals (the binary header carries the byte, JSON the name). */
enum rpc_lang {
    RPC_LANG_JAVA = 0,
    RPC_LANG_CPP = 1,
    RPC_LANG_DOTNET = 2,
    RPC_LANG_PYTHON = 3,
    RPC_LANG_DELPHI = 4,
    RPC_LANG_ERLANG = 5,
    RPC_LANG_RUBY = 6,
    RPC_LANG_OTHER = 7,
    RPC_LANG_HTTP = 8,
    RPC_LANG_GO = 9,
    RPC_LANG_PHP = 10,
    RPC_LANG_OMS = 11,
    RPC_LANG_COUNT_
};

/* ResponseCode / RemotingSysResponseCode values used across modules. */
enum {
    RPC_SUCCESS = 0,
    RPC_SYSTEM_ERROR = 1,
    RPC_SYSTEM_BUSY = 2,
    RPC_REQUEST_CODE_NOT_SUPPORTED = 3,
    RPC_FLUSH_DISK_TIMEOUT = 10,
    RPC_SLAVE_NOT_AVAILABLE = 11,
    RPC_MESSAGE_ILLEGAL = 13,
    RPC_SERVICE_NOT_AVAILABLE = 14,
    RPC_NO_PERMISSION = 16,
    RPC_TOPIC_NOT_EXIST = 17,
    RPC_PULL_NOT_FOUND = 19,
    RPC_PULL_RETRY_IMMEDIATELY = 20,
    RPC_PULL_OFFSET_MOVED = 21,
    RPC_QUERY_NOT_FOUND = 22,
    RPC_SUBSCRIPTION_PARSE_FAILED = 23,
    RPC_SUBSCRIPTION_NOT_EXIST = 24,
    RPC_SUBSCRIPTION_NOT_LATEST = 25,
    RPC_FILTER_DATA_NOT_EXIST = 27,
};

#define RPC_VERSION_DEFAULT   399 /* sender MQVersion ordinal; informational only */
#define RPC_MAX_FRAME_DEFAULT (16u << 20)
#define RPC_FRAMES_IN_DEFAULT (256u << 20)
#define RPC_FRAME_PREFIX      8 /* int32 length + int32 (type << 24 | headerLen) */

/* ---- the command ---- */

struct rpc_ext {
    uint32_t key, val;   /* offsets into cmd->strs of NUL-terminated strings */
    uint32_t klen, vlen; /* their lengths */
};

/* One piece of a body given as segments (rpc_cmd_set_body_segs). */
struct rpc_seg {
    const void *p;
    size_t len;
};

/* One RemotingCommand. Fields are public; strings live in the command's own arena (`strs`) and
 * are reached through the accessors. A command is owned by whoever holds the pointer; free it
 * with rpc_cmd_free(). */
struct rpc_cmd {
    int32_t code;
    uint8_t language; /* enum rpc_lang */
    int16_t version;
    int32_t opaque;
    int32_t flag;        /* RPC_FLAG_* */
    uint8_t serialize;   /* enum rpc_serialize: as decoded; responses copy it from requests */
    const uint8_t *body; /* body bytes or NULL; see rpc_cmd_set_body* for ownership */
    size_t body_len;
    /* internals (use the accessors) */
    uint32_t remark; /* offset into strs + 1, 0 = none */
    struct rpc_ext *ext;
    uint32_t ext_n, ext_cap;
    char *strs;
    uint32_t strs_len, strs_cap;
    void (*body_release)(void *arg); /* called once when the body is no longer referenced */
    void *body_release_arg;
    const struct rpc_seg *segs; /* the body as segments (then body is NULL, body_len the sum) */
    uint32_t nsegs;
};

/* Allocates a request with `code`, language CPP (what our own programs send), version
 * RPC_VERSION_DEFAULT and binary serialization. Returns NULL only on out-of-memory. */
struct rpc_cmd *rpc_cmd_new(int32_t code);
/* Allocates a response to `req`: same opaque and serialization, RESPONSE flag set, `code` and
 * an optional remark (copied; may be NULL). */
struct rpc_cmd *rpc_cmd_new_response(const struct rpc_cmd *req, int32_t code, const char *remark);
/* Deep copy (body copied too). Returns NULL on out-of-memory. */
struct rpc_cmd *rpc_cmd_clone(const struct rpc_cmd *cmd);
/* Frees the command and releases its body. rpc_cmd_free(NULL) is a no-op. */
void rpc_cmd_free(struct rpc_cmd *cmd);

static inline int rpc_cmd_is_response(const struct rpc_cmd *c)
{
    return (c->flag & RPC_FLAG_RESPONSE) != 0;
}
static inline int rpc_cmd_is_oneway(const struct rpc_cmd *c)
{
    return (c->flag & RPC_FLAG_ONEWAY) != 0;
}

/* Remark: owned by the command, valid until the command is modified or freed; NULL if none. */
const char *rpc_cmd_remark(const struct rpc_cmd *cmd);
int rpc_cmd_set_remark(struct rpc_cmd *cmd, const char *remark); /* copies; NULL clears */
int rpc_cmd_set_remarkf(struct rpc_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* extFields (the custom header). Getters return strings owned by the command, valid until the
 * next setter call on it or rpc_cmd_free; NULL when absent. Setters copy key and value and
 * replace an existing key. All return 0 or -ENOMEM / -EINVAL / -ENOENT as documented. */
const char *rpc_cmd_ext_get(const struct rpc_cmd *cmd, const char *key);
/* Parses a decimal integer field: 0, -ENOENT (absent) or -EINVAL (not an integer). Java
 * Booleans are "true"/"false": rpc_cmd_ext_get_bool accepts those (and 0/1). */
int rpc_cmd_ext_get_int64(const struct rpc_cmd *cmd, const char *key, int64_t *out);
int rpc_cmd_ext_get_int32(const struct rpc_cmd *cmd, const char *key, int32_t *out);
int rpc_cmd_ext_get_bool(const struct rpc_cmd *cmd, const char *key, int *out);
int rpc_cmd_ext_set(struct rpc_cmd *cmd, const char *key, const char *val);
int rpc_cmd_ext_set_int64(struct rpc_cmd *cmd, const char *key, int64_t val);
int rpc_cmd_ext_set_bool(struct rpc_cmd *cmd, const char *key, int val);
/* Appends a field with the lengths known (val need not be NUL-terminated), without looking
 * for an existing one: for builders that know the key is not there yet (a duplicate would go
 * on the wire twice). Returns 0, -EINVAL or -ENOMEM. */
int rpc_cmd_ext_addn(struct rpc_cmd *cmd, const char *key, size_t klen, const char *val,
                     size_t vlen);
/* The same with NUL-terminated strings; inline, so that a literal's length is a constant. */
static inline int rpc_cmd_ext_add(struct rpc_cmd *cmd, const char *key, const char *val)
{
    if (!key || !val)
        return -EINVAL;
    return rpc_cmd_ext_addn(cmd, key, strlen(key), val, strlen(val));
}
/* Decimal text of v written backwards from the end of buf (NUL-terminated); returns where it
 * starts. */
const char *rpc_i64_text(int64_t v, char buf[24]);
/* Parses a header value as a whole decimal integer (what rpc_cmd_ext_get_int64 does with the
 * value it finds): 0, or -EINVAL when v is not one (*out untouched). */
int rpc_i64_parse(const char *v, int64_t *out);
/* Iteration: i in 0..cmd->ext_n-1. Strings as for rpc_cmd_ext_get. */
const char *rpc_cmd_ext_key(const struct rpc_cmd *cmd, uint32_t i);
const char *rpc_cmd_ext_val(const struct rpc_cmd *cmd, uint32_t i);

/* Body. rpc_cmd_set_body_copy copies. rpc_cmd_set_body_ref borrows `p`: the caller keeps it
 * valid until `release(arg)` is called (release may be NULL when the caller knows the command
 * dies first — without a release, client calls copy the body before they return; with one, a
 * client call takes a body of 64 KiB or more over and sends it without a copy, and the release
 * runs on the client's loop thread once the bytes are written, or dropped with the connection).
 * rpc_cmd_take_body adopts a malloc()ed block and free()s it. Each replaces (and releases) a
 * previous body. */
int rpc_cmd_set_body_copy(struct rpc_cmd *cmd, const void *p, size_t len);
void rpc_cmd_set_body_ref(struct rpc_cmd *cmd, const void *p, size_t len,
                          void (*release)(void *arg), void *arg);
void rpc_cmd_take_body(struct rpc_cmd *cmd, void *p, size_t len);
/* A body made of n segments sent back to back, borrowed like rpc_cmd_set_body_ref: `segs` and
 * the bytes they point to stay valid until release(arg). A connection writes segments of 4 KiB
 * and more to the socket from where they are (no copy; e.g. records in the store's mapped
 * files) and copies smaller ones. cmd->body stays NULL: readers of a received command never
 * see segments (a decoded frame has one flat body); rpc_cmd_clone flattens them. */
void rpc_cmd_set_body_segs(struct rpc_cmd *cmd, const struct rpc_seg *segs, uint32_t n,
                           void (*release)(void *arg), void *arg);

/* Names: "JAVA", "CPP", ... ("OTHER" for unknown ordinals); lookup returns -EINVAL if unknown. */
const char *rpc_lang_name(int lang);
int rpc_lang_from_name(const char *name, size_t len);
/* The RocketMQ name of a request code ("GET_ROUTEINFO_BY_TOPIC") or "UNKNOWN". */
const char *rpc_code_name(int32_t code);

/* ---- the codec (pure: no I/O, no globals; safe on untrusted bytes) ---- */

/* Looks at the start of a byte stream. Returns 0 and the whole frame's size (4-byte length
 * field included) in *frame_len when a full frame is present; -EAGAIN when more bytes are
 * needed (fewer than 4, or fewer than the frame); -EMSGSIZE when the length field exceeds
 * max_frame; -EBADMSG when it is below the 4-byte minimum. */
int rpc_frame_check(const uint8_t *p, size_t avail, size_t max_frame, size_t *frame_len);

/* Decodes one whole frame (p[0..len), as delimited by rpc_frame_check) into a new command.
 * The body is copied unless `keep` is non-NULL: then the body references p and `keep` (a
 * malloc()ed block containing p) is adopted by the command and free()d with it — the no-copy
 * path of the connection reader. On error `keep` is still adopted (freed). Returns 0,
 * -EBADMSG (malformed: counts, lengths, serialize type, JSON), -ENOMEM. Bounded: allocates
 * at most O(len). */
int rpc_frame_decode(const uint8_t *p, size_t len, void *keep, struct rpc_cmd **out);

/* Header decoders, exposed for the fuzzer: decode a header of `len` bytes into `cmd`
 * (a fresh command from rpc_cmd_new). Return 0 or -EBADMSG / -ENOMEM. */
int rpc_header_decode_json(const uint8_t *p, size_t len, struct rpc_cmd *cmd);
int rpc_header_decode_bin(const uint8_t *p, size_t len, struct rpc_cmd *cmd);

/* Encodes the frame prefix and header in `ser` (RPC_SER_JSON or RPC_SER_ROCKETMQ), with the
 * length field covering the body, appending to out. The body itself is not written: the
 * sender appends cmd->body after it (zero copy). Returns 0, -ENOMEM, -EMSGSIZE. */
struct mq_buf;
int rpc_cmd_encode_head(const struct rpc_cmd *cmd, int ser, struct mq_buf *out);
/* Encodes a whole frame (prefix, header, body copied) into out. */
int rpc_cmd_encode(const struct rpc_cmd *cmd, int ser, struct mq_buf *out);

/* ---- JSON bodies ---- */

/* Parses a JSON body as fastjson writes it: object keys may be bare integers ({0:"a"}), which
 * are quoted before parsing. Returns a new reference (json_decref it) or NULL on bad JSON. */
json_t *rpc_json_loads(const void *p, size_t len);
/* Serializes `v` as compact standard JSON into a malloc()ed body of the command (replacing its
 * body). Does not steal `v`. Returns 0 or -ENOMEM. */
int rpc_cmd_set_body_json(struct rpc_cmd *cmd, const json_t *v);

/* ---- connections (server side and client side share them) ---- */

struct rpc_conn;

/* Reference counting: a handler that replies later keeps the connection with rpc_conn_ref and
 * drops it with rpc_conn_unref once done. Both are thread-safe. */
struct rpc_conn *rpc_conn_ref(struct rpc_conn *conn);
void rpc_conn_unref(struct rpc_conn *conn);

/* Sends `resp` (a response command; ownership passes to the library) on the connection. Safe
 * from any thread: from another thread it is queued to the connection's event loop. A closed
 * connection drops it silently. Returns 0, or -ENOTCONN when already known closed (resp is
 * freed either way). */
int rpc_conn_reply(struct rpc_conn *conn, struct rpc_cmd *resp);
/* Sends a request to the peer without waiting for an answer (server -> client notifications
 * such as NOTIFY_CONSUMER_IDS_CHANGED): sets the ONEWAY flag and encodes it in the
 * serialization the peer last used (JSON before it has sent anything: ali-ons reads only JSON
 * headers). Thread-safe; takes req. Returns 0, -ENOTCONN or -ESHUTDOWN. */
int rpc_conn_send_oneway(struct rpc_conn *conn, struct rpc_cmd *req);
/* Closes the connection once its queued output is written (at most 2 s later). Thread-safe;
 * the close happens on its loop. */
void rpc_conn_close(struct rpc_conn *conn);
/* "ip:port" of the peer, owned by the connection, valid while a reference is held. */
const char *rpc_conn_peer(const struct rpc_conn *conn);
/* A stable id, unique within the process. */
uint64_t rpc_conn_id(const struct rpc_conn *conn);
int rpc_conn_is_closed(const struct rpc_conn *conn);
/* One opaque user pointer per connection (e.g. the broker's client record). */
void rpc_conn_set_user(struct rpc_conn *conn, void *user);
void *rpc_conn_get_user(const struct rpc_conn *conn);

/* ---- handlers ---- */

enum { RPC_REPLY = 0, RPC_DEFER = 1 };

/* A request handler. `req` is owned by the library and freed after the handler returns (clone
 * it to keep it). Return:
 *   RPC_REPLY  with *resp set to a response (ownership to the library) or left NULL (nothing
 *              is sent; oneway requests never get a reply anyway);
 *   RPC_DEFER  when the handler will answer later: it has taken rpc_conn_ref(conn) and will
 *              call rpc_conn_reply(conn, resp) from any thread, then rpc_conn_unref(conn);
 *   <0         a negative errno: the library replies SYSTEM_ERROR with mq_strerror(rc).
 * Runs on the connection's I/O thread, or on a worker thread if registered with
 * RPC_HANDLER_WORKER. */
typedef int (*rpc_handler_fn)(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                              void *arg);
/* Called once on the connection's loop thread when it closes, before references drop. */
typedef void (*rpc_close_fn)(struct rpc_conn *conn, void *arg);

enum { RPC_HANDLER_WORKER = 1 };

/* ---- server ---- */

struct rpc_server_opts {
    const char *addr;       /* listen address, default "127.0.0.1" */
    int port;               /* 0 = any free port (see rpc_server_port) */
    int io_threads;         /* event loops, default 1 */
    int worker_threads;     /* for RPC_HANDLER_WORKER handlers, default 0 (= run on I/O) */
    size_t max_frame;       /* default RPC_MAX_FRAME_DEFAULT */
    size_t max_pending_out; /* bytes queued to a peer before it is dropped, default 64 MiB */
    int idle_timeout_ms;    /* close a connection silent this long (0 = never) */
    /* bytes of frames being received, all connections together: a connection whose next
     * frame would go past it is closed. Default RPC_FRAMES_IN_DEFAULT, at least 4 max_frame */
    size_t max_frames_in;
};

struct rpc_server;

/* Creates a server (not yet listening). opts may be NULL for defaults. */
int rpc_server_new(const struct rpc_server_opts *opts, struct rpc_server **out);
/* Registers a handler for a request code (0..65535) before rpc_server_start. A NULL fn
 * removes it. Codes without a handler are answered REQUEST_CODE_NOT_SUPPORTED. */
int rpc_server_handle(struct rpc_server *srv, int32_t code, rpc_handler_fn fn, void *arg,
                      int flags);
/* Handles every code without a specific handler (replaces the REQUEST_CODE_NOT_SUPPORTED
 * default; the handler may still answer that). */
void rpc_server_handle_default(struct rpc_server *srv, rpc_handler_fn fn, void *arg, int flags);
void rpc_server_on_close(struct rpc_server *srv, rpc_close_fn fn, void *arg);
/* Called on the I/O thread after the requests of one read from conn were handed to their
 * handlers (the ones run on that thread have returned), also when conn closed meanwhile: the
 * place to finish, once per batch of requests, work the handlers left for it. */
typedef void (*rpc_read_done_fn)(struct rpc_conn *conn, void *arg);
void rpc_server_on_read_done(struct rpc_server *srv, rpc_read_done_fn fn, void *arg);
/* Binds, listens and starts the threads. Returns 0 or -errno (-EADDRINUSE ...). */
int rpc_server_start(struct rpc_server *srv);
/* The bound port (after start). */
int rpc_server_port(const struct rpc_server *srv);
/* Stops listening, closes every connection (close callbacks run), joins the threads, frees.
 * Deferred replies arriving afterwards are no-ops. rpc_server_free(NULL) is a no-op. */
void rpc_server_free(struct rpc_server *srv);

/* ---- client ---- */

struct rpc_client_opts {
    size_t max_frame;       /* default RPC_MAX_FRAME_DEFAULT */
    int connect_timeout_ms; /* default 3000 */
    int serialize;          /* header encoding of requests: RPC_SER_JSON (0) or RPC_SER_ROCKETMQ;
                             * NULL opts mean RPC_SER_ROCKETMQ */
};

struct rpc_client;

/* Called on the client's loop thread with err = 0 and a response (owned by the callback: free
 * it with rpc_cmd_free), or err < 0 (-ETIMEDOUT, -ECONNRESET, -ECONNREFUSED, ...) and NULL. */
typedef void (*rpc_call_cb)(int err, struct rpc_cmd *resp, void *arg);

/* Creates a client and starts its loop thread. opts may be NULL. */
int rpc_client_new(const struct rpc_client_opts *opts, struct rpc_client **out);
/* Fails every pending call with -ECANCELED, closes connections, joins the thread, frees.
 * Call it once no other thread uses the client. rpc_client_free(NULL) is a no-op. */
void rpc_client_free(struct rpc_client *cli);

/* `addr` is "ip:port" (numeric, or "localhost:port"). `req` is borrowed: it is encoded before
 * the call returns (its opaque is overwritten with the call's own). One connection per
 * address, opened on first use and reopened on the next call after it breaks. */
/* Sync: waits up to timeout_ms; on 0 *resp is the response (caller frees). Returns 0,
 * -ETIMEDOUT, -ECONNRESET (connection broke with the call pending), -ECONNREFUSED, -EINVAL
 * (bad address), -EDEADLK (called from the client's own loop thread). A response with a
 * non-zero code is still 0: look at (*resp)->code. */
int rpc_client_call(struct rpc_client *cli, const char *addr, struct rpc_cmd *req, int timeout_ms,
                    struct rpc_cmd **resp);
/* Async: cb runs exactly once on the client's loop thread (also on errors). Returns 0 or a
 * negative errno (then cb is not called). */
int rpc_client_call_async(struct rpc_client *cli, const char *addr, struct rpc_cmd *req,
                          int timeout_ms, rpc_call_cb cb, void *arg);
/* Oneway: sets the ONEWAY flag and sends without waiting. Returns 0 or -errno. */
int rpc_client_oneway(struct rpc_client *cli, const char *addr, struct rpc_cmd *req);
/* Requests sent BY servers to this client (e.g. NOTIFY_CONSUMER_IDS_CHANGED): register before
 * the first call. Unhandled requests get REQUEST_CODE_NOT_SUPPORTED. */
int rpc_client_handle(struct rpc_client *cli, int32_t code, rpc_handler_fn fn, void *arg);
/* Called on the loop thread when a connection to a server closes. */
void rpc_client_on_close(struct rpc_client *cli, rpc_close_fn fn, void *arg);

#endif
