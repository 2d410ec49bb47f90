/* mq_err.c — mq_strerror() and the corruption breakpoint. */
#include "common/mq_err.h"

#include <string.h>

#include "common/mq_log.h"

const char *mq_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case MQ_ECORRUPT:
        return "corrupt data";
    case MQ_EOFFSET_MOVED:
        return "offset moved (below the retained minimum)";
    case MQ_ENOTFOUND:
        return "not found";
    case MQ_EPROTO:
        return "protocol error";
    case MQ_EREMOTE:
        return "remote error";
    default:
        break;
    }
    if (err < 0 && err > MQ_ERR_BASE)
        return strerror(-err); /* glibc's strerror returns static strings for known codes */
    return "unknown error";
}

int mq__corrupt_bkpt(const char *file, int line)
{
    mq_log_at(MQ_LOG_ERROR, file, line, "corrupt data detected");
    return MQ_ECORRUPT;
}
