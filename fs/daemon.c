/* daemon.c — the mqfs program: command line, the FUSE session and its multi-threaded loop,
 * the producer and admin handles, and a clean shutdown.
 *
 *   mqfs MOUNTPOINT [-n namesrvAddr] [-f] [-d] [-s] [-o fuse-options]
 *
 * The NameServers can also come as a mount option, `-o namesrv=host:port`.
 *
 * Shutdown: `fusermount3 -u MOUNTPOINT` or SIGTERM/SIGINT/SIGHUP end the loop; requests being
 * served finish first (libfuse defers the workers' cancellation to their next read), then the
 * mount goes, partial lines and blobs still held by open files are sent, and mqfs exits 0.
 * libmqclient's threads are started with those signals blocked, so a signal always lands on a
 * FUSE thread and wakes the loop.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "fs/mqfs_int.h"

#define DEFAULT_NAMESRV "127.0.0.1:9876"
#define NS_TIMEOUT_MS   3000

struct cli {
    char *namesrv;
    int queues;
    int help;
};

static const struct fuse_opt cli_spec[] = {
    {"-n %s", offsetof(struct cli, namesrv), 0},
    {"--namesrv=%s", offsetof(struct cli, namesrv), 0},
    {"namesrv=%s", offsetof(struct cli, namesrv), 0}, /* -o namesrv=... */
    {"queues=%d", offsetof(struct cli, queues), 0},   /* -o queues=N */
    {"-h", offsetof(struct cli, help), 1},
    {"--help", offsetof(struct cli, help), 1},
    FUSE_OPT_END,
};

static void usage(const char *prog)
{
    printf("usage: %s MOUNTPOINT [-n namesrvAddr] [-f] [-o options]\n\n"
           "    -n ADDR    NameServers, host:port[;host:port] (default %s);\n"
           "               also -o namesrv=ADDR\n"
           "    -o queues=N  queues of a topic created here, on each master (default %d)\n"
           "    -f         stay in the foreground\n",
           prog, DEFAULT_NAMESRV, MQFS_DEFAULT_QUEUES);
    fuse_cmdline_help();
    fuse_lowlevel_help();
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    /* Writeback caching would make the kernel own sizes and re-send appended bytes
     * (FUSE-NOTES): never for message files. */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

void mqfs__block_shutdown_signals(sigset_t *old)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, old);
}

static int clients_new(struct mqfs *fs)
{
    struct mqc_config cfg = {
        .namesrv = fs->namesrv,
        .group = "MQFS_PRODUCER",
        .send_timeout_ms = NS_TIMEOUT_MS,
        .compress_over = 0, /* bodies stored as written: log views render them as is */
    };
    /* Threads started here (libmqclient's, the refresher) inherit a mask without the shutdown
     * signals. */
    sigset_t old;
    mqfs__block_shutdown_signals(&old);
    int rc = mqc_producer_new(&cfg, &fs->producer);
    if (rc == 0)
        rc = mqc_admin_new(&cfg, &fs->admin);
    if (rc == 0)
        rc = mqfs__meta_start(fs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int fs_init(struct mqfs *fs, const char *namesrv)
{
    memset(fs, 0, sizeof(*fs));
    fs->namesrv = namesrv;
    fs->started_ms = mq_now_ms();
    pthread_mutex_init(&fs->lock, NULL);
    pthread_mutex_init(&fs->fetch_lock, NULL);
    mq_map_init(&fs->groups);
    pthread_mutex_init(&fs->groups_fetch_lock, NULL);
    mq_map_init(&fs->group_set);
    mq_map_init(&fs->created);
    pthread_mutex_init(&fs->route_lock, NULL);
    mq_map_init(&fs->routes);
    pthread_mutex_init(&fs->wait_lock, NULL);
    pthread_cond_init(&fs->wait_cond, NULL);
    mq_map_init(&fs->topic_set);
    return mqfs__table_init(fs);
}

static void fs_destroy(struct mqfs *fs)
{
    mqfs__meta_stop(fs);
    mqc_admin_free(fs->admin);
    mqc_producer_free(fs->producer);
    mqfs__table_destroy(fs);
    mq_map_destroy(&fs->groups);
    mq_map_destroy(&fs->group_set);
    pthread_mutex_destroy(&fs->groups_fetch_lock);
    mq_map_destroy(&fs->created);
    mqfs__routes_destroy(fs);
    pthread_mutex_destroy(&fs->route_lock);
    pthread_cond_destroy(&fs->wait_cond);
    pthread_mutex_destroy(&fs->wait_lock);
    mq_map_destroy(&fs->topic_set);
    free(fs->topics.v);
    free(fs->brokers.v);
    pthread_mutex_destroy(&fs->fetch_lock);
    pthread_mutex_destroy(&fs->lock);
}

int mqfs_main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct cli cli = {0};
    struct fuse_cmdline_opts cmd;
    memset(&cmd, 0, sizeof(cmd));
    struct fuse_session *se = NULL;
    struct mqfs fs;
    int ret = 1, mounted = 0, inited = 0;

    if (fuse_opt_parse(&args, &cli, cli_spec, NULL) != 0 || fuse_parse_cmdline(&args, &cmd) != 0)
        goto out;
    if (cli.help || cmd.show_help) {
        usage(argv[0]);
        ret = 0;
        goto out;
    }
    if (cmd.show_version) {
        printf("mqfs, FUSE library %s\n", fuse_pkgversion());
        ret = 0;
        goto out;
    }
    if (!cmd.mountpoint) {
        fprintf(stderr, "usage: %s MOUNTPOINT [-n namesrvAddr] [-f] [-o options]\n", argv[0]);
        ret = 2;
        goto out;
    }
    const char *namesrv = cli.namesrv && *cli.namesrv ? cli.namesrv : DEFAULT_NAMESRV;
    if (fs_init(&fs, namesrv) != 0)
        goto out;
    inited = 1;
    if (cli.queues < 0 || cli.queues > 1024) {
        fprintf(stderr, "%s: -o queues=N: N must be 1..1024\n", argv[0]);
        ret = 2;
        goto out;
    }
    fs.topic_queues = cli.queues ? cli.queues : MQFS_DEFAULT_QUEUES;

    struct fuse_lowlevel_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.init = op_init;
    mqfs__ops_dir(&ops);
    mqfs__ops_file(&ops);
    /* Default mount options first; the user's -o come after and win. */
    fuse_opt_insert_arg(&args, 1, "-ofsname=mqfs,subtype=mqfs");
    if (!(se = fuse_session_new(&args, &ops, sizeof(ops), &fs)))
        goto out;
    fs.se = se;
    if (fuse_set_signal_handlers(se) != 0)
        goto out;
    if (fuse_session_mount(se, cmd.mountpoint) != 0)
        goto out_signals;
    mounted = 1;
    if (fuse_daemonize(cmd.foreground) != 0)
        goto out_signals;
    /* After daemonizing: a fork keeps only the calling thread. */
    int rc = clients_new(&fs);
    if (rc) {
        mq_error("cannot start the client for NameServer %s: %s", namesrv, mq_strerror(rc));
        goto out_signals;
    }
    mq_info("mounted at %s, NameServer %s", cmd.mountpoint, namesrv);
    /* From the thread that runs the loop: the watcher ends it by signalling this thread. */
    if ((rc = mqfs__mountwatch_start(&fs, cmd.mountpoint)) != 0)
        mq_warn("not watching the mount (%s): an unmount leaves mqfs running while a copy of "
                "the mount lives on in another mount namespace",
                mq_strerror(rc));

    if (cmd.singlethread) {
        rc = fuse_session_loop(se);
    } else {
        struct fuse_loop_config lc = {.clone_fd = cmd.clone_fd, .max_idle_threads = 10};
        rc = fuse_session_loop_mt(se, &lc);
    }
    /* 0 when unmounted, the signal number when a signal ended it: both are clean. So is an
     * error once the mount had gone (after `fusermount3 -u -z` the kernel drops the
     * connection at the last close, and libfuse's workers may report that as an error). */
    mqfs__mountwatch_stop(&fs);
    mqfs__down_waits_stop(&fs); /* their readers get EIO: nothing is busy for the unmount */
    ret = rc < 0 && !fs.watch_gone ? 1 : 0;
    if (ret)
        mq_error("FUSE loop: %s", mq_strerror(rc));
    else if (rc < 0)
        mq_info("FUSE loop: %s, the mount having gone: unmounting %s", mq_strerror(rc),
                cmd.mountpoint);
    else
        mq_info("unmounting %s%s", cmd.mountpoint,
                fs.watch_gone ? " (unmounted)"
                : rc > 0      ? " (signal)"
                              : "");

out_signals:
    /* Also when the watcher saw the mount gone: this closes the device, which ends any copies
     * left in other namespaces (libfuse then reports that its own unmount found nothing). */
    if (mounted)
        fuse_session_unmount(se);
    mq_debug("shutdown: unmounted");
    mqfs__handles_shutdown(&fs); /* partial lines and blobs of files still open */
    mqfs__dirs_shutdown(&fs);
    mq_debug("shutdown: open files done");
    /* Only now: a SIGTERM during the steps above must not kill the process before the data of
     * files still open is sent (with the handlers in place it only ends an ended loop). */
    fuse_remove_signal_handlers(se);
out:
    if (se)
        fuse_session_destroy(se);
    mq_debug("shutdown: session destroyed");
    if (inited)
        fs_destroy(&fs);
    mq_debug("shutdown: clients stopped");
    free(cmd.mountpoint);
    free(cli.namesrv);
    fuse_opt_free_args(&args);
    return ret;
}
