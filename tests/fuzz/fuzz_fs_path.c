/* fuzz_fs_path.c — libFuzzer target for mqfs's pure input handling (fs/path.c, fs/lines.c).
 *
 * Paths: any bytes parse or fail cleanly; a parsed node formats to a canonical path that parses
 * back to the same node, and whose file name parses as the same child of its parent.
 * Lines: the same bytes, written in chunks with batches failing as the input says, keep the
 * model "every accepted byte is sent (as body + '\n') or carried, in order" after every call,
 * except a partial line dropped when it grows past max_line; refused writes consume nothing,
 * short writes end at a line boundary. */
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

/* The line model: every byte a write accepted is either sent (body + '\n') or carried. */
struct sink {
    uint8_t *sent;
    size_t len;
    unsigned batch, fail_mask; /* batch i (mod 8) fails when bit i of fail_mask is set */
};

static int sink_send(void *arg, const struct mqc_body *lines, size_t n)
{
    struct sink *s = arg;
    if (s->fail_mask & (1u << (s->batch++ % 8)))
        return -5; /* -EIO */
    for (size_t i = 0; i < n; i++) {
        if (lines[i].len == 0 || memchr(lines[i].p, '\n', lines[i].len))
            abort(); /* bodies are non-empty and never hold the newline */
        memcpy(s->sent + s->len, lines[i].p, lines[i].len);
        s->len += lines[i].len;
        s->sent[s->len++] = '\n';
    }
    return 0;
}

static void check_model(const struct sink *s, const struct mqfs_lines *l, const uint8_t *acc,
                        size_t acc_len)
{
    if (s->len + l->carry_len != acc_len || memcmp(s->sent, acc, s->len) != 0 ||
        (l->carry_len && memcmp(l->carry, acc + s->len, l->carry_len) != 0))
        abort();
}

/* Writes the input in chunks (sizes from the input), with batches failing as the input says;
 * retries short writes; checks the model after every call. */
static void check_lines(const uint8_t *data, size_t size)
{
    if (size < 3)
        return;
    unsigned chunk = 1 + data[0] % 32;
    struct sink s = {malloc(2 * size + 2), 0, 0, data[1]};
    uint8_t *acc = malloc(size);
    size_t acc_len = 0;
    struct mqfs_lines l;
    struct mqfs_lines_cfg cfg = {
        .max_line = 64, .batch_bytes = 128, .batch_msgs = 3, .msg_overhead = 8};
    mqfs_lines_init(&l, &cfg);
    const uint8_t *p = data + 2;
    size_t n = size - 2, pos = 0;
    while (pos < n) {
        size_t k = n - pos < chunk ? n - pos : chunk;
        size_t carried_before = l.carry_len;
        long r = mqfs_lines_write(&l, p + pos, k, sink_send, &s);
        if (r > (long)k)
            abort();
        if (r == -90 && carried_before && l.carry_len == 0) /* -EMSGSIZE */
            acc_len -= carried_before; /* a line grown past max_line: its accepted part goes */
        if (r > 0) {
            memcpy(acc + acc_len, p + pos, (size_t)r);
            acc_len += (size_t)r;
            pos += (size_t)r;
        } else {
            pos += k; /* refused: these bytes are dropped by the writer */
        }
        check_model(&s, &l, acc, acc_len);
    }
    size_t carried = l.carry_len;
    if (mqfs_lines_flush(&l, sink_send, &s) == 0 && carried) {
        if (s.len != acc_len + 1 || memcmp(s.sent, acc, acc_len) != 0 || l.carry_len != 0)
            abort();
    } else {
        check_model(&s, &l, acc, acc_len);
    }
    mqfs_lines_destroy(&l);
    free(acc);
    free(s.sent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_path(data, size);
    check_lines(data, size);
    return 0;
}
