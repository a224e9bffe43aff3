/*
 * tlsio.c - a TLS session driven through two memory BIOs.
 *
 * Owns the SSL object and its BIOs. Never touches a socket: the caller moves
 * ciphertext between the network and the BIOs. SSL_read is drained by the
 * caller until TLS_WANT, because plaintext already inside OpenSSL produces
 * no further socket event.
 */
#include <string.h>

#include <openssl/err.h>

#include "tlsio.h"

const char *tlsio_error(char *buf, size_t len)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last == 0) {
        if (len > 0)
            buf[0] = '\0';
        return buf;
    }
    const char *reason = ERR_reason_error_string(last);
    if (reason != NULL)
        snprintf(buf, len, "%s", reason);
    else
        ERR_error_string_n(last, buf, len);
    return buf;
}

int tlsio_init(struct tlsio *t, SSL_CTX *ctx, bool accept, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->ssl = SSL_new(ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->in == NULL || t->out == NULL) {
        char e[160];
        snprintf(err, errlen, "cannot create TLS session: %s", tlsio_error(e, sizeof(e)));
        SSL_free(t->ssl);
        BIO_free(t->in);
        BIO_free(t->out);
        memset(t, 0, sizeof(*t));
        return -1;
    }
    /* An empty memory BIO reports "retry", not EOF. */
    BIO_set_mem_eof_return(t->in, -1);
    BIO_set_mem_eof_return(t->out, -1);
    SSL_set_bio(t->ssl, t->in, t->out);
    if (accept)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return 0;
}

void tlsio_free(struct tlsio *t)
{
    if (t->ssl != NULL)
        SSL_free(t->ssl); /* frees both BIOs */
    memset(t, 0, sizeof(*t));
}

int tlsio_feed(struct tlsio *t, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (len > 0x7fffffff)
        return -1;
    return BIO_write(t->in, buf, (int)len) == (int)len ? 0 : -1;
}

static enum tls_res classify(struct tlsio *t, int r)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_EOF;
    default:
        return TLS_ERR;
    }
}

enum tls_res tlsio_handshake(struct tlsio *t)
{
    int r = SSL_do_handshake(t->ssl);
    return r == 1 ? TLS_OK : classify(t, r);
}

enum tls_res tlsio_read(struct tlsio *t, void *buf, size_t cap, size_t *n)
{
    size_t got = 0;
    /* Nothing fed and nothing buffered: don't ask. SSL_read would set up a
     * fresh 16 KB read buffer just to find no record, and keep it, undoing
     * SSL_MODE_RELEASE_BUFFERS for every idle session. */
    if (BIO_ctrl_pending(t->in) == 0 && !SSL_has_pending(t->ssl)) {
        *n = 0;
        return SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN ? TLS_EOF : TLS_WANT;
    }
    int r = SSL_read_ex(t->ssl, buf, cap, &got);
    *n = got;
    return r == 1 ? TLS_OK : classify(t, r);
}

int tlsio_write(struct tlsio *t, const void *buf, size_t len)
{
    size_t done = 0;
    if (len == 0)
        return 0;
    return SSL_write_ex(t->ssl, buf, len, &done) == 1 && done == len ? 0 : -1;
}

void tlsio_shutdown(struct tlsio *t)
{
    /* Only queues our close_notify; we never wait for the peer's. */
    if (SSL_is_init_finished(t->ssl) && !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

void tlsio_release(struct tlsio *t)
{
    /* Frees OpenSSL's record buffers when they hold nothing; a no-op
     * otherwise. Idle sessions then cost no 16 KB buffers. */
    if (t->ssl != NULL)
        (void)SSL_free_buffers(t->ssl);
}

size_t tlsio_pending(const struct tlsio *t)
{
    return t->out != NULL ? BIO_ctrl_pending(t->out) : 0;
}

size_t tlsio_take(struct tlsio *t, void *buf, size_t cap)
{
    size_t got = 0;
    if (BIO_read_ex(t->out, buf, cap, &got) != 1)
        return 0;
    return got;
}

const char *tlsio_version(const struct tlsio *t)
{
    return t->ssl != NULL ? SSL_get_version(t->ssl) : "-";
}

const char *tlsio_cipher(const struct tlsio *t)
{
    const char *c = t->ssl != NULL ? SSL_get_cipher_name(t->ssl) : NULL;
    return c != NULL ? c : "-";
}
