/*
 * fuzz_conffile.c - libFuzzer target for the --config file: the whole of
 * config_parse_text (libinih through our line reader, the key checks, the
 * [route NAME] sections over a copy of the globals, the route-only lists).
 *
 * The input is the file. A failure must leave a non-empty, terminated error
 * and an empty config; a success must give routes that each have an
 * upstream, CA roots and a way to be reached, with lower-case server names.
 * abort() on any disagreement; leaks are found by libFuzzer's ASan.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERRLEN 96 /* small on purpose: long errors get truncated */

static void require(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The front certificate by flag; the upstream is up to the file. */
    static char *argv[] = {"pg-tls-proxy", "--server-certificate-path",
                           "/f.crt",       "--server-private-key-path",
                           "/f.key",       NULL};
    char *text = malloc(size + 1), *err = malloc(ERRLEN);
    require(text != NULL && err != NULL);
    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';
    memset(err, 'x', ERRLEN);
    FILE *out = fopen("/dev/null", "w");
    require(out != NULL);
    struct config cfg;
    enum config_result r =
        config_parse_text(&cfg, 5, argv, NULL, "fz", text, size, out, err, ERRLEN);
    fclose(out);
    require(memchr(err, 0, ERRLEN) != NULL);
    if (r != CONFIG_OK) {
        require(r == CONFIG_ERROR && err[0] != '\0');
        require(cfg.front_cert_path == NULL && cfg.routes == NULL && cfg.argv == NULL);
    } else {
        require(cfg.has_default == (cfg.upstream_host != NULL));
        require(cfg.has_default || cfg.nroutes > 0);
        for (size_t i = 0; i < cfg.nroutes; i++) {
            const struct route_conf *rc = &cfg.routes[i];
            require(rc->name != NULL && rc->name[0] != '\0' && rc->cfg != NULL);
            require(rc->cfg->upstream_host != NULL && rc->cfg->ca_roots_path != NULL);
            require(rc->cfg->upstream_verify_name != NULL);
            require(rc->nsni > 0 || rc->ndatabases > 0 || rc->listen_port != 0);
            for (size_t j = 0; j < rc->nsni; j++)
                for (const char *p = rc->sni[j]; *p != '\0'; p++)
                    require(!(*p >= 'A' && *p <= 'Z'));
            for (size_t j = 0; j < rc->ndatabases; j++)
                require(rc->databases[j][0] != '\0' && strlen(rc->databases[j]) <= 63);
        }
    }
    config_free(&cfg);
    free(text);
    free(err);
    return 0;
}
