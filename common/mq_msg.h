/* mq_msg.h — the commitlog record codec shared by store, broker and client: encode a record from
 * a message, decode and validate one from untrusted bytes, message properties
 * (`name\x01value\x02`), and the offset message id. Format: docs/FORMATS.md §1.1 (RocketMQ
 * CommitLog.java / MessageDecoder.java).
 */
#ifndef MQ_MSG_H
#define MQ_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/mq_bytes.h"

#define MQ_MSG_MAGIC_V1    0xDAA320A7u /* 4.x record */
#define MQ_MSG_MAGIC_V2    0xDAA320ABu /* 5.x record, 2-byte topic length (read only) */
#define MQ_MSG_MAGIC_BLANK 0xCBD43194u /* end-of-file blank record */
#define MQ_MSG_BLANK_MIN   8           /* END_FILE_MIN_BLANK_LENGTH */
#define MQ_MSG_TOPIC_MAX   127
#define MQ_MSG_PROPS_MAX   32767
#define MQ_MSG_HDR_V4      91 /* fixed part with IPv4 hosts and 1-byte topic length */

/* SYSFLAG bits (MessageSysFlag.java). */
#define MQ_SYSFLAG_COMPRESSED    0x1
#define MQ_SYSFLAG_MULTI_TAGS    0x2
#define MQ_SYSFLAG_TX_MASK       0xC
#define MQ_SYSFLAG_TX_NOT        0x0
#define MQ_SYSFLAG_TX_PREPARED   0x4
#define MQ_SYSFLAG_TX_COMMIT     0x8
#define MQ_SYSFLAG_TX_ROLLBACK   0xC
#define MQ_SYSFLAG_BORNHOST_V6   0x10
#define MQ_SYSFLAG_STOREHOST_V6  0x20
#define MQ_SYSFLAG_NEED_UNWRAP   0x40
#define MQ_SYSFLAG_INNER_BATCH   0x80
#define MQ_SYSFLAG_COMPRESS_MASK 0x700
#define MQ_SYSFLAG_COMPRESS_LZ4  0x100
#define MQ_SYSFLAG_COMPRESS_ZSTD 0x200
#define MQ_SYSFLAG_COMPRESS_ZLIB 0x300

/* A prepared or rolled-back transactional record: stored, but without a consume-queue entry or
 * queue offset (RocketMQ's CommitLog and ReputMessageService), so never delivered. */
static inline int mq_sysflag_tx_hidden(int32_t sysflag)
{
    int tx = sysflag & MQ_SYSFLAG_TX_MASK;
    return tx == MQ_SYSFLAG_TX_PREPARED || tx == MQ_SYSFLAG_TX_ROLLBACK;
}

/* Field offsets that do not depend on the host variants (§1.1). */
#define MQ_MSG_OFF_TOTALSIZE  0
#define MQ_MSG_OFF_MAGIC      4
#define MQ_MSG_OFF_BODYCRC    8
#define MQ_MSG_OFF_QUEUEID    12
#define MQ_MSG_OFF_FLAG       16
#define MQ_MSG_OFF_QUEUEOFF   20
#define MQ_MSG_OFF_PHYSOFF    28
#define MQ_MSG_OFF_SYSFLAG    36
#define MQ_MSG_OFF_BORNTS     40
#define MQ_MSG_OFF_BORNHOST   48
#define MQ_MSG_OFF_STORETS_V4 56

/* Well-known property names (MessageConst.java). */
#define MQ_PROP_KEYS       "KEYS"
#define MQ_PROP_TAGS       "TAGS"
#define MQ_PROP_WAIT       "WAIT"
#define MQ_PROP_UNIQ_KEY   "UNIQ_KEY"
#define MQ_PROP_DELAY      "DELAY"
#define MQ_PROP_REAL_TOPIC "REAL_TOPIC" /* a delayed message's topic and queue, kept while it */
#define MQ_PROP_REAL_QID   "REAL_QID"   /* waits in SCHEDULE_TOPIC_XXXX (and after) */

/* Delayed messages wait in this topic, queue = delay level - 1 (RocketMQ TopicValidator). */
#define MQ_SCHEDULE_TOPIC "SCHEDULE_TOPIC_XXXX"
/* RocketMQ's default messageDelayLevel: the delay of level i+1 is the i-th word. */
#define MQ_DELAY_LEVELS_DEFAULT "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
#define MQ_DELAY_LEVELS_MAX     64

/* A socket address as RocketMQ stores it: IPv4 (4 bytes) or IPv6 (16), plus port. */
struct mq_host {
    uint8_t v6; /* 1 = 16-byte address */
    uint8_t addr[16];
    uint32_t port;
};

/* A message record, decoded or to encode. Pointers are borrowed: after mq_msg_decode they point
 * into the decoded buffer and are valid as long as it is; for mq_msg_encode they are the
 * caller's. topic is not NUL-terminated. The host variants are chosen by born_host.v6 and
 * store_host.v6 (encode sets the SYSFLAG bits from them). */
struct mq_msg {
    uint32_t total_size; /* decode: TOTALSIZE; encode: ignored (computed) */
    uint32_t magic;      /* decode only */
    uint32_t body_crc;   /* decode: stored value */
    int32_t queue_id;
    int32_t flag;
    int64_t queue_offset;
    int64_t phys_offset;
    int32_t sysflag;
    int64_t born_ts;
    struct mq_host born_host;
    int64_t store_ts;
    struct mq_host store_host;
    int32_t reconsume_times;
    int64_t prepared_tx_offset;
    const uint8_t *body;
    uint32_t body_len;
    const char *topic;
    uint16_t topic_len;
    const char *props;
    uint16_t props_len;
};

/* Record length for m (calMsgLength), or a negative errno: -EINVAL for a topic longer than 127
 * or empty, properties longer than 32767. */
int64_t mq_msg_record_size(const struct mq_msg *m);

/* Encodes m into buf (cap bytes) with BODYCRC = crc (from mq_crc32(body)). Sets the host bits in
 * the written SYSFLAG. Returns the record length, -EINVAL (see mq_msg_record_size) or -ENOSPC
 * when cap is too small. Thread-safe. */
int64_t mq_msg_encode_crc(const struct mq_msg *m, uint32_t crc, uint8_t *buf, size_t cap);
/* As mq_msg_encode_crc, computing the body CRC. */
int64_t mq_msg_encode(const struct mq_msg *m, uint8_t *buf, size_t cap);

/* Validation flags for mq_msg_decode. */
#define MQ_MSG_CHECK_CRC 0x1 /* verify BODYCRC */
#define MQ_MSG_CHECK_STRICT                                                                        \
    0x2 /* also: topic characters valid, properties well-formed and
                                 * ending with 0x02 (catches torn tails the CRC cannot see) */

/* Decodes and validates the record at p (n bytes available, untrusted). max_body bounds
 * BODYLENGTH (0 = no bound beyond n). On success fills out (pointers into p) and returns the
 * record length. A blank record returns its TOTALSIZE with out->magic == MQ_MSG_MAGIC_BLANK and
 * nothing else set. Errors: MQ_ECORRUPT (bad magic, length, CRC; logged with file:line),
 * -ENODATA when n < 8 or TOTALSIZE is 0 (end of data). Never reads outside [p, p+n). */
int64_t mq_msg_decode(const uint8_t *p, size_t n, uint32_t max_body, int flags, struct mq_msg *out);

/* Offset of STORETIMESTAMP in a record with this SYSFLAG (56 or 68). */
static inline size_t mq_msg_store_ts_off(int32_t sysflag)
{
    return (sysflag & MQ_SYSFLAG_BORNHOST_V6) ? 68 : MQ_MSG_OFF_STORETS_V4;
}

/* Properties: `name\x01value\x02` repeated. Finds name in props (len bytes); on success sets
 * *val and *vlen to a slice of props and returns 0; -ENOENT when absent; MQ_ECORRUPT when the
 * bytes are not well-formed. Thread-safe. */
int mq_props_get(const char *props, size_t len, const char *name, const char **val, size_t *vlen);
/* Reads the pair at *pos of props (len bytes) as every function here does: NAME 0x01 VALUE,
 * then 0x02 (the last pair may lack it). 1 with the pair's slices and *pos past it, 0 at the
 * end, -EBADMSG when no 0x01 follows; logs nothing (the bytes may be a client's). */
int mq_props_next(const char *props, size_t len, size_t *pos, const char **name, size_t *nlen,
                  const char **val, size_t *vlen);
/* 0 when props are well-formed as a record's PROPERTIES must be (what mq_msg_decode's
 * MQ_MSG_CHECK_STRICT and so crash recovery accept): no NUL byte, and every NAME 0x01 VALUE
 * pair with a nonempty name (the last 0x02 may be missing); else -EBADMSG. */
int mq_props_check(const char *props, size_t len);
/* Calls fn for each pair in order; stops and returns fn's non-zero result. MQ_ECORRUPT for
 * malformed bytes. */
int mq_props_foreach(const char *props, size_t len,
                     int (*fn)(const char *name, size_t nlen, const char *val, size_t vlen,
                               void *arg),
                     void *arg);
/* Appends `name\x01value\x02` to b. -EINVAL if name or value contains 0x01/0x02. */
int mq_props_add(struct mq_buf *b, const char *name, const char *value);
/* Appends to b every pair of props (len bytes, read as mq_props_foreach does) except those
 * with an empty name and those named in drop[0..ndrop): what a record may store, less the
 * properties the caller sets anew. 0, -EBADMSG (a name without 0x01; nothing is logged) or
 * -ENOMEM. */
int mq_props_copy_except(const char *props, size_t len, const char *const *drop, size_t ndrop,
                         struct mq_buf *b);

/* Parses RocketMQ's messageDelayLevel ("1s 5s 10s ...": a number and one of s, m, h, d per
 * level, separated by spaces) into ms[0..max): ms[i] is the delay of level i+1. Returns the
 * number of levels (1..max) or -EINVAL. */
int mq_delay_levels_parse(const char *text, int64_t *ms, int max);

/* Offset message id: uppercase hex of store host address + port + physical offset
 * (MessageDecoder.createMessageId). out needs 33 bytes (IPv4) or 57 (IPv6); NUL-terminated.
 * Returns the number of hex characters. */
int mq_msgid_encode(const struct mq_host *store_host, int64_t phys_offset, char *out);
/* The id in two parts, for many ids of one store host: the host's 16 hex characters (40 for
 * IPv6; returns that count), then the offset's 16. Neither is NUL-terminated. */
int mq_msgid_host(const struct mq_host *store_host, char *out);
void mq_msgid_offset(int64_t phys_offset, char *out);
/* Parses an id of 32 or 56 hex characters (either case). Returns 0 or -EINVAL. */
int mq_msgid_decode(const char *id, size_t len, struct mq_host *store_host, int64_t *phys_offset);

#endif
