/* config.c — the store's configuration keys (RocketMQ MessageStoreConfig names and defaults) as
 * one mq_conf table, exported for the broker to embed. */
#include <stddef.h>
#include <string.h>

#include "store/store.h"

#define F(field) offsetof(struct store_config, field)
#define S(field) sizeof(((struct store_config *)0)->field)
#define I(name, field, def, lo, hi, help)                                                          \
    {                                                                                              \
        name, MQ_CONF_INT, F(field), 0, def, lo, hi, help                                          \
    }

const struct mq_conf_key store_conf_keys[] = {
    {"storePathRootDir", MQ_CONF_STR, F(store_path_root_dir), S(store_path_root_dir), "store", 0, 0,
     "store root directory"},
    {"storePathCommitLog", MQ_CONF_STR, F(store_path_commit_log), S(store_path_commit_log), "", 0,
     0, "commitlog directory (empty: <storePathRootDir>/commitlog)"},
    {"mappedFileSizeCommitLog", MQ_CONF_INT64, F(mapped_file_size_commit_log), 0, "1073741824",
     4096, (int64_t)1 << 40, "bytes per commitlog file"},
    I("mappedFileSizeConsumeQueue", mapped_file_size_consume_queue, "6000000", 200, 1 << 30,
      "bytes per consume-queue file (300,000 entries of 20 bytes)"),
    {"flushDiskType", MQ_CONF_STR, F(flush_disk_type), S(flush_disk_type), "ASYNC_FLUSH", 0, 0,
     "ASYNC_FLUSH or SYNC_FLUSH"},
    I("flushIntervalCommitLog", flush_interval_commit_log, "500", 1, 60000,
      "async flush interval, ms"),
    I("flushCommitLogLeastPages", flush_commit_log_least_pages, "4", 0, 1 << 20,
      "async flush: least dirty 4 KiB pages"),
    I("flushCommitLogThoroughInterval", flush_commit_log_thorough_interval, "10000", 0, 3600000,
      "async flush: full flush at least this often, ms"),
    I("flushIntervalConsumeQueue", flush_interval_consume_queue, "1000", 1, 60000,
      "consume queue / index flush interval, ms"),
    I("flushConsumeQueueLeastPages", flush_consume_queue_least_pages, "2", 0, 1 << 20,
      "consume queue flush: least dirty 4 KiB pages per queue"),
    I("flushConsumeQueueThoroughInterval", flush_consume_queue_thorough_interval, "60000", 0,
      3600000, "consume queue flush: every queue at least this often, ms"),
    I("syncFlushTimeout", sync_flush_timeout, "5000", 1, 600000,
      "SYNC_FLUSH: wait for durability at most this long, ms"),
    I("fileReservedTime", file_reserved_time, "72", 0, 100000, "keep commitlog files, hours"),
    {"deleteWhen", MQ_CONF_STR, F(delete_when), S(delete_when), "04", 0, 0,
     "hours of day to delete expired files, e.g. 04 or 04;16"},
    I("diskMaxUsedSpaceRatio", disk_max_used_space_ratio, "75", 10, 95,
      "delete expired files at once above this disk usage, %"),
    I("cleanResourceInterval", clean_resource_interval, "10000", 10, 3600000,
      "retention check interval, ms"),
    I("maxMessageSize", max_message_size, "4194304", 1, 1 << 30, "largest body, bytes"),
    I("maxHashSlotNum", max_hash_slot_num, "5000000", 1, 1 << 28, "index file hash slots"),
    I("maxIndexNum", max_index_num, "20000000", 1, 1 << 28, "index file entries"),
    {"messageIndexEnable", MQ_CONF_BOOL, F(message_index_enable), 0, "true", 0, 1,
     "build index files for keys"},
    I("maxTransferBytesOnMessageInMemory", max_transfer_bytes_on_message_in_memory, "262144", 1,
      1 << 30, "pull: most bytes per get"),
    I("maxTransferCountOnMessageInMemory", max_transfer_count_on_message_in_memory, "32", 1, 65536,
      "pull: most messages per get"),
    I("commitLogWarmAhead", commit_log_warm_ahead, "-1", -1, 1 << 30,
      "commitlog bytes a background thread keeps in memory ahead of the writer (0: off; -1: 16 "
      "MiB with SYNC_FLUSH, off with ASYNC_FLUSH)"),
    I("commitLogWarmIdle", commit_log_warm_idle, "-1", -1, 1 << 30,
      "commitlog bytes a background thread (nice 19) brings into memory ahead of the writer "
      "while the writer is quiet (0: off; -1: with ASYNC_FLUSH 1 GiB or a sixteenth of the "
      "memory if less, off with SYNC_FLUSH)"),
    {"messageDelayLevel", MQ_CONF_STR, F(message_delay_level), S(message_delay_level),
     MQ_DELAY_LEVELS_DEFAULT, 0, 0,
     "delay of each level of delayed messages: number + s|m|h|d, space-separated"},
};
const size_t store_conf_nkeys = sizeof(store_conf_keys) / sizeof(store_conf_keys[0]);

void store_config_defaults(struct store_config *c)
{
    memset(c, 0, sizeof(*c));
    (void)mq_conf_defaults(store_conf_keys, store_conf_nkeys, c);
    c->store_host = (struct mq_host){0, {127, 0, 0, 1}, 10911};
}

int store_config_set(struct store_config *c, const char *name, const char *value, char *err,
                     size_t errlen)
{
    return mq_conf_set(store_conf_keys, store_conf_nkeys, c, name, value, err, errlen);
}
