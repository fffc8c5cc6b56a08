/* hash: SHA-256 content hashes, through OpenSSL's EVP interface so that the
 * CPU's SHA extensions are used where present. A chunk and a whole file are
 * both named by the SHA-256 of their (uncompressed) bytes; on the wire and in
 * JSON a hash is 64 lower-case hex digits. */
#ifndef FERRY_HASH_H
#define FERRY_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_LEN 32
#define HASH_HEX_LEN 64

struct hash {
        uint8_t b[HASH_LEN];
};

struct hash_ctx; /* opaque: an EVP_MD_CTX */

void hash_buf(const void *p, size_t n, struct hash *out);

struct hash_ctx *hash_ctx_new(void); /* NULL on out of memory */
void hash_ctx_update(struct hash_ctx *c, const void *p, size_t n);
/* Writes the digest and resets the context for reuse. */
void hash_ctx_final(struct hash_ctx *c, struct hash *out);
void hash_ctx_free(struct hash_ctx *c);

/* out must hold HASH_HEX_LEN + 1 bytes. */
void hash_to_hex(const struct hash *h, char *out);
/* Accepts exactly 64 hex digits (either case). Returns 0 or -EINVAL. */
int hash_from_hex(const char *hex, struct hash *out);
int hash_equal(const struct hash *a, const struct hash *b);
int hash_is_zero(const struct hash *h);

#endif
