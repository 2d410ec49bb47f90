/* mq_err.h — error conventions shared by every module.
 *
 * Functions return int: 0 on success, a negative errno on failure (-EIO, -ENOSPC, -EBADMSG,
 * -ETIMEDOUT, ...), as libuv and FUSE do. Conditions errno cannot name live in the reserved
 * range below MQ_ERR_BASE, and mq_strerror() names both kinds.
 */
#ifndef MQ_ERR_H
#define MQ_ERR_H

enum {
    MQ_ERR_BASE = -20000,
    MQ_ECORRUPT = -20001,      /* stored or received bytes fail a magic, length or CRC check */
    MQ_EOFFSET_MOVED = -20002, /* the requested offset is below the retained minimum */
    MQ_ENOTFOUND = -20003,     /* no such message, topic, key or file */
    MQ_EPROTO = -20004,        /* a peer broke the remoting protocol */
    MQ_EREMOTE = -20005,       /* a peer answered with a RocketMQ error response code */
    MQ_ERR_LAST = -20006,
};

/* Describes err (negative errno or MQ_E*). Returns a static string, valid forever. */
const char *mq_strerror(int err);

/* Logs "corrupt data at file:line" and returns MQ_ECORRUPT; use as `return MQ_CORRUPT_BKPT;`
 * so every corruption report names the check that failed (sqlite's SQLITE_CORRUPT_BKPT). */
int mq__corrupt_bkpt(const char *file, int line);
#define MQ_CORRUPT_BKPT mq__corrupt_bkpt(__FILE__, __LINE__)

#endif
