/* passthrough.c — mqbench-passthrough: the FUSE ceiling for the file-interface benchmark. A
 * minimal libfuse3 low-level filesystem that mirrors one directory (files only, flat), with
 * the same mount settings mqfs uses (direct_io, 1 MiB st_blksize), so `cat big > MNT/f` measures
 * what FUSE itself costs per request on this machine.
 * Usage: mqbench-passthrough SOURCE_DIR MOUNTPOINT   (foreground; fusermount3 -u to stop) */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int src_fd; /* the mirrored directory */

/* Inode numbers: 1 is the root; files get their source inode number + 1 (no collisions with 1
 * for a flat directory on one filesystem). Names are resolved again from the directory. */
static char names[1024][256];
static size_t nnames;

static fuse_ino_t ino_of(const char *name)
{
    for (size_t i = 0; i < nnames; i++)
        if (strcmp(names[i], name) == 0)
            return i + 2;
    if (nnames == 1024)
        return 0;
    snprintf(names[nnames], sizeof(names[0]), "%s", name);
    return ++nnames + 1;
}

static const char *name_of(fuse_ino_t ino)
{
    return ino >= 2 && ino - 2 < nnames ? names[ino - 2] : NULL;
}

static int stat_of(fuse_ino_t ino, struct stat *st)
{
    if (ino == 1)
        return fstat(src_fd, st) ? -errno : 0;
    const char *n = name_of(ino);
    if (!n)
        return -ENOENT;
    if (fstatat(src_fd, n, st, 0))
        return -errno;
    st->st_ino = ino;
    st->st_blksize = 1 << 20;
    return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    struct stat st;
    if (parent != 1 || fstatat(src_fd, name, &st, 0)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    e.ino = ino_of(name);
    stat_of(e.ino, &e.attr);
    e.attr_timeout = e.entry_timeout = 1;
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    int rc = stat_of(ino, &st);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, 1);
}

static void open_common(fuse_req_t req, fuse_ino_t ino, const char *name, int flags, mode_t mode,
                        struct fuse_file_info *fi, int create)
{
    int fd = openat(src_fd, name, (flags & ~O_APPEND) | (create ? O_CREAT : 0), mode);
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    fi->fh = (uint64_t)fd;
    fi->direct_io = 1;
    if (create) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.ino = ino_of(name);
        stat_of(e.ino, &e.attr);
        fuse_reply_create(req, &e, fi);
    } else {
        fuse_reply_open(req, fi);
    }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    const char *n = name_of(ino);
    if (!n)
        fuse_reply_err(req, ENOENT);
    else
        open_common(req, ino, n, fi->flags, 0, fi, 0);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    open_common(req, 0, name, fi->flags, mode, fi, 1);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    char *buf = malloc(size ? size : 1);
    ssize_t n = buf ? pread((int)fi->fh, buf, size, off) : -1;
    if (n < 0)
        fuse_reply_err(req, buf ? errno : ENOMEM);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    ssize_t n = pwrite((int)fi->fh, buf, size, off);
    if (n < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_write(req, (size_t)n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    close((int)fi->fh);
    fuse_reply_err(req, 0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    if ((to_set & FUSE_SET_ATTR_SIZE) && fi && ftruncate((int)fi->fh, attr->st_size)) {
        fuse_reply_err(req, errno);
        return;
    }
    op_getattr(req, ino, fi);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mqbench-passthrough SOURCE_DIR MOUNTPOINT\n");
        return 2;
    }
    src_fd = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (src_fd < 0) {
        perror(argv[1]);
        return 1;
    }
    struct fuse_lowlevel_ops ops = {.lookup = op_lookup,
                                    .getattr = op_getattr,
                                    .open = op_open,
                                    .create = op_create,
                                    .read = op_read,
                                    .write = op_write,
                                    .release = op_release,
                                    .setattr = op_setattr};
    char *fargv[] = {argv[0], NULL};
    struct fuse_args args = FUSE_ARGS_INIT(1, fargv);
    struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
    int rc = 1;
    if (se && fuse_set_signal_handlers(se) == 0 && fuse_session_mount(se, argv[2]) == 0) {
        rc = fuse_session_loop(se) ? 1 : 0;
        fuse_session_unmount(se);
        fuse_remove_signal_handlers(se);
    }
    if (se)
        fuse_session_destroy(se);
    close(src_fd);
    return rc;
}
