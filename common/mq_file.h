/* mq_file.h — small metadata files written atomically: temp file, fsync, rename, fsync of the
 * directory, so a crash leaves either the old or the new content, never a torn mix. Used for
 * topics.json, consumerOffset.json, subscriptionGroup.json and similar. */
#ifndef MQ_FILE_H
#define MQ_FILE_H

#include <stddef.h>

/* Replaces path's content with (data, len). Returns 0 or -errno; on error path is unchanged. */
int mq_file_write_atomic(const char *path, const void *data, size_t len);

/* Reads a whole file (at most max bytes) into a malloc'd, NUL-terminated buffer the caller
 * frees. Returns 0, -ENOENT, -EFBIG (larger than max) or another -errno. */
int mq_file_read_all(const char *path, size_t max, char **out, size_t *len);

/* mkdir -p. Returns 0 or -errno. */
int mq_mkdirs(const char *path, int mode);

#endif
