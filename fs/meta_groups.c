/* meta_groups.c — consumer groups as mqfs sees them: the union of every master broker's
 * subscription groups (GET_ALL_SUBSCRIPTIONGROUP_CONFIG), cached like the topic list, plus the
 * groups made with mkdir on this mount; creating and deleting them on the brokers
 * (docs/FS.md "Directories and listings").
 *
 * The cache is refetched when older than a second. A fetch that fails (a broker that refuses or
 * does not answer, no broker known) keeps what was known before, and from then on requests use
 * the cache at once while meta.c's background thread fetches again at most every two seconds:
 * no request waits on a failing broker more than once.
 *
 * RocketMQ's system groups (MixAll: TOOLS_CONSUMER, FILTERSRV_CONSUMER, SELF_TEST_C_GROUP,
 * CID_ONS-HTTP-PROXY, CID_ONSAPI_*, CID_RMQ_SYS_*, ...) are not listed but can be opened by
 * name.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "fs/mqfs_int.h"

#define MAX_MASTERS 16

/* MixAll's group constants, and the groups SubscriptionGroupManager creates at broker start. */
static const char *const system_groups[] = {
    "DEFAULT_CONSUMER",   "TOOLS_CONSUMER",     "FILTERSRV_CONSUMER", "SCHEDULE_CONSUMER",
    "__MONITOR_CONSUMER", "SELF_TEST_C_GROUP",  "SELF_TEST_P_GROUP",  "CLIENT_INNER_PRODUCER",
    "DEFAULT_PRODUCER",   "CID_ONS-HTTP-PROXY",
};
static const char *const system_group_prefixes[] = {"CID_ONSAPI_", "CID_RMQ_SYS_"};

int mqfs__group_hidden(const char *group)
{
    for (size_t i = 0; i < sizeof(system_groups) / sizeof(system_groups[0]); i++)
        if (strcmp(group, system_groups[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(system_group_prefixes) / sizeof(system_group_prefixes[0]); i++)
        if (strncmp(group, system_group_prefixes[i], strlen(system_group_prefixes[i])) == 0)
            return 1;
    return 0;
}

/* Asks every master once and stores the union (or, after a failure, the union with what was
 * known). Serialized by groups_fetch_lock; a caller that waited for another's fetch takes that
 * one's outcome. */
int mqfs__groups_fetch(struct mqfs *fs)
{
    int64_t asked = mq_mono_us();
    pthread_mutex_lock(&fs->groups_fetch_lock);
    pthread_mutex_lock(&fs->lock);
    int done = mqfs__fetch_settled(&fs->groups_st, asked);
    pthread_mutex_unlock(&fs->lock);
    if (done != 1) {
        pthread_mutex_unlock(&fs->groups_fetch_lock);
        return done;
    }
    char addrs[MAX_MASTERS][64];
    int rc = 0;
    size_t nm = mqfs__masters(fs, addrs, MAX_MASTERS, &rc);
    if (nm > 0)
        rc = 0; /* brokers known (maybe from the cache): ask them */
    struct mq_map set;
    mq_map_init(&set);
    int err = rc;
    for (size_t i = 0; i < nm && err != -ENOMEM; i++) {
        char **names = NULL;
        size_t n = 0;
        int r = mqc_admin_group_list(fs->admin, addrs[i], &names, &n);
        for (size_t j = 0; r == 0 && j < n; j++)
            r = mq_map_put(&set, names[j], fs, NULL);
        free(names);
        if (r) {
            mq_info("subscription groups of broker %s: %s", addrs[i], mq_strerror(r));
            if (!err || r == -ENOMEM)
                err = r;
        }
    }
    pthread_mutex_lock(&fs->lock);
    if (err) { /* keep what was known: a broker that does not answer hides none of its groups */
        size_t it = 0;
        const char *g;
        while (mq_map_next(&fs->group_set, &it, &g, NULL))
            (void)mq_map_put(&set, g, fs, NULL);
        fs->groups_st.failed_us = mq_mono_us();
        fs->groups_st.err = err;
    } else {
        fs->groups_st.at_us = mq_mono_us();
    }
    mq_map_destroy(&fs->group_set);
    fs->group_set = set;
    pthread_mutex_unlock(&fs->lock);
    pthread_mutex_unlock(&fs->groups_fetch_lock);
    return err;
}

int mqfs__groups_refresh(struct mqfs *fs, int64_t max_age_us)
{
    int rc = mqfs__fetch_due(fs, &fs->groups_st, max_age_us);
    return rc == 1 ? mqfs__groups_fetch(fs) : rc;
}

static int group_known(struct mqfs *fs, const char *group)
{
    pthread_mutex_lock(&fs->lock);
    int known = mq_map_get(&fs->groups, group) || mq_map_get(&fs->group_set, group);
    pthread_mutex_unlock(&fs->lock);
    return known;
}

int mqfs__group_exists(struct mqfs *fs, const char *group)
{
    if (group_known(fs, group))
        return 1;
    /* Maybe made a moment ago elsewhere: refetch unless the list is very fresh. */
    (void)mqfs__groups_refresh(fs, MQFS_MISS_AGE_US);
    return group_known(fs, group);
}

int mqfs__group_create(struct mqfs *fs, const char *group)
{
    char addrs[MAX_MASTERS][64];
    int nsrc = 0;
    size_t n = mqfs__masters(fs, addrs, MAX_MASTERS, &nsrc);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = mqc_admin_create_group(fs->admin, addrs[i], group);
        if (r && !rc)
            rc = r;
    }
    return n ? rc : nsrc ? nsrc : -EHOSTUNREACH;
}

/* Whether a file of the group is open on this mount. fs->lock held. */
static int group_in_use(struct mqfs *fs, const char *group)
{
    for (struct mqfs_handle *h = fs->handles; h; h = h->next)
        if (h->node.kind == MQFS_GROUP && strcmp(h->node.group, group) == 0)
            return 1;
    return 0;
}

int mqfs__group_delete(struct mqfs *fs, const char *group)
{
    if (mqfs__group_hidden(group)) /* the brokers' own groups (transactions, tools) */
        return -EPERM;
    if (!mqfs__group_exists(fs, group))
        return -ENOENT;
    pthread_mutex_lock(&fs->lock);
    int busy = group_in_use(fs, group);
    pthread_mutex_unlock(&fs->lock);
    if (busy) /* its readers would make it again with their next heartbeat */
        return -EBUSY;
    char addrs[MAX_MASTERS][64];
    int nsrc;
    size_t n = mqfs__masters(fs, addrs, MAX_MASTERS, &nsrc);
    int rc = 0; /* no broker known (never reached the NameServer): only this mount had it */
    for (size_t i = 0; i < n; i++) {
        int r = mqc_admin_delete_group(fs->admin, addrs[i], group, 1);
        if (r && !rc)
            rc = r;
    }
    if (rc) {
        mq_warn("consumer group %s: deleting it on the brokers failed: %s", group, mq_strerror(rc));
        return mqfs__send_errno(rc);
    }
    pthread_mutex_lock(&fs->lock);
    (void)mq_map_del(&fs->groups, group);
    (void)mq_map_del(&fs->group_set, group);
    pthread_mutex_unlock(&fs->lock);
    mq_info("consumer group %s deleted", group);
    return 0;
}
