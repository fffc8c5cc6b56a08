/* hash: SHA-256 content hashes, through OpenSSL's EVP interface so that the
 * CPU's SHA extensions are used where present. A chunk is named by the
 * SHA-256 of its (uncompressed) bytes, a file by the SHA-256 of its chunks'
 * hashes (manifest.h); on the wire and in JSON a hash is 64 lower-case hex
 * digits. */
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

/* Hashes computed on a helper thread, so that manifest_from_fd() hashes
 * chunks on the second core while the caller cuts the file into chunks
 * (and hashes some chunks itself when the helper falls behind, see
 * hash_bg_backlog). The first HASH_BG_INLINE bytes handed over are hashed
 * on the caller's thread, and the thread starts only past them: a small file
 * costs no thread. Without a thread (could not start one) everything is
 * hashed inline; the results are the same either way. Pieces are hashed in
 * the order handed over. Used by one caller thread at a time. */
#define HASH_BG_INLINE (1024u * 1024u)

struct hash_bg;

struct hash_bg *hash_bg_new(void); /* NULL on out of memory */
/* Hands p[0..n) over to be hashed into *out. The bytes must stay unchanged,
 * and *out unread, until a wait covering this piece returns. Blocks while
 * many pieces are pending. */
void hash_bg_oneshot(struct hash_bg *b, const void *p, size_t n, struct hash *out);
/* Pieces handed over and not hashed yet (0 without a thread). */
size_t hash_bg_backlog(struct hash_bg *b);
/* A mark standing for every piece handed over so far, for
 * hash_bg_wait_mark(), which waits until those pieces are hashed (later
 * ones may still be pending). This lets the caller reuse one buffer while
 * the thread still hashes another. */
uint64_t hash_bg_mark(struct hash_bg *b);
void hash_bg_wait_mark(struct hash_bg *b, uint64_t mark);
/* Waits until every piece handed over is hashed. */
void hash_bg_wait(struct hash_bg *b);
void hash_bg_free(struct hash_bg *b);

/* out must hold HASH_HEX_LEN + 1 bytes. */
void hash_to_hex(const struct hash *h, char *out);
/* Accepts exactly 64 hex digits (either case). Returns 0 or -EINVAL. */
int hash_from_hex(const char *hex, struct hash *out);
int hash_equal(const struct hash *a, const struct hash *b);
int hash_is_zero(const struct hash *h);

#endif
