/* mountwatch.c — ends mqfs when its mount leaves the mount namespace it was made in.
 *
 * A mount namespace created while mqfs is mounted (unshare -m, `ip netns exec`, a container
 * runtime) starts with a copy of every mount, this one included; where `/` does not propagate
 * (a private root, common in containers) `fusermount3 -u` then removes only the caller's copy.
 * The kernel keeps the FUSE connection while any copy lives, so the FUSE loop would go on
 * serving until the last such namespace ends — "mqfs did not exit after unmount". The unmount
 * in mqfs's own namespace is what the user asked for: this thread watches /proc/self/mountinfo
 * (the kernel flags every change of the mount table to poll()) and, once the mount it recorded
 * is gone and no file is open through it any more, ends the loop like SIGTERM would (files
 * open at the unmount — `fusermount3 -u -z` — go on working until their last close). The
 * shutdown then closes the FUSE device, so the copies left elsewhere fail with ENOTCONN instead
 * of talking to a daemon that has gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mq_log.h"
#include "fs/mqfs_int.h"

#define WATCH_POLL_MS      1000 /* also re-read on a timer, in case a change is not flagged */
#define WATCH_OPEN_POLL_MS 100  /* unmounted, files still open: how often to look again */

/* Reads the whole of /proc/self/mountinfo from fd into a malloc'd string (NULL on error). */
static char *read_all(int fd)
{
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    if (!buf || lseek(fd, 0, SEEK_SET) < 0) {
        free(buf);
        return NULL;
    }
    for (;;) {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

/* The id of the last mount at mountpoint whose type is fuse*, or -1. A line is
 * "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS". */
static long find_mount(char *table, const char *mountpoint)
{
    long found = -1;
    for (char *save = NULL, *line = strtok_r(table, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[5], *p = line, *sep = strstr(line, " - ");
        int i;
        for (i = 0; i < 5 && p; i++) {
            f[i] = p;
            p = strchr(p, ' ');
            if (p)
                *p++ = '\0';
        }
        if (i < 5 || !sep || strncmp(sep + 3, "fuse", 4) != 0)
            continue;
        unescape(f[4]);
        if (strcmp(f[4], mountpoint) == 0)
            found = strtol(f[0], NULL, 10);
    }
    return found;
}

static long mount_id(int fd, const char *mountpoint)
{
    char *table = read_all(fd);
    if (!table)
        return -2; /* unknown: treat as still mounted */
    long id = find_mount(table, mountpoint);
    free(table);
    return id;
}

/* Files open through the mount (not directories). */
static size_t open_files(struct mqfs *fs)
{
    size_t n = 0;
    pthread_mutex_lock(&fs->lock);
    for (struct mqfs_handle *h = fs->handles; h; h = h->next)
        n++;
    pthread_mutex_unlock(&fs->lock);
    return n;
}

static void *watch_main(void *arg)
{
    struct mqfs *fs = arg;
    struct pollfd p[2] = {{.fd = fs->watch_fd, .events = POLLPRI},
                          {.fd = fs->watch_pipe[0], .events = POLLIN}};
    int gone = 0;
    for (;;) {
        int n = poll(p, 2, gone ? WATCH_OPEN_POLL_MS : WATCH_POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break; /* stop */
        if (!gone) {
            long id = mount_id(fs->watch_fd, fs->watch_path);
            if (id == fs->watch_id || id == -2)
                continue;
            gone = 1;
            fs->watch_gone = 1; /* the loop may also end by itself now: the last close lets
                                 * the kernel drop the connection */
            p[0].fd = -1;       /* the table no longer matters */
        }
        /* Files still open (`fusermount3 -u -z`, or through a copy in another namespace) go
         * on working: it ends once the last of them is closed. */
        size_t files = open_files(fs);
        if (files > 0) {
            if (gone == 1)
                mq_info("%s is no longer mounted here: ending once its %zu open file%s closed",
                        fs->watch_path, files, files == 1 ? " is" : "s are");
            gone = 2;
            continue;
        }
        mq_info("%s is no longer mounted here (a copy may live on in another mount namespace): "
                "ending",
                fs->watch_path);
        pthread_kill(fs->main_thread, SIGTERM); /* ends the FUSE loop like a SIGTERM */
        break;
    }
    return NULL;
}

int mqfs__mountwatch_start(struct mqfs *fs, const char *mountpoint)
{
    fs->watch_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fs->watch_fd < 0)
        return -errno;
    snprintf(fs->watch_path, sizeof(fs->watch_path), "%s", mountpoint);
    fs->watch_id = mount_id(fs->watch_fd, fs->watch_path);
    if (fs->watch_id < 0 || pipe2(fs->watch_pipe, O_CLOEXEC) < 0) {
        int rc = fs->watch_id < 0 ? -ENOENT : -errno;
        close(fs->watch_fd);
        fs->watch_fd = -1;
        return rc;
    }
    fs->main_thread = pthread_self();
    sigset_t old; /* the watcher itself never takes the shutdown signals */
    mqfs__block_shutdown_signals(&old);
    int rc = pthread_create(&fs->watcher, NULL, watch_main, fs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        close(fs->watch_pipe[0]);
        close(fs->watch_pipe[1]);
        close(fs->watch_fd);
        fs->watch_fd = -1;
        return -rc;
    }
    fs->watch_started = 1;
    return 0;
}

void mqfs__mountwatch_stop(struct mqfs *fs)
{
    if (!fs->watch_started)
        return;
    (void)!write(fs->watch_pipe[1], "x", 1);
    pthread_join(fs->watcher, NULL);
    close(fs->watch_pipe[0]);
    close(fs->watch_pipe[1]);
    close(fs->watch_fd);
    fs->watch_fd = -1;
    fs->watch_started = 0;
}
