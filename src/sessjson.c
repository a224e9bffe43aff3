/*
 * sessjson.c - the JSON of the admin endpoint's /sessions answers.
 *
 * Pure: formats the plain structs the workers copied (sessions.c), owns
 * only the buffer it returns. User-controlled strings (user, database,
 * application_name come from the client's StartupMessage) are escaped
 * here, whatever the caller sanitised before: a body must always parse.
 */
#include "sessjson.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static void grow(struct jbuf *j, size_t more)
{
    if (!j->ok || j->len + more + 1 <= j->cap)
        return;
    size_t cap = j->cap == 0 ? 4096 : j->cap;
    while (cap < j->len + more + 1)
        cap *= 2;
    char *b = realloc(j->b, cap);
    if (b == NULL) {
        j->ok = false;
        return;
    }
    j->b = b;
    j->cap = cap;
}

static void put(struct jbuf *j, const char *s, size_t n)
{
    grow(j, n);
    if (!j->ok)
        return;
    memcpy(j->b + j->len, s, n);
    j->len += n;
    j->b[j->len] = '\0';
}

void sessjson_raw(struct jbuf *j, const char *s)
{
    put(j, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct jbuf *j, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(tmp))
        put(j, tmp, (size_t)n);
    else
        j->ok = false; /* every format here is short */
}

void sessjson_string(struct jbuf *j, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    put(j, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) {
            put(j, "\\ufffd", 6); /* one invalid byte: the replacement character */
            i++;
        } else if (p[i] == '"' || p[i] == '\\') {
            char e[2] = {'\\', (char)p[i]};
            put(j, e, 2);
            i++;
        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            putf(j, "\\u%04x", p[i]);
            i++;
        } else {
            put(j, s + i, k);
            i += k;
        }
    }
    put(j, "\"", 1);
}

/* s, or null when empty (a field that does not apply). */
static void string_or_null(struct jbuf *j, const char *s)
{
    if (s[0] == '\0')
        sessjson_raw(j, "null");
    else
        sessjson_string(j, s);
}

static void field(struct jbuf *j, const char *name, const char *s, bool nullable)
{
    putf(j, ",\"%s\":", name);
    if (nullable)
        string_or_null(j, s);
    else
        sessjson_string(j, s);
}

static void item(struct jbuf *j, const struct sess_info *s)
{
    putf(j, "{\"id\":%" PRIu64 ",\"worker\":%u", s->id, s->worker);
    field(j, "client", s->client, false);
    field(j, "load_balancer", s->lb, true);
    field(j, "route", s->route, true);
    field(j, "user", s->user, false);
    field(j, "database", s->database, false);
    field(j, "application_name", s->application_name, false);
    field(j, "front_tls_version", s->front_tls, true);
    field(j, "front_tls_cipher", s->front_cipher, true);
    field(j, "back_tls_version", s->back_tls, true);
    putf(j, ",\"bytes_from_client\":%" PRIu64 ",\"bytes_from_upstream\":%" PRIu64, s->from_client,
         s->from_upstream);
    putf(j, ",\"age_s\":%" PRIu64 ",\"idle_s\":%" PRIu64, s->age_ms / 1000, s->idle_ms / 1000);
    field(j, "state", s->state != NULL ? s->state : "", false);
    field(j, "bridge", s->bridge, true);
    if (s->bridge_stream != 0)
        putf(j, ",\"bridge_stream\":%" PRIu64 "}", s->bridge_stream);
    else
        sessjson_raw(j, ",\"bridge_stream\":null}");
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const struct sess_info *)a)->id, y = ((const struct sess_info *)b)->id;
    return x < y ? -1 : x > y;
}

char *sessjson_render(const struct sess_req *req, bool all, size_t max, size_t *len)
{
    struct jbuf j = {.ok = true};
    size_t listed = 0;
    bool truncated = req->open > req->n;

    if (!all) {
        if (req->n > 0)
            item(&j, &req->items[0]);
    } else {
        if (req->n > 1) /* items is NULL when nothing was copied */
            qsort(req->items, req->n, sizeof(req->items[0]), by_id);
        sessjson_raw(&j, "{\"sessions\":[");
        for (size_t i = 0; i < req->n && j.ok; i++) {
            size_t before = j.len;
            if (i > 0)
                sessjson_raw(&j, ",");
            item(&j, &req->items[i]);
            if (j.len > max) { /* this one does not fit: the body ends before it */
                j.len = before;
                truncated = true;
                break;
            }
            listed++;
        }
        putf(&j, "],\"count\":%zu,\"listed\":%zu,\"truncated\":%s,\"draining\":%s}", req->open,
             listed, truncated ? "true" : "false", req->draining ? "true" : "false");
    }
    sessjson_raw(&j, "\n");
    if (!j.ok) {
        free(j.b);
        return NULL;
    }
    *len = j.len;
    return j.b;
}
