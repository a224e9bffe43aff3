/*
 * fuzz_authfile.c - libFuzzer target for authfile_parse (src/authfile.c).
 *
 * The input is an auth file. A failure must leave a non-empty, terminated
 * error naming the file; a success must find every user name that the
 * input spells as a simple quoted name at a line start, and never a name
 * it does not hold. abort() on any disagreement.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERRLEN 96 /* small on purpose: long errors get truncated */

static void require(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size > 0 ? size : 1), *err = malloc(ERRLEN);
    require(text != NULL && err != NULL);
    if (size > 0)
        memcpy(text, data, size);
    memset(err, 'x', ERRLEN);
    struct authfile *af = authfile_parse(text, size, "fz", err, ERRLEN);
    require(memchr(err, 0, ERRLEN) != NULL);
    if (af == NULL) {
        require(strncmp(err, "fz", 2) == 0);
    } else {
        require(err[0] == '\0');
        size_t found = 0;
        /* Names of the form "<letters/digits>" at a line start must be held. */
        for (size_t i = 0; i < size; i++) {
            if ((i == 0 || text[i - 1] == '\n') && text[i] == '"') {
                size_t j = i + 1;
                while (j < size && j - i < 64 &&
                       ((text[j] >= 'a' && text[j] <= 'z') || (text[j] >= '0' && text[j] <= '9')))
                    j++;
                if (j < size && j > i + 1 && text[j] == '"' &&
                    (j + 1 >= size || text[j + 1] != '"')) {
                    char name[64];
                    memcpy(name, text + i + 1, j - i - 1);
                    name[j - i - 1] = '\0';
                    require(authfile_find(af, name) != NULL);
                    found++;
                }
            }
        }
        require(found <= authfile_count(af));
        require(authfile_find(af, "no such user \"\x01") == NULL);
        authfile_free(af);
    }
    free(err);
    free(text);
    return 0;
}
