/* mqdump.c — mqdump: prints the store's files for humans (LMDB's mdb_dump), one subcommand per
 * format of docs/FORMATS.md Part 1:
 *   mqdump commitlog FILE      records (1.1), validated as recovery does
 *   mqdump consumequeue FILE   20-byte entries (1.2)
 *   mqdump renderindex FILE    8-byte cumulative ends (1.3)
 *   mqdump index FILE          header, then every entry (1.4)
 *   mqdump checkpoint FILE     the three timestamps (1.5)
 * Files are read whole into memory; bytes are untrusted (bad data is reported, not trusted).
 * mqdump takes no store lock (FORMATS.md 1.8): it only reads, so it may look at the files of a
 * running broker's store (the newest record may then show as torn or still being written).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_msg.h"

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mqdump: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    if (!p || fread(p, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "mqdump: %s: read failed\n", path);
        free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* Start offset from a 20-digit file name, or 0. */
static int64_t base_of(const char *path)
{
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    return strlen(name) == 20 ? strtoll(name, NULL, 10) : 0;
}

static void fmt_ts(int64_t ms, char *out, size_t n)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03dZ", (int)(ms % 1000));
}

static void fmt_host(const struct mq_host *h, char *out, size_t n)
{
    if (h->v6) {
        size_t k = 0;
        for (int i = 0; i < 16; i += 2)
            k += (size_t)snprintf(out + k, n - k, "%s%x", i ? ":" : "[", mq_get_be16(h->addr + i));
        snprintf(out + k, n - k, "]:%u", h->port);
    } else {
        snprintf(out, n, "%u.%u.%u.%u:%u", h->addr[0], h->addr[1], h->addr[2], h->addr[3], h->port);
    }
}

static void print_escaped(const char *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == 1)
            fputc('=', stdout);
        else if (c == 2)
            fputc(';', stdout);
        else if (c >= 32 && c < 127 && c != '\\')
            fputc(c, stdout);
        else
            printf("\\x%02x", c);
    }
    if (n > max)
        printf("...(%zu bytes)", n);
}

static int dump_commitlog(const uint8_t *p, size_t n, int64_t base)
{
    size_t pos = 0;
    long count = 0;
    while (pos + 8 <= n) {
        struct mq_msg m;
        int64_t rc = mq_msg_decode(p + pos, n - pos, 0, MQ_MSG_CHECK_CRC | MQ_MSG_CHECK_STRICT, &m);
        if (rc == -ENODATA) {
            printf("@%" PRId64 ": end of data (%zu bytes unused)\n", base + (int64_t)pos, n - pos);
            break;
        }
        if (rc < 0) {
            printf("@%" PRId64 ": INVALID RECORD (%s): recovery truncates here\n",
                   base + (int64_t)pos, mq_strerror((int)rc));
            break;
        }
        if (m.magic == MQ_MSG_MAGIC_BLANK) {
            printf("@%" PRId64 ": BLANK size=%u (end of file)\n", base + (int64_t)pos,
                   m.total_size);
            break;
        }
        char born[40], stored[40], bh[64], sh[64], id[57];
        fmt_ts(m.born_ts, born, sizeof(born));
        fmt_ts(m.store_ts, stored, sizeof(stored));
        fmt_host(&m.born_host, bh, sizeof(bh));
        fmt_host(&m.store_host, sh, sizeof(sh));
        mq_msgid_encode(&m.store_host, m.phys_offset, id);
        printf("@%" PRId64 " size=%u magic=%08X topic=%.*s queueId=%d queueOffset=%" PRId64
               " physOffset=%" PRId64 " sysflag=0x%x flag=%d\n",
               base + (int64_t)pos, m.total_size, m.magic, (int)m.topic_len, m.topic, m.queue_id,
               m.queue_offset, m.phys_offset, (unsigned)m.sysflag, m.flag);
        printf("    born=%s %s stored=%s %s reconsume=%d preparedTx=%" PRId64 " msgId=%s\n", born,
               bh, stored, sh, m.reconsume_times, m.prepared_tx_offset, id);
        printf("    bodyCrc=%u body[%u]=\"", m.body_crc, m.body_len);
        print_escaped((const char *)m.body, m.body_len, 64);
        printf("\" props=\"");
        print_escaped(m.props, m.props_len, 256);
        printf("\"\n");
        pos += (size_t)rc;
        count++;
    }
    printf("%ld records\n", count);
    return 0;
}

static int dump_cq(const uint8_t *p, size_t n, int64_t base)
{
    long count = 0;
    for (size_t pos = 0; pos + 20 <= n; pos += 20) {
        int64_t phys = (int64_t)mq_get_be64(p + pos);
        uint32_t size = mq_get_be32(p + pos + 8);
        if (size == 0)
            break;
        printf("queueOffset=%" PRId64 " physOffset=%" PRId64 " size=%u tagsCode=%" PRId64 "\n",
               (base + (int64_t)pos) / 20, phys, size, (int64_t)mq_get_be64(p + pos + 12));
        count++;
    }
    printf("%ld entries\n", count);
    return 0;
}

static int dump_ri(const uint8_t *p, size_t n, int64_t base)
{
    long count = 0;
    int64_t prev = -1;
    for (size_t pos = 0; pos + 8 <= n; pos += 8) {
        int64_t end = (int64_t)mq_get_be64(p + pos);
        if (end == 0)
            break;
        printf("queueOffset=%" PRId64 " end=%" PRId64, (base + (int64_t)pos) / 8, end);
        if (prev >= 0)
            printf(" len=%" PRId64 "%s", end - prev, end <= prev ? " NOT INCREASING" : "");
        printf("\n");
        prev = end;
        count++;
    }
    printf("%ld entries\n", count);
    return 0;
}

static size_t index_slots;

static int dump_index(const uint8_t *p, size_t n, int64_t base)
{
    (void)base;
    if (n < 40) {
        printf("too short for an index header\n");
        return 1;
    }
    char b[40], e[40];
    fmt_ts((int64_t)mq_get_be64(p), b, sizeof(b));
    fmt_ts((int64_t)mq_get_be64(p + 8), e, sizeof(e));
    uint32_t slots_used = mq_get_be32(p + 32), count = mq_get_be32(p + 36);
    printf("beginTimestamp=%s endTimestamp=%s beginPhyOffset=%" PRId64 " endPhyOffset=%" PRId64
           " hashSlotCount=%u indexCount=%u\n",
           b, e, (int64_t)mq_get_be64(p + 16), (int64_t)mq_get_be64(p + 24), slots_used, count);
    /* the slot count is not in the header: given, or inferred from the file size assuming
     * maxIndexNum = 4 * maxHashSlotNum (RocketMQ's defaults, 5,000,000 and 20,000,000) */
    size_t slots = index_slots ? index_slots : (n - 40) / 84;
    if (slots == 0 || 40 + slots * 4 > n || (n - 40 - slots * 4) % 20) {
        printf("cannot tell the slot table size (pass it: mqdump index FILE SLOTS)\n");
        return 1;
    }
    size_t ebase = 40 + slots * 4, maxent = (n - ebase) / 20;
    printf("slots=%zu entries=%zu\n", slots, maxent);
    for (uint32_t i = 1; i < count && i < maxent; i++) {
        const uint8_t *x = p + ebase + (size_t)i * 20;
        printf("entry %u: keyHash=%d physOffset=%" PRId64 " timeDiff=%us prevIndex=%u\n", i,
               (int32_t)mq_get_be32(x), (int64_t)mq_get_be64(x + 4), mq_get_be32(x + 12),
               mq_get_be32(x + 16));
    }
    return 0;
}

static int dump_checkpoint(const uint8_t *p, size_t n, int64_t base)
{
    static const char *names[] = {"physicMsgTimestamp", "logicsMsgTimestamp", "indexMsgTimestamp"};
    (void)base;
    if (n < 24) {
        printf("too short: %zu bytes\n", n);
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        char t[40];
        int64_t v = (int64_t)mq_get_be64(p + 8 * i);
        fmt_ts(v, t, sizeof(t));
        printf("%s=%" PRId64 " (%s)\n", names[i], v, t);
    }
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(const uint8_t *p, size_t n, int64_t base);
} cmds[] = {
    {"commitlog", dump_commitlog}, {"consumequeue", dump_cq},       {"renderindex", dump_ri},
    {"index", dump_index},         {"checkpoint", dump_checkpoint},
};

int main(int argc, char **argv)
{
    mq_log_set_level(MQ_LOG_ERROR);
    if (argc == 4 && !strcmp(argv[1], "index")) {
        index_slots = (size_t)strtoull(argv[3], NULL, 10);
        argc = 3;
    }
    if (argc == 3)
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
            if (!strcmp(argv[1], cmds[i].name)) {
                size_t n;
                uint8_t *p = slurp(argv[2], &n);
                if (!p)
                    return 1;
                int rc = cmds[i].fn(p, n, base_of(argv[2]));
                free(p);
                return rc;
            }
    fprintf(stderr, "usage: mqdump commitlog|consumequeue|renderindex|checkpoint FILE\n"
                    "       mqdump index FILE [SLOTS]\n");
    return 2;
}
