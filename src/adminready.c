/*
 * adminready.c - the body and status of the admin endpoint's /readyz and
 * /readyz/NAME, from the routes' last verified upstream handshakes
 * (metrics.h). Owns only the body it returns; no I/O.
 */
#include "adminready.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

/* A growing text body; on out of memory, ok becomes false. */
struct text {
    char *b;
    size_t len, cap;
    bool ok;
};

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t, const char *fmt, ...)
{
    for (int tries = 0; t->ok && tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->b != NULL ? t->b + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->ok = false;
        } else if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        } else {
            size_t cap = (t->cap + (size_t)n + 1) * 2;
            char *b = realloc(t->b, cap);
            if (b == NULL)
                t->ok = false;
            else {
                t->b = b;
                t->cap = cap;
            }
        }
    }
}

/* One line about a route; true if it is ready: its upstream had a verified
 * TLS handshake (a client's or the proxy's own probe) within the window. */
static bool readyz_route(struct text *t, const struct metrics_route_state *st, int64_t now,
                         unsigned window)
{
    if (st->last_ok != 0 && now - st->last_ok <= (int64_t)window) {
        text_add(t, "route %s: ok, verified upstream TLS handshake %lld s ago\n", st->name,
                 (long long)(now - st->last_ok));
        return true;
    }
    text_add(t, "route %s: not ready: no verified upstream TLS handshake in the last %u s",
             st->name, window);
    if (st->last_failure != 0 && st->failure[0] != '\0')
        text_add(t, "; last failure %lld s ago: %s", (long long)(now - st->last_failure),
                 st->failure);
    text_add(t, "\n");
    return false;
}

static bool route_name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n + 1 >= METRICS_ROUTE_NAME_MAX ||
            !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '.' || s[n] == '-'))
            return false;
    return n > 0;
}

int adminready_body(const char *route, unsigned window, char **body, size_t *len)
{
    struct text t = {.ok = true};
    struct metrics_route_state st;
    int64_t now = (int64_t)time(NULL);
    int status;

    if (route != NULL) {
        if (!route_name_ok(route) || !metrics_route_state_of(route, &st)) {
            text_add(&t, "no route \"%s\" in the running configuration; the routes are:",
                     route_name_ok(route) ? route : "?");
            for (size_t i = 0; metrics_route_state_at(i, &st); i++)
                text_add(&t, "%s %s", i > 0 ? "," : "", st.name);
            text_add(&t, "\n");
            status = 404;
        } else {
            struct text line = {.ok = true};
            bool ok = readyz_route(&line, &st, now, window);
            text_add(&t, "%s\n%s", ok ? "ready" : "not ready", line.ok ? line.b : "");
            free(line.b);
            status = ok ? 200 : 503;
        }
    } else if (!metrics_route_state_at(0, &st)) {
        /* No routes published (nothing running yet): any upstream's success. */
        int64_t last = metrics_last_upstream_ok();
        if (last != 0 && now - last <= (int64_t)window) {
            text_add(&t, "ready\n");
            status = 200;
        } else {
            text_add(&t, "not ready: no upstream TLS handshake in the last %u s\n", window);
            status = 503;
        }
    } else {
        struct text lines = {.ok = true};
        size_t n = 0, bad = 0;
        for (; metrics_route_state_at(n, &st); n++)
            bad += !readyz_route(&lines, &st, now, window);
        if (bad == 0)
            text_add(&t, "ready\n");
        else
            text_add(&t,
                     "not ready: %zu of %zu route(s) without a verified upstream TLS "
                     "handshake in the last %u s\n",
                     bad, n, window);
        text_add(&t, "%s", lines.ok && lines.b != NULL ? lines.b : "");
        t.ok = t.ok && lines.ok;
        free(lines.b);
        status = bad == 0 ? 200 : 503;
    }
    if (!t.ok) {
        free(t.b);
        return 500;
    }
    *body = t.b;
    *len = t.len;
    return status;
}
