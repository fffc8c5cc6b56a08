/* blob: the chunk store of ferryd, as a small function table so that the
 * local-directory backend (blob_fs.c) and a later S3 backend are
 * interchangeable.
 *
 * Chunks are content-addressed and immutable: put() of a hash already stored
 * does nothing. A chunk is handed over and given back in a frame encoding
 * (frame.h: FRAME_ENC_RAW or FRAME_ENC_ZSTD) so that a chunk stored
 * compressed can be sent to a client without being decompressed. The store
 * does not check hashes: callers verify a chunk (frame_decode) before put(),
 * and clients verify what they fetch.
 */
#ifndef FERRY_BLOB_H
#define FERRY_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"

struct blob;

struct blob_ops {
        /* Stores the chunk h whose (verified) content is payload[0..len) in
         * encoding enc, durably, before returning. 0 or -errno. */
        int (*put)(struct blob *b, const struct hash *h, uint8_t enc, const uint8_t *payload,
                   size_t len);
        /* Replaces out's contents with the stored payload and sets *enc.
         * -ENOENT when absent. */
        int (*get)(struct blob *b, const struct hash *h, struct buf *out, uint8_t *enc);
        /* 1 if stored, 0 if not, or -errno. */
        int (*exists)(struct blob *b, const struct hash *h);
        void (*close)(struct blob *b);
};

struct blob {
        const struct blob_ops *ops;
};

/* Opens (creating if needed) the store in directory dir. 0 or -errno. */
int blob_fs_open(const char *dir, struct blob **out);

/* get() then decoding to the raw chunk bytes in out. 0, -ENOENT, or
 * -EBADMSG when the stored payload does not decode. */
int blob_get_raw(struct blob *b, const struct hash *h, struct buf *out);

static inline void blob_close(struct blob *b)
{
        if (b)
                b->ops->close(b);
}

#endif
