/* rpc_loop.c — one event loop thread (one event_base) with a task queue: other threads hand
 * work over by appending a task under a mutex and activating the loop's wakeup event
 * (memcached's thread.c pattern; libevent's pthread locking makes event_active thread-safe).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/thread.h>

#include "common/mq_log.h"
#include "remoting/remoting_int.h"

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;

static void threads_init_once(void)
{
    if (evthread_use_pthreads() != 0)
        mq_error("evthread_use_pthreads failed");
}

void rpc__threads_init(void)
{
    pthread_once(&threads_once, threads_init_once);
}

/* Batches of tasks taken in one wakeup: while the loop works through them, posters queue
 * without activating the wakeup event again (no base lock, no eventfd write, no extra loop
 * iteration); after this many the loop goes back to its sockets and wakes itself. */
#define DRAIN_ROUNDS 8

static void run_tasks(struct rpc__loop *loop, int max_rounds)
{
    rpc__cork(loop); /* frames handed over in one wakeup's batches leave together */
    for (int round = 0;; round++) {
        pthread_mutex_lock(&loop->mu);
        if (round == max_rounds) {
            int more = loop->head != NULL;
            loop->draining = 0;
            pthread_mutex_unlock(&loop->mu);
            if (more)
                event_active(loop->wakeup, EV_READ, 0);
            break;
        }
        struct rpc__task *t = loop->head;
        loop->head = loop->tail = NULL;
        loop->draining = t != NULL;
        pthread_mutex_unlock(&loop->mu);
        if (!t)
            break;
        while (t) {
            struct rpc__task *next = t->next;
            int embedded = t->embedded; /* fn may end the life of an embedded node */
            t->fn(t->a, t->b);
            if (!embedded)
                free(t);
            t = next;
        }
    }
    rpc__uncork(loop);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    run_tasks(arg, DRAIN_ROUNDS);
}

int rpc__loop_init(struct rpc__loop *loop)
{
    memset(loop, 0, sizeof(*loop));
    rpc__threads_init();
    pthread_mutex_init(&loop->mu, NULL);
    loop->base = event_base_new();
    if (!loop->base)
        goto fail;
    loop->wakeup = event_new(loop->base, -1, 0, wake_cb, loop);
    if (!loop->wakeup)
        goto fail;
    return 0;
fail:
    rpc__loop_destroy(loop);
    return -ENOMEM;
}

static void *loop_main(void *arg)
{
    struct rpc__loop *loop = arg;
    event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int rpc__loop_start(struct rpc__loop *loop, const char *name)
{
    int rc = pthread_create(&loop->thread, NULL, loop_main, loop);
    if (rc)
        return -rc;
    loop->running = 1;
    if (name)
        pthread_setname_np(loop->thread, name);
    return 0;
}

static int post_node(struct rpc__loop *loop, struct rpc__task *t, int internal)
{
    t->next = NULL;
    pthread_mutex_lock(&loop->mu);
    if (loop->stopping && !internal) {
        pthread_mutex_unlock(&loop->mu);
        return -ESHUTDOWN;
    }
    if (internal)
        loop->stopping = 1;
    /* a non-empty queue has its wakeup pending already, and a draining loop takes the queue
     * before it sleeps */
    int wake = loop->head == NULL && !loop->draining;
    if (loop->tail)
        loop->tail->next = t;
    else
        loop->head = t;
    loop->tail = t;
    pthread_mutex_unlock(&loop->mu);
    if (wake)
        event_active(loop->wakeup, EV_READ, 0);
    return 0;
}

static int post(struct rpc__loop *loop, rpc__task_fn fn, void *a, void *b, int internal)
{
    struct rpc__task *t = malloc(sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->a = a;
    t->b = b;
    t->embedded = 0;
    int rc = post_node(loop, t, internal);
    if (rc)
        free(t);
    return rc;
}

int rpc__loop_post(struct rpc__loop *loop, rpc__task_fn fn, void *a, void *b)
{
    return post(loop, fn, a, b, 0);
}

int rpc__loop_post_node(struct rpc__loop *loop, struct rpc__task *t)
{
    t->embedded = 1;
    return post_node(loop, t, 0);
}

int rpc__loop_on_thread(const struct rpc__loop *loop)
{
    return loop->running && pthread_equal(pthread_self(), loop->thread);
}

static void exit_task(void *a, void *b)
{
    struct rpc__loop *loop = a;
    event_base_loopexit(loop->base, NULL);
}

void rpc__loop_stop(struct rpc__loop *loop)
{
    if (!loop->running)
        return;
    if (post(loop, exit_task, loop, NULL, 1) != 0) {
        mq_error("cannot stop an event loop: out of memory");
        abort();
    }
    pthread_join(loop->thread, NULL);
    loop->running = 0;
    /* Run what slipped in before the stop mark (nothing can be added after it). */
    run_tasks(loop, -1);
}

void rpc__loop_destroy(struct rpc__loop *loop)
{
    if (loop->wakeup)
        event_free(loop->wakeup);
    if (loop->base)
        event_base_free(loop->base);
    loop->wakeup = NULL;
    loop->base = NULL;
    pthread_mutex_destroy(&loop->mu);
}

int rpc__sockaddr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (port < 0 || port > 65535)
        return -EINVAL;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof(*in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
}
