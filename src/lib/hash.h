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

/* A running hash computed on a helper thread, so that the SHA-256 of a
 * whole file (manifest_from_fd) runs on the second core while the caller
 * cuts the file into chunks; the thread can also take some of the chunks'
 * own hashes (hash_bg_oneshot), which evens out the two threads' work. The
 * first HASH_BG_INLINE bytes of the running hash are hashed on the caller's
 * thread, and the thread starts only past them: a small file costs no
 * thread. Without a thread (could not start one) everything is hashed
 * inline; the results are the same either way. Pieces are hashed in the
 * order handed over. Used by one caller thread at a time. */
#define HASH_BG_INLINE (1024u * 1024u)

struct hash_bg;

struct hash_bg *hash_bg_new(void); /* NULL on out of memory */
/* Hands p[0..n) over to be added to the running hash after what came
 * before. The bytes must stay unchanged until hash_bg_wait() or
 * hash_bg_final() returns. Blocks while many pieces are pending. */
void hash_bg_update(struct hash_bg *b, const void *p, size_t n);
/* Hands p[0..n) over to be hashed on its own into *out, which is written
 * by the time hash_bg_wait() or hash_bg_final() returns (at once without a
 * thread). The same rules for the bytes. */
void hash_bg_oneshot(struct hash_bg *b, const void *p, size_t n, struct hash *out);
/* Waits until every piece handed over is hashed (its bytes are free). */
void hash_bg_wait(struct hash_bg *b);
/* Waits, writes the digest of the running hash and starts it afresh. */
void hash_bg_final(struct hash_bg *b, struct hash *out);
void hash_bg_free(struct hash_bg *b);

/* out must hold HASH_HEX_LEN + 1 bytes. */
void hash_to_hex(const struct hash *h, char *out);
/* Accepts exactly 64 hex digits (either case). Returns 0 or -EINVAL. */
int hash_from_hex(const char *hex, struct hash *out);
int hash_equal(const struct hash *a, const struct hash *b);
int hash_is_zero(const struct hash *h);

#endif
