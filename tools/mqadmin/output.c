/* output.c — mqadmin's output: every subcommand builds one JSON value; --json prints it as is,
 * otherwise it becomes human text (tables with "#header" columns, as RocketMQ's mqadmin
 * prints them, and "key: value" blocks). Also the JSON form of a message and time formatting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/mqadmin/mqadmin.h"

const char *adm_time(long long ms, char buf[32])
{
    if (ms <= 0)
        return strcpy(buf, "-");
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    size_t n = strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, 32 - n, ",%03d", (int)(ms % 1000));
    return buf;
}

/* A cell as text: strings verbatim, numbers, booleans, null as "-", anything else compact JSON.
 * Returns a malloc'd string. */
static char *cell(const json_t *v)
{
    char *s = NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        return asprintf(&s, "%lld", (long long)json_integer_value(v)) < 0 ? NULL : s;
    case JSON_REAL:
        return asprintf(&s, "%.2f", json_real_value(v)) < 0 ? NULL : s;
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_NULL:
        return strdup("-");
    default:
        return json_dumps(v, JSON_COMPACT);
    }
}

static int is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

/* An array of objects as a table: columns are the first object's keys. */
static void print_table(const json_t *rows)
{
    const json_t *first = json_array_get(rows, 0);
    size_t ncol = json_object_size(first), nrow = json_array_size(rows);
    if (!json_is_object(first) || ncol == 0)
        return;
    const char **keys = calloc(ncol, sizeof(*keys));
    size_t *width = calloc(ncol, sizeof(*width));
    char **cells = calloc(ncol * nrow, sizeof(*cells));
    if (!keys || !width || !cells)
        goto out;
    size_t c = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)first, k, v)
    {
        keys[c] = k;
        width[c] = strlen(k) + 1;
        c++;
    }
    for (size_t r = 0; r < nrow; r++) {
        const json_t *row = json_array_get(rows, r);
        for (c = 0; c < ncol; c++) {
            const json_t *x = json_object_get(row, keys[c]);
            char *s = x ? cell(x) : strdup("-");
            cells[r * ncol + c] = s;
            if (s && strlen(s) > width[c])
                width[c] = strlen(s);
        }
    }
    for (c = 0; c < ncol; c++)
        printf("#%-*s%s", (int)(c + 1 < ncol ? width[c] - 1 : 0), keys[c],
               c + 1 < ncol ? "  " : "\n");
    for (size_t r = 0; r < nrow; r++)
        for (c = 0; c < ncol; c++) {
            const char *s = cells[r * ncol + c] ? cells[r * ncol + c] : "?";
            printf("%-*s%s", (int)(c + 1 < ncol ? width[c] : 0), s, c + 1 < ncol ? "  " : "\n");
        }
out:
    if (cells)
        for (size_t i = 0; i < ncol * nrow; i++)
            free(cells[i]);
    free(cells);
    free(width);
    free(keys);
}

static void print_value(const json_t *v);

static void print_array(const json_t *arr)
{
    if (json_array_size(arr) > 0 && json_is_object(json_array_get(arr, 0))) {
        print_table(arr);
        return;
    }
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        char *s = cell(x);
        printf("%s\n", s ? s : "?");
        free(s);
    }
}

static void print_object(const json_t *obj)
{
    size_t kw = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) if (is_scalar(v) && strlen(k) > kw) kw = strlen(k);
    json_object_foreach((json_t *)obj, k, v)
    {
        if (!is_scalar(v))
            continue;
        char *s = cell(v);
        printf("%-*s : %s\n", (int)kw, k, s ? s : "?");
        free(s);
    }
    int first = kw == 0; /* no scalar lines above: no separating blank line */
    json_object_foreach((json_t *)obj, k, v)
    {
        if (is_scalar(v))
            continue;
        printf("%s[%s]\n", first ? "" : "\n", k);
        first = 0;
        print_value(v);
    }
}

static void print_value(const json_t *v)
{
    if (json_is_array(v))
        print_array(v);
    else if (json_is_object(v))
        print_object(v);
    else {
        char *s = cell(v);
        printf("%s\n", s ? s : "?");
        free(s);
    }
}

int adm_emit(const struct adm *a, json_t *result, int rc)
{
    if (!result)
        return rc ? rc : adm_fail(a, 0, "out of memory");
    if (a->json) {
        json_dumpf(result, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        print_value(result);
    }
    fflush(stdout);
    json_decref(result);
    return rc;
}

/* Text when the bytes are valid UTF-8 without NULs, else "hex:<lowercase hex>". */
static json_t *body_json(const unsigned char *p, size_t n)
{
    json_t *s = memchr(p, 0, n) ? NULL : json_stringn((const char *)p, n);
    if (s)
        return s;
    char *hex = malloc(4 + 2 * n + 1);
    if (!hex)
        return NULL;
    strcpy(hex, "hex:");
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 4 + 2 * i, 3, "%02x", p[i]);
    s = json_string(hex);
    free(hex);
    return s;
}

static json_t *prop_json(const struct mqc_msg *m, const char *name)
{
    const char *v;
    size_t n;
    if (mqc_msg_prop(m, name, &v, &n))
        return json_null();
    return json_stringn(v, n);
}

json_t *adm_msg_json(const struct mqc_msg *m)
{
    char born[32], store[32];
    return json_pack("{s:s, s:o, s:s, s:s, s:i, s:I, s:I, s:o, s:o, s:s, s:s, s:i, s:i, s:o}",
                     "msgId", m->msg_id, "uniqKey", prop_json(m, "UNIQ_KEY"), "topic", m->mq.topic,
                     "broker", m->mq.broker, "queueId", m->mq.queue_id, "queueOffset",
                     (json_int_t)m->queue_offset, "commitLogOffset", (json_int_t)m->phys_offset,
                     "tags", prop_json(m, "TAGS"), "keys", prop_json(m, "KEYS"), "bornTime",
                     adm_time(m->born_ts, born), "storeTime", adm_time(m->store_ts, store),
                     "sysFlag", (int)m->sysflag, "reconsumeTimes", (int)m->reconsume_times, "body",
                     body_json(m->body, m->body_len));
}
