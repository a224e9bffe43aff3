/*
 * confroute.h - between config.c and confroute.c only: the raw values of
 * the option parser, and the building of cfg->routes from the --config
 * file's [route NAME] sections.
 */
#ifndef PGTP_CONFROUTE_H
#define PGTP_CONFROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct conf_file;
struct opt_def;
struct route_conf;

/* Where the winning value of an option came from; decides how errors name
 * it. In rising precedence. */
enum source { SRC_DEFAULT = 0, SRC_FILE, SRC_ENV, SRC_FLAG };

struct raw_value {
    enum source src;
    const char *value; /* borrowed from argv, envp, the table or the file; never freed */
    const char *file;  /* SRC_FILE: the file's label */
    int line;          /* SRC_FILE: its line */
};

/* Parse one value into its field of cfg; a string field must be NULL (it
 * is overwritten). false with err naming the value's origin. */
bool config_apply(struct config *cfg, const struct opt_def *o, const struct raw_value *rv,
                  char *err, size_t errlen);
/* Decimal digits only, 1..65535. */
bool config_parse_port(const char *s, uint16_t *out);

/* cfg->routes from cf's sections, each over a deep copy of the finished
 * global cfg. verify_given: the globals named client-tls-validation-host
 * (else a route's validation name follows its own host). false with err
 * filled; what was built is freed by config_free. */
bool confroute_build(struct config *cfg, const struct conf_file *cf, bool verify_given, char *err,
                     size_t errlen);
void confroute_free(struct route_conf *rc);

#endif
