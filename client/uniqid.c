/* uniqid.c — client-side unique message ids, the UNIQ_KEY property (RocketMQ's
 * MessageClientIDSetter layout: a fixed 10-byte prefix of IPv4 + pid + instance hash, then
 * milliseconds since the start of the month and a counter), as 32 uppercase hex chars. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client_int.h"
#include "common/mq_bytes.h"
#include "common/mq_util.h"

static pthread_once_t prefix_once = PTHREAD_ONCE_INIT;
static uint8_t prefix[10];
static atomic_uint counter;
static pthread_mutex_t month_lock = PTHREAD_MUTEX_INITIALIZER;
/* Read without the lock on every id; written under it when a month starts. */
static _Atomic int64_t month_start_ms, next_month_ms;

/* The first non-loopback IPv4 address, else 127.0.0.1. */
static uint32_t local_ipv4(void)
{
    uint32_t ip = htonl(INADDR_LOOPBACK);
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return ip;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        uint32_t a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
        if ((ntohl(a) >> 24) != 127) {
            ip = a;
            break;
        }
    }
    freeifaddrs(ifs);
    return ip;
}

static void init_prefix(void)
{
    uint32_t ip = local_ipv4();
    memcpy(prefix, &ip, 4); /* network order, as Java's InetAddress.getAddress() */
    mq_put_be16(prefix + 4, (uint16_t)getpid());
    int64_t t = mq_mono_us();
    mq_put_be32(prefix + 6, (uint32_t)mq_crc32(&t, sizeof(t)) ^ (uint32_t)(uintptr_t)&prefix);
}

static void month_bounds(int64_t now_ms)
{
    time_t s = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    int64_t start = (int64_t)mktime(&tm) * 1000;
    tm.tm_mon += 1;
    tm.tm_isdst = -1;
    atomic_store(&next_month_ms, (int64_t)mktime(&tm) * 1000);
    atomic_store(&month_start_ms, start);
}

/* Milliseconds since the start of the current month (local time, as RocketMQ). */
static uint32_t since_month(int64_t now)
{
    pthread_once(&prefix_once, init_prefix);
    int64_t start = atomic_load(&month_start_ms);
    if (now >= atomic_load(&next_month_ms) || now < start) {
        pthread_mutex_lock(&month_lock);
        if (now >= atomic_load(&next_month_ms) || now < atomic_load(&month_start_ms))
            month_bounds(now);
        start = atomic_load(&month_start_ms);
        pthread_mutex_unlock(&month_lock);
    }
    return (uint32_t)(now - start);
}

void mqc_uniq_id(char out[33])
{
    mqc_uniq_id_at(out, mq_now_ms());
}

void mqc_uniq_id_at(char out[33], int64_t now_ms)
{
    uint8_t raw[16];
    uint32_t since = since_month(now_ms);
    memcpy(raw, prefix, 10);
    mq_put_be32(raw + 10, since);
    mq_put_be16(raw + 14, (uint16_t)atomic_fetch_add(&counter, 1));
    mq_hex_put(out, raw, 16);
    out[32] = '\0';
}

void mqc_uniq_ids_begin(struct mqc_uniq_seq *u, size_t n)
{
    uint8_t raw[14];
    uint32_t since = since_month(mq_now_ms());
    memcpy(raw, prefix, 10);
    mq_put_be32(raw + 10, since);
    mq_hex_put(u->head, raw, 14);
    u->next = (uint16_t)atomic_fetch_add(&counter, (unsigned)n);
}

void mqc_uniq_ids_next(struct mqc_uniq_seq *u, char out[32])
{
    uint8_t c[2];
    mq_put_be16(c, u->next++);
    memcpy(out, u->head, 28);
    mq_hex_put(out + 28, c, 2);
}
