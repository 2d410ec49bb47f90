/* io_shim.c — the store's I/O table and its fault hook (store_io.h). Each entry counts its
 * calls and fails the armed one; otherwise it makes the system call and returns -errno. */
#include "store/store_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

static atomic_long calls[STORE_IO_NOPS];
static struct {
    atomic_long at; /* call number that fails; 0 = none */
    int err;
    int sticky;
} faults[STORE_IO_NOPS];

void store_io_fault(enum store_io_op op, int nth, int err, int sticky)
{
    faults[op].err = err;
    faults[op].sticky = sticky;
    atomic_store(&faults[op].at, atomic_load(&calls[op]) + nth);
}

void store_io_fault_clear(void)
{
    for (int i = 0; i < STORE_IO_NOPS; i++)
        atomic_store(&faults[i].at, 0);
}

long store_io_calls(enum store_io_op op)
{
    return atomic_load(&calls[op]);
}

/* Counts a call; returns the injected -errno or 0. */
static int hook(enum store_io_op op)
{
    long n = atomic_fetch_add(&calls[op], 1) + 1;
    long at = atomic_load(&faults[op].at);
    if (at && (n == at || (faults[op].sticky && n > at)))
        return -faults[op].err;
    return 0;
}

static int sys_open(const char *path, int flags, mode_t mode)
{
    int rc = hook(STORE_IO_OPEN);
    if (rc)
        return rc;
    int fd = open(path, flags | O_CLOEXEC, mode);
    return fd < 0 ? -errno : fd;
}

static ssize_t sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    int rc = hook(STORE_IO_PWRITE);
    if (rc)
        return rc;
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        done += (size_t)w;
    }
    return (ssize_t)done;
}

static int sys_fsync(int fd)
{
    int rc = hook(STORE_IO_FSYNC);
    if (rc)
        return rc;
    return fdatasync(fd) < 0 ? -errno : 0;
}

static int sys_msync(void *addr, size_t len, int flags)
{
    int rc = hook(STORE_IO_MSYNC);
    if (rc)
        return rc;
    return msync(addr, len, flags) < 0 ? -errno : 0;
}

static int sys_ftruncate(int fd, off_t len)
{
    int rc = hook(STORE_IO_FTRUNCATE);
    if (rc)
        return rc;
    return ftruncate(fd, len) < 0 ? -errno : 0;
}

static int sys_fallocate(int fd, off_t off, off_t len)
{
    int rc = hook(STORE_IO_FALLOCATE);
    if (rc)
        return rc;
    rc = posix_fallocate(fd, off, len);
    return rc == EOPNOTSUPP || rc == EINVAL ? 0 : -rc; /* filesystems without it: sparse */
}

static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    int rc = hook(STORE_IO_MMAP);
    if (rc) {
        errno = -rc;
        return MAP_FAILED;
    }
    return mmap(addr, len, prot, flags, fd, off);
}

static int sys_statvfs(const char *path, struct statvfs *out)
{
    return statvfs(path, out) < 0 ? -errno : 0;
}

struct store_io store_io = {
    .open = sys_open,
    .pwrite = sys_pwrite,
    .fsync = sys_fsync,
    .msync = sys_msync,
    .ftruncate = sys_ftruncate,
    .fallocate = sys_fallocate,
    .mmap = sys_mmap,
    .statvfs = sys_statvfs,
};
