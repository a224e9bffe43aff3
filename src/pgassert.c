/*
 * pgassert.c - where a broken invariant ends the process (pgassert.h).
 */
#include "pgassert.h"

#include <stdlib.h>

#include "log.h"

void pgassert_fail(const char *expr, const char *file, int line)
{
    log_error("event=assert_failed file=%s line=%d expression=\"%s\" hint=\"a bug in "
              "pg-tls-proxy: please report this line\"",
              file, line, expr);
    abort();
}
