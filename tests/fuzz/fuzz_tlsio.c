/*
 * fuzz_tlsio: the front TLS leg fed arbitrary bytes, the way a client's
 * socket would feed it (in pieces). The first input byte picks the chunk
 * size. Nothing may crash or leak whatever arrives; after a handshake,
 * whatever decrypts is drained the way the relay does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tlsio.h"

static SSL_CTX *ctx;

static SSL_CTX *make_ctx(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, key, EVP_sha256());
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate(c, x) != 1 || SSL_CTX_use_PrivateKey(c, key) != 1)
        abort();
    X509_free(x);
    EVP_PKEY_free(key);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tlsio t;
    char err[128];
    uint8_t out[16384];

    if (ctx == NULL)
        ctx = make_ctx();
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    if (tlsio_init(&t, ctx, true, err, sizeof(err)) != 0)
        abort();
    int up = 0;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (tlsio_feed(&t, data + off, n) != 0)
            abort();
        if (!up) {
            enum tls_res r = tlsio_handshake(&t);
            if (r == TLS_ERR)
                break;
            up = r == TLS_OK;
        }
        if (up) {
            size_t got;
            enum tls_res r;
            while ((r = tlsio_read(&t, out, sizeof(out), &got)) == TLS_OK)
                ;
            if (r != TLS_WANT)
                break;
        }
        while (tlsio_take(&t, out, sizeof(out)) > 0)
            ;
    }
    tlsio_error(err, sizeof(err));
    tlsio_free(&t);
    return 0;
}
