/* store_io.h — the store's I/O shim (sqlite test_vfs style): every open, pwrite, fsync,
 * msync, ftruncate, fallocate and mmap the store makes goes through store_io, and a test can
 * make the Nth call of one kind fail with a chosen errno.
 *
 * Process-wide. The fault settings are for tests: set them while no store is opening or
 * closing. Functions return 0/fd/bytes or -errno (mmap: MAP_FAILED with errno set).
 */
#ifndef STORE_IO_H
#define STORE_IO_H

#include <stddef.h>
#include <sys/statvfs.h>
#include <sys/types.h>

enum store_io_op {
    STORE_IO_OPEN = 0,
    STORE_IO_PWRITE,
    STORE_IO_FSYNC, /* fsync and fdatasync */
    STORE_IO_MSYNC,
    STORE_IO_FTRUNCATE,
    STORE_IO_FALLOCATE,
    STORE_IO_MMAP,
    STORE_IO_NOPS,
};

struct store_io {
    int (*open)(const char *path, int flags, mode_t mode);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fsync)(int fd);
    int (*msync)(void *addr, size_t len, int flags);
    int (*ftruncate)(int fd, off_t len);
    int (*fallocate)(int fd, off_t off, off_t len);
    void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
    /* disk usage for retention; tests replace it to fake a full disk */
    int (*statvfs)(const char *path, struct statvfs *out);
};

/* The table the store calls through (defaults: the system calls behind the fault hook). Tests
 * may also replace entries (set them back before the next test). */
extern struct store_io store_io;

/* Makes the nth next call (1 = the very next) of op fail with -err; with sticky, that call and
 * every later one fail until store_io_fault_clear. */
void store_io_fault(enum store_io_op op, int nth, int err, int sticky);
void store_io_fault_clear(void);
/* Calls of op so far (counted whether or not they failed). */
long store_io_calls(enum store_io_op op);

#endif
