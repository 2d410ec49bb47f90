/* mq_util.h — small helpers every module needs: clocks, RocketMQ's checksums and hashes,
 * name validation.
 */
#ifndef MQ_UTIL_H
#define MQ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall clock in milliseconds since the epoch (store timestamps, born timestamps). */
int64_t mq_now_ms(void);
/* Monotonic clock in microseconds (timeouts, latencies). */
int64_t mq_mono_us(void);
/* *ts = us microseconds from now on clock: the absolute deadline of a timed wait. */
void mq_deadline(struct timespec *ts, clockid_t clock, int64_t us);

/* RocketMQ's UtilAll.crc32: zlib's CRC-32 of the bytes, masked with 0x7FFFFFFF. */
uint32_t mq_crc32(const void *p, size_t n);
/* zlib's crc32(crc, p, n), unmasked (mq_crc32.c: carry-less multiplication where available). */
uint32_t mq_crc32_update(uint32_t crc, const void *p, size_t n);

/* Java's String.hashCode() of a UTF-8 string: computed over its UTF-16 code units, so tag
 * hashes (consume queue tagsCode) and index keys hash as RocketMQ's do for any text. Invalid
 * UTF-8 bytes count as single code units of their byte value. */
int32_t mq_java_hash(const char *s, size_t n);
/* The hash of a string that continues one whose hash is h (as unsigned): the hash of A + B is
 * mq_java_hash_more(hash(A), B) when B starts a UTF-8 character. */
uint32_t mq_java_hash_more(uint32_t h, const char *s, size_t n);

/* Copies at most max characters of src, and at most cap - 1, into dst with a NUL (cap > 0);
 * returns the characters copied. A bounded copy without snprintf's formatting cost. */
size_t mq_str_copy(char *dst, size_t cap, const char *src, size_t max);

/* RocketMQ's topic rule: 1..127 characters of [%|a-zA-Z0-9_-]. Returns 0 or -EINVAL. The same
 * rule applies to consumer group names. */
int mq_check_topic(const char *name, size_t n);

struct mq_buf;
/* Rewrites JSON text so that object keys written as bare integers (fastjson's `{0:"a"}`) become
 * strings (`{"0":"a"}`); everything else is copied unchanged. Appends to out. Returns 0,
 * -EBADMSG on an unterminated string or unbalanced brackets, or -ENOMEM. */
int mq_json_quote_int_keys(const char *in, size_t len, struct mq_buf *out);

#endif
