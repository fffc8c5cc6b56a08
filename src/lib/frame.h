/* frame: the framing of many chunks in one HTTP body, used by the batch
 * chunk upload (POST /api/v1/chunks) and download (POST
 * /api/v1/chunks/fetch), so that thousands of small files do not cost a
 * round trip each.
 *
 * A body is a sequence of frames, each:
 *     32 bytes   SHA-256 of the uncompressed chunk
 *      1 byte    encoding: 0 = raw, 1 = zstd
 *      4 bytes   payload length, big-endian (<= FRAME_MAX_PAYLOAD)
 *      N bytes   payload (the chunk, raw or one zstd frame)
 * Nothing else: no header, no trailer. See docs/api.md.
 */
#ifndef FERRY_FRAME_H
#define FERRY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"

#define FRAME_HDR_LEN 37
#define FRAME_ENC_RAW 0
#define FRAME_ENC_ZSTD 1
/* A zstd payload of an incompressible chunk can be slightly larger than the
 * chunk; the encoder never sends those (it falls back to raw). */
#define FRAME_MAX_PAYLOAD (256u * 1024u + 1024u)

struct frame {
        struct hash hash;
        uint8_t encoding;
        const uint8_t *payload; /* points into the parsed buffer */
        uint32_t len;
};

/* Appends one frame for the chunk data[0..len). With compress set, tries
 * zstd (fast level) and keeps it only when it saves at least 1/8 of the
 * bytes. Returns 0 or -ENOMEM. */
int frame_append(struct buf *out, const struct hash *h, const uint8_t *data, size_t len,
                 int compress);

/* Parses the frame at p. Returns 1 and sets *f and *consumed when a whole
 * frame is there, 0 when more bytes are needed, -EINVAL (with a message)
 * when the header is invalid. */
int frame_parse(const uint8_t *p, size_t len, struct frame *f, size_t *consumed);

/* Decodes f's payload into out (replacing its contents) and checks that its
 * SHA-256 equals f->hash. Returns 0, -EBADMSG on a hash mismatch or a
 * corrupt zstd payload, -E2BIG past CHUNK_MAX. */
int frame_decode(const struct frame *f, struct buf *out);

#endif
