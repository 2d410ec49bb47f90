/* fuzz_fs_path.c — libFuzzer target for mqfs's pure input handling (fs/path.c, fs/lines.c).
 *
 * Paths: any bytes parse or fail cleanly; a parsed node formats to a canonical path that parses
 * back to the same node, and whose file name parses as the same child of its parent.
 * Lines: the same bytes, written in two pieces split at a point taken from the input, become
 * messages whose bodies plus '\n' (and the final flushed piece) give back the input exactly,
 * whenever no error is reported. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs/mqfs.h"

static void check_path(const uint8_t *data, size_t size)
{
    struct mqfs_node a, b;
    if (mqfs_path_parse((const char *)data, size, &a) != 0)
        return;
    char path[2048];
    int w = mqfs_node_path(&a, path, sizeof(path));
    if (w < 0)
        abort();
    if (mqfs_path_parse(path, (size_t)w, &b) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
        abort();
    char again[2048];
    if (mqfs_node_path(&b, again, sizeof(again)) != w || strcmp(path, again) != 0)
        abort();
}

struct sink {
    uint8_t *out;
    size_t len;
};

static int sink_send(void *arg, const struct mqfs_line *lines, size_t n)
{
    struct sink *s = arg;
    for (size_t i = 0; i < n; i++) {
        if (lines[i].len == 0 || memchr(lines[i].p, '\n', lines[i].len))
            abort(); /* bodies are non-empty and never hold the newline */
        memcpy(s->out + s->len, lines[i].p, lines[i].len);
        s->len += lines[i].len;
        s->out[s->len++] = '\n';
    }
    return 0;
}

static void check_lines(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    size_t split = data[0] % size;
    struct sink s = {malloc(2 * size + 2), 0};
    struct mqfs_lines l;
    struct mqfs_lines_cfg cfg = {
        .max_line = 64, .batch_bytes = 128, .batch_msgs = 3, .msg_overhead = 8};
    mqfs_lines_init(&l, &cfg);
    long r1 = mqfs_lines_write(&l, data, split, sink_send, &s);
    long r2 =
        r1 == (long)split ? mqfs_lines_write(&l, data + split, size - split, sink_send, &s) : -1;
    size_t carried = mqfs_lines_pending(&l);
    if (r1 == (long)split && r2 == (long)(size - split)) {
        if (mqfs_lines_flush(&l, sink_send, &s) != 0)
            abort();
        /* a flushed final piece gained a '\n' the input may not have had */
        size_t cmp = carried ? s.len - 1 : s.len;
        if (cmp != size || memcmp(s.out, data, size) != 0)
            abort();
    }
    mqfs_lines_destroy(&l);
    free(s.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_path(data, size);
    check_lines(data, size);
    return 0;
}
