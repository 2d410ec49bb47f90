/* mqbench.h — internals of mqbench shared by its subcommand files: the parsed options and the
 * subcommand entry points (each returns the process exit status: 0 ok, 1 failed run). */
#ifndef MQ_MQBENCH_H
#define MQ_MQBENCH_H

#include <stddef.h>
#include <stdint.h>

enum mb_mode { MB_SYNC = 0, MB_ASYNC = 1, MB_ONEWAY = 2 };

struct mb_opts {
    const char *namesrv, *topic, *group; /* borrowed from argv */
    int threads;                         /* produce: callers; consume: consumers or pullers */
    int clients;                         /* producer instances (connections) shared by threads */
    size_t size;                         /* body bytes */
    int batch;                           /* messages per mqc_send_batch (1: single sends) */
    enum mb_mode mode;
    double duration_s; /* used when count == 0 */
    int64_t count;
    int queues;     /* sync single sends: use the first Q writable queues (0: all) */
    int window;     /* async: in-flight sends per thread */
    int raw;        /* consume: mqc_pull loops per queue instead of the group consumer */
    int pull_batch; /* consume: messages per pull */
    double idle_s;  /* consume: stop after this long without a message (after the first) */
    int timeout_ms; /* send timeout per attempt */
};

int mb_produce(const struct mb_opts *o);
int mb_consume(const struct mb_opts *o);

#endif
