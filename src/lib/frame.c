/* frame: the codec of the batch chunk bodies (see frame.h and docs/api.md).
 * The encoder compresses with zstd at a fast level only when that pays; the
 * decoder treats every body as hostile: it bounds every length by
 * CHUNK_MAX before allocating and checks the SHA-256 of what it decoded. */
#include "frame.h"

#include <errno.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "chunker.h"
#include "err.h"

#define FRAME_ZSTD_LEVEL 1
#define PROBE_LEN 4096 /* sample compressed first on larger chunks */

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 1 if compressing data[0..len) may save 1/8. Random, JPEG or zip data
 * does not: compressing a 4 KiB sample tells for a small fraction of the
 * cost of trying the whole chunk (up to 256 KiB). */
static int worth_compressing(const uint8_t *data, size_t len)
{
        uint8_t z[PROBE_LEN + PROBE_LEN / 8 + 512];
        size_t zlen;

        if (len < 2 * PROBE_LEN)
                return 1;
        zlen = ZSTD_compress(z, sizeof(z), data, PROBE_LEN, FRAME_ZSTD_LEVEL);
        return !ZSTD_isError(zlen) && zlen <= PROBE_LEN - PROBE_LEN / 8;
}

int frame_append(struct buf *out, const struct hash *h, const uint8_t *data, size_t len,
                 int compress)
{
        uint8_t *hdr;
        size_t bound;
        int r;

        if (len > CHUNK_MAX)
                return err_set(-E2BIG, "chunk of %zu bytes is over the maximum", len);
        bound = compress && len > 0 && worth_compressing(data, len) ? ZSTD_compressBound(len) : 0;
        r = buf_reserve(out, FRAME_HDR_LEN + (bound > len ? bound : len));
        if (r < 0)
                return r;
        hdr = out->data + out->len;
        memcpy(hdr, h->b, HASH_LEN);
        if (bound) {
                size_t c = ZSTD_compress(hdr + FRAME_HDR_LEN, bound, data, len, FRAME_ZSTD_LEVEL);

                /* Keep zstd only when it saves at least 1/8 of the bytes;
                 * otherwise the receiver's decompression is not worth it. */
                if (!ZSTD_isError(c) && c <= len - len / 8 && c <= FRAME_MAX_PAYLOAD) {
                        hdr[HASH_LEN] = FRAME_ENC_ZSTD;
                        put_be32(hdr + HASH_LEN + 1, (uint32_t)c);
                        out->len += FRAME_HDR_LEN + c;
                        out->data[out->len] = 0;
                        return 0;
                }
        }
        hdr[HASH_LEN] = FRAME_ENC_RAW;
        put_be32(hdr + HASH_LEN + 1, (uint32_t)len);
        if (len)
                memcpy(hdr + FRAME_HDR_LEN, data, len);
        out->len += FRAME_HDR_LEN + len;
        out->data[out->len] = 0;
        return 0;
}

int frame_parse(const uint8_t *p, size_t len, struct frame *f, size_t *consumed)
{
        uint32_t plen;
        uint8_t enc;

        if (len < FRAME_HDR_LEN)
                return 0;
        enc = p[HASH_LEN];
        plen = get_be32(p + HASH_LEN + 1);
        if (enc != FRAME_ENC_RAW && enc != FRAME_ENC_ZSTD)
                return err_set(-EINVAL, "frame: unknown encoding %u", enc);
        if (plen > FRAME_MAX_PAYLOAD || (enc == FRAME_ENC_RAW && plen > CHUNK_MAX))
                return err_set(-EINVAL, "frame: payload of %u bytes is over the limit", plen);
        if (len - FRAME_HDR_LEN < plen)
                return 0;
        memcpy(f->hash.b, p, HASH_LEN);
        f->encoding = enc;
        f->len = plen;
        f->payload = p + FRAME_HDR_LEN;
        *consumed = FRAME_HDR_LEN + (size_t)plen;
        return 1;
}

static int frame_unzstd(const struct frame *f, struct buf *out)
{
        unsigned long long declared = ZSTD_getFrameContentSize(f->payload, f->len);
        size_t got;
        int r;

        if (declared == ZSTD_CONTENTSIZE_ERROR)
                return err_set(-EBADMSG, "frame: corrupt zstd payload");
        if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > CHUNK_MAX)
                return err_set(-E2BIG, "frame: chunk of %llu bytes is over the maximum", declared);
        /* Decompress into at most CHUNK_MAX bytes whatever the frame claims,
         * so a hostile payload cannot make us allocate more. */
        r = buf_reserve(out, CHUNK_MAX);
        if (r < 0)
                return r;
        got = ZSTD_decompress(out->data, CHUNK_MAX, f->payload, f->len);
        if (ZSTD_isError(got)) {
                if (ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall)
                        return err_set(-E2BIG, "frame: chunk is over the maximum");
                return err_set(-EBADMSG, "frame: corrupt zstd payload: %s", ZSTD_getErrorName(got));
        }
        if (declared != ZSTD_CONTENTSIZE_UNKNOWN && got != declared)
                return err_set(-EBADMSG, "frame: zstd payload size mismatch");
        out->len = got;
        out->data[got] = 0;
        return 0;
}

int frame_decode(const struct frame *f, struct buf *out)
{
        struct hash h;
        int r;

        buf_reset(out);
        if (f->encoding == FRAME_ENC_RAW) {
                if (f->len > CHUNK_MAX)
                        return err_set(-E2BIG, "frame: chunk is over the maximum");
                r = buf_append(out, f->payload, f->len);
                if (r < 0)
                        return r;
        } else if (f->encoding == FRAME_ENC_ZSTD) {
                r = frame_unzstd(f, out);
                if (r < 0) {
                        buf_reset(out);
                        return r;
                }
        } else {
                return err_set(-EINVAL, "frame: unknown encoding %u", f->encoding);
        }
        hash_buf(out->data, out->len, &h);
        if (!hash_equal(&h, &f->hash)) {
                buf_reset(out);
                return err_set(-EBADMSG, "chunk content does not match its hash");
        }
        return 0;
}
