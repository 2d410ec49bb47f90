/* mq_util.c — clocks, checksums, Java-compatible hashes, name rules (see mq_util.h). */
#include "common/mq_util.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/mq_bytes.h"

int64_t mq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mq_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void mq_deadline(struct timespec *ts, clockid_t clock, int64_t us)
{
    clock_gettime(clock, ts);
    ts->tv_sec += (time_t)(us / 1000000);
    ts->tv_nsec += (long)(us % 1000000) * 1000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

uint32_t mq_crc32(const void *p, size_t n)
{
    return mq_crc32_update(0, p, n) & 0x7FFFFFFFu;
}

/* Decodes one UTF-8 sequence at s[*i]; returns the code point (or the raw byte when invalid). */
static uint32_t next_code_point(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || *i + (size_t)len > n) {
        (*i)++;
        return c;
    }
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (int k = 1; k < len; k++) {
        unsigned char cc = s[*i + (size_t)k];
        if ((cc & 0xC0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = cp << 6 | (cc & 0x3Fu);
    }
    *i += (size_t)len;
    return cp;
}

int32_t mq_java_hash(const char *s, size_t n)
{
    return (int32_t)mq_java_hash_more(0, s, n);
}

uint32_t mq_java_hash_more(uint32_t h, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII: one UTF-16 unit per byte, the common case (topics, keys, tags); eight at a
         * time, h*31^8 + s0*31^7 + ... + s7, to shorten the chain of dependent multiplies */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            h = h * 2487512833u + s[i] * 1742810335u + s[i + 1] * 887503681u +
                s[i + 2] * 28629151u + s[i + 3] * 923521u + s[i + 4] * 29791u + s[i + 5] * 961u +
                s[i + 6] * 31u + s[i + 7];
            i += 8;
        }
        if (i == n)
            break;
        if (s[i] < 0x80) {
            h = 31 * h + s[i++];
            continue;
        }
        uint32_t cp = next_code_point(s, n, &i);
        if (cp >= 0x10000) { /* a surrogate pair in UTF-16 */
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    return h;
}

int mq_check_topic(const char *name, size_t n)
{
    if (n == 0 || n > 127)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '%' || c == '|' || c == '_' || c == '-';
        if (!ok)
            return -EINVAL;
    }
    return 0;
}

int mq_json_quote_int_keys(const char *in, size_t len, struct mq_buf *out)
{
    char stack[256]; /* container kinds: '{' or '[' */
    int depth = 0;
    int expect_key = 0; /* inside an object, right after '{' or ',' */
    size_t i = 0;
    while (i < len) {
        char c = in[i];
        if (c == '"') { /* copy a string verbatim, honouring escapes */
            size_t j = i + 1;
            while (j < len && in[j] != '"')
                j += in[j] == '\\' ? 2 : 1;
            if (j >= len)
                return -EBADMSG;
            if (mq_buf_append(out, in + i, j + 1 - i))
                return -ENOMEM;
            i = j + 1;
            expect_key = 0;
            continue;
        }
        if (expect_key && (c == '-' || (c >= '0' && c <= '9'))) {
            size_t j = i + 1;
            while (j < len && in[j] >= '0' && in[j] <= '9')
                j++;
            size_t k = j;
            while (k < len && (in[k] == ' ' || in[k] == '\t' || in[k] == '\n' || in[k] == '\r'))
                k++;
            if (k < len && in[k] == ':') {
                if (mq_buf_append(out, "\"", 1) || mq_buf_append(out, in + i, j - i) ||
                    mq_buf_append(out, "\"", 1))
                    return -ENOMEM;
                i = j;
                expect_key = 0;
                continue;
            }
        }
        if (c == '{' || c == '[') {
            if (depth == (int)sizeof(stack))
                return -EBADMSG;
            stack[depth++] = c;
            expect_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[depth - 1] != (c == '}' ? '{' : '['))
                return -EBADMSG;
            depth--;
            expect_key = 0;
        } else if (c == ',') {
            expect_key = depth > 0 && stack[depth - 1] == '{';
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            expect_key = 0;
        }
        if (mq_buf_append(out, &c, 1))
            return -ENOMEM;
        i++;
    }
    return depth == 0 ? 0 : -EBADMSG;
}

size_t mq_str_copy(char *dst, size_t cap, const char *src, size_t max)
{
    size_t n = strnlen(src, max < cap - 1 ? max : cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
    return n;
}
