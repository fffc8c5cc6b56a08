/* hash: SHA-256 through OpenSSL's EVP interface (see hash.h), so that the
 * CPU's SHA extensions are used where present. Also the hex codec used on
 * the wire and in JSON. */
#include "hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct hash_ctx {
        EVP_MD_CTX *md;
};

void hash_buf(const void *p, size_t n, struct hash *out)
{
        unsigned int len = HASH_LEN;

        /* EVP_Digest only fails on out-of-memory inside OpenSSL; a zeroed
         * hash then never matches real content, so callers detect it. */
        if (!EVP_Digest(p, n, out->b, &len, EVP_sha256(), NULL))
                memset(out->b, 0, HASH_LEN);
}

struct hash_ctx *hash_ctx_new(void)
{
        struct hash_ctx *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->md = EVP_MD_CTX_new();
        if (!c->md || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL)) {
                EVP_MD_CTX_free(c->md);
                free(c);
                return NULL;
        }
        return c;
}

void hash_ctx_update(struct hash_ctx *c, const void *p, size_t n)
{
        EVP_DigestUpdate(c->md, p, n);
}

void hash_ctx_final(struct hash_ctx *c, struct hash *out)
{
        unsigned int len = HASH_LEN;

        if (!EVP_DigestFinal_ex(c->md, out->b, &len))
                memset(out->b, 0, HASH_LEN);
        EVP_DigestInit_ex(c->md, EVP_sha256(), NULL);
}

void hash_ctx_free(struct hash_ctx *c)
{
        if (!c)
                return;
        EVP_MD_CTX_free(c->md);
        free(c);
}

void hash_to_hex(const struct hash *h, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < HASH_LEN; i++) {
                out[2 * i] = digits[h->b[i] >> 4];
                out[2 * i + 1] = digits[h->b[i] & 0xf];
        }
        out[HASH_HEX_LEN] = '\0';
}

static int hex_val(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hash_from_hex(const char *hex, struct hash *out)
{
        struct hash h;

        if (!hex)
                return err_set(-EINVAL, "missing hash");
        for (size_t i = 0; i < HASH_LEN; i++) {
                int hi, lo;

                /* Check hi before reading lo so a short string stops at its NUL. */
                hi = hex_val(hex[2 * i]);
                if (hi < 0)
                        return err_set(-EINVAL, "invalid hash: expected 64 hex digits");
                lo = hex_val(hex[2 * i + 1]);
                if (lo < 0)
                        return err_set(-EINVAL, "invalid hash: expected 64 hex digits");
                h.b[i] = (uint8_t)(hi << 4 | lo);
        }
        if (hex[HASH_HEX_LEN] != '\0')
                return err_set(-EINVAL, "invalid hash: expected 64 hex digits");
        *out = h;
        return 0;
}

int hash_equal(const struct hash *a, const struct hash *b)
{
        return memcmp(a->b, b->b, HASH_LEN) == 0;
}

int hash_is_zero(const struct hash *h)
{
        uint8_t acc = 0;

        for (size_t i = 0; i < HASH_LEN; i++)
                acc |= h->b[i];
        return acc == 0;
}
