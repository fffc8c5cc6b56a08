/* blob: the chunk store of ferryd, as a small function table so that the
 * local-directory backend (blob_fs.c) and a later S3 backend are
 * interchangeable.
 *
 * Chunks are content-addressed and immutable: putting a hash already stored
 * does nothing. A chunk is handed over and given back in a frame encoding
 * (frame.h: FRAME_ENC_RAW or FRAME_ENC_ZSTD) so that a chunk stored
 * compressed can be sent to a client without being decompressed. The store
 * does not check hashes: callers verify a chunk (frame_decode) before put(),
 * and clients verify what they fetch.
 *
 * Writes go through a batch, so that a backend can make many chunks durable
 * at once instead of paying a disk flush per chunk: put() stages chunks in
 * a batch, flush() makes all of them durable and visible, and only then may
 * metadata point at them (a chunk is referenced only once it is on disk).
 * The S3 backend (blob_s3.c) stages puts too and sends a batch's chunks in
 * parallel at flush().
 *
 * Chunks leave the store only through the garbage collector (gc.c), which
 * removes those no account holds any more, then lets the backend compact.
 */
#ifndef FERRY_BLOB_H
#define FERRY_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"

struct blob;
struct blob_batch; /* backend-defined */

struct blob_ops {
        /* Starts an empty batch of puts. 0 or -errno. */
        int (*batch_new)(struct blob *b, struct blob_batch **out);
        /* Stages the chunk h whose (verified) content is payload[0..len) in
         * encoding enc. It is neither durable nor guaranteed visible to
         * get()/exists() until flush() returns 0. 0 or -errno. */
        int (*put)(struct blob *b, struct blob_batch *bb, const struct hash *h, uint8_t enc,
                   const uint8_t *payload, size_t len);
        /* Makes every chunk staged in bb durable and visible, and the chunks
         * put() found already stored durable too. Empties bb. 0 or -errno
         * (then none of the staged chunks may be referenced). */
        int (*flush)(struct blob *b, struct blob_batch *bb);
        /* Frees bb, dropping whatever was staged and not flushed. */
        void (*batch_free)(struct blob *b, struct blob_batch *bb);
        /* Replaces out's contents with the stored payload and sets *enc.
         * -ENOENT when absent. */
        int (*get)(struct blob *b, const struct hash *h, struct buf *out, uint8_t *enc);
        /* 1 if stored, 0 if not, or -errno. */
        int (*exists)(struct blob *b, const struct hash *h);
        /* Deletes the stored chunk h (the GC, once no account holds it;
         * callers keep puts of h out meanwhile, see server.h gc_lock).
         * 0, -ENOENT when it is not stored, or -errno. */
        int (*remove)(struct blob *b, const struct hash *h);
        /* Claims the store for this process alone until close(), for an
         * offline GC that must not delete chunks under another process's
         * uploads. 0, or -EBUSY with a message when another process has
         * the store open. */
        int (*claim)(struct blob *b);
        void (*close)(struct blob *b);
        /* Optional (NULL when the backend frees space at remove()): gives
         * back the space of removed chunks, e.g. by rewriting pack files
         * that are mostly dead, and adds the bytes freed to *freed. The GC
         * calls it after its pass. 0 or -errno. */
        int (*compact)(struct blob *b, uint64_t *freed);
};

struct blob {
        const struct blob_ops *ops;
};

/* Opens (creating if needed) the store in directory dir, shared with other
 * processes that open it too (`ferryd user add` next to a running server)
 * but not with one that claimed it: -EBUSY with a message then. 0 or
 * -errno. */
int blob_fs_open(const char *dir, struct blob **out);

/* Opens the S3 store named by url, "s3://BUCKET?endpoint=URL&region=R"
 * (more parameters in blob_s3.c), with the credentials from the environment
 * (FERRY_S3_ACCESS_KEY, FERRY_S3_SECRET_KEY), never from the URL. 0 or
 * -errno with a message. */
int blob_s3_open(const char *url, struct blob **out);
/* Opens the store named by spec: an "s3://" URL, or a directory; NULL means
 * DATA_DIR/chunks. */
int blob_open(const char *spec, const char *data_dir, struct blob **out);

/* One chunk stored durably: a batch of one, flushed. 0 or -errno. */
int blob_put(struct blob *b, const struct hash *h, uint8_t enc, const uint8_t *payload, size_t len);

/* get() then decoding to the raw chunk bytes in out. 0, -ENOENT, or
 * -EBADMSG when the stored payload does not decode. */
int blob_get_raw(struct blob *b, const struct hash *h, struct buf *out);

static inline void blob_close(struct blob *b)
{
        if (b)
                b->ops->close(b);
}

#endif
