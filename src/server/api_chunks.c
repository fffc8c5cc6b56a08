/* api_chunks: the chunk endpoints of API v1 — which chunks an account
 * lacks, uploading a batch of frames, fetching a batch as frames.
 *
 * An account reaches a chunk only through its own user_chunks rows, which
 * only an upload of the chunk's bytes creates: knowing a hash is never
 * enough to read or to claim someone else's data.
 *
 * Both "missing" (for the chunks it finds present) and an upload touch
 * the account's rows, which keeps them from the GC for its grace period
 * while the client goes on to commit (gc.c). An upload also holds the
 * server's gc_lock shared from storing its chunks until their rows exist
 * (and with several instances the store-wide GC lock, server_gc_shared()),
 * so that the GC never removes a blob the upload found already stored.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "chunker.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "server.h"
#include "transfers.h"

#define FETCH_MAX_BYTES (16u * 1024u * 1024u)

void api_chunks_missing(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        char hex[HASH_HEX_LEN + 1];
        struct hash *hs = NULL;
        json_t *body, *missing = NULL;
        int64_t now = server_now();
        int n, i, r;

        body = api_body_object(req, rep);
        if (!body)
                return;
        n = api_parse_hashes(body, API_MAX_ITEMS, &hs, rep);
        if (n < 0)
                goto out;
        missing = json_array();
        if (!missing) {
                http_reply_error(rep, 500, "out of memory");
                goto out;
        }
        /* One transaction for all the touches: one disk sync, not one a
         * chunk (and none when every row was touched this second). */
        r = s->meta->ops->begin(s->meta);
        if (r < 0) {
                api_internal(rep, "chunks/missing", r);
                goto out;
        }
        for (i = 0; i < n && r >= 0; i++) {
                r = s->meta->ops->chunk_touch(s->meta, req->device.user_id, &hs[i], now, NULL);
                if (r != 0)
                        continue;
                hash_to_hex(&hs[i], hex);
                if (json_array_append_new(missing, json_string(hex)) < 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                s->meta->ops->rollback(s->meta);
        else
                r = s->meta->ops->commit(s->meta);
        if (r < 0) {
                api_internal(rep, "chunks/missing", r);
                goto out;
        }
        http_reply_json(rep, 200, json_pack("{s:O}", "missing", missing));
out:
        json_decref(missing);
        json_decref(body);
        free(hs);
}

/* Verifies one frame and sets *size to its decoded size; raw is scratch
 * space. A raw payload is hashed where it lies rather than copied first
 * (the bulk of a large upload is raw: clients compress only what pays). */
static int check_one(const struct frame *f, struct buf *raw, size_t *size)
{
        struct hash h;
        int r;

        *size = 0;
        if (f->encoding != FRAME_ENC_RAW || f->len > CHUNK_MAX) {
                r = frame_decode(f, raw);
                if (r == 0)
                        *size = raw->len;
                return r;
        }
        hash_buf(f->payload, f->len, &h);
        if (!hash_equal(&h, &f->hash))
                return err_set(-EBADMSG, "chunk content does not match its hash");
        *size = f->len;
        return 0;
}

/* Checks every frame of the body (complete, known encoding, decodes to at
 * most CHUNK_MAX bytes that hash to its hash). Returns the number of frames
 * with their decoded sizes in *sizes, or -1 with a 400 reply. */
static int check_frames(const struct http_request *req, uint32_t **sizes, struct http_reply *rep)
{
        struct buf raw = BUF_INIT;
        uint32_t *sz = NULL;
        size_t off = 0, used, cap = 0, size;
        struct frame f;
        int n = 0, r;

        while (off < req->body_len) {
                r = frame_parse(req->body + off, req->body_len - off, &f, &used);
                if (r == 0) {
                        http_reply_error(rep, 400, "frame %d is truncated", n);
                        goto fail;
                }
                if (r < 0) {
                        http_reply_error(rep, 400, "frame %d: %s", n, err_msg(r));
                        goto fail;
                }
                if (f.encoding != FRAME_ENC_RAW && f.encoding != FRAME_ENC_ZSTD) {
                        http_reply_error(rep, 400, "frame %d: unknown encoding %u", n, f.encoding);
                        goto fail;
                }
                r = check_one(&f, &raw, &size);
                if (r < 0 || size == 0 || size > CHUNK_MAX) {
                        http_reply_error(rep, 400, "frame %d: %s", n,
                                         r == -EBADMSG ? "bytes do not match the hash"
                                         : r == -E2BIG ? "chunk over 262144 bytes"
                                         : size == 0   ? "empty chunk"
                                                       : err_msg(r));
                        goto fail;
                }
                if ((size_t)n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        uint32_t *ns = realloc(sz, ncap * sizeof(*ns));
                        if (!ns) {
                                http_reply_error(rep, 500, "out of memory");
                                goto fail;
                        }
                        sz = ns;
                        cap = ncap;
                }
                sz[n++] = (uint32_t)size;
                off += used;
        }
        buf_free(&raw);
        *sizes = sz;
        return n;
fail:
        buf_free(&raw);
        free(sz);
        return -1;
}

/* A body refused with 400 (rep): the device's uploads in progress fail
 * with the reason, so that its other devices see why. */
static void rejected(struct server *s, const struct http_request *req, const struct http_reply *rep)
{
        const char *msg = json_string_value(json_object_get(rep->json, "error"));
        char reason[600];

        snprintf(reason, sizeof(reason), "chunk rejected: %s", msg ? msg : "bad frame");
        transfers_on_upload_rejected(s, req->device.user_id, req->device.id, reason);
}

void api_chunks_upload(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct blob_batch *bb = NULL;
        uint32_t *sizes = NULL;
        size_t off = 0, used;
        struct frame f;
        int n, i, r = 0;

        n = check_frames(req, &sizes, rep);
        if (n < 0) {
                if (rep->status == 400)
                        rejected(s, req, rep);
                return;
        }
        /* Bytes first, made durable all together, then the rows that point
         * at them: a crash in between leaves an unreferenced chunk, never a
         * row without its bytes. */
        r = server_gc_shared(s);
        if (r < 0) {
                free(sizes);
                api_internal(rep, "chunks upload", r);
                return;
        }
        r = s->blob->ops->batch_new(s->blob, &bb);
        for (i = 0; i < n && r == 0; i++) {
                frame_parse(req->body + off, req->body_len - off, &f, &used);
                off += used;
                r = s->blob->ops->put(s->blob, bb, &f.hash, f.encoding, f.payload, f.len);
        }
        if (r == 0)
                r = s->blob->ops->flush(s->blob, bb);
        if (r < 0)
                goto fail;
        r = s->meta->ops->begin(s->meta);
        if (r < 0)
                goto fail;
        off = 0;
        for (i = 0; i < n && r == 0; i++) {
                frame_parse(req->body + off, req->body_len - off, &f, &used);
                off += used;
                r = s->meta->ops->chunk_add(s->meta, req->device.user_id, &f.hash, sizes[i]);
        }
        if (r < 0) {
                s->meta->ops->rollback(s->meta);
                goto fail;
        }
        r = s->meta->ops->commit(s->meta);
        if (r < 0)
                goto fail;
        server_gc_done(s);
        s->blob->ops->batch_free(s->blob, bb);
        free(sizes);
        http_reply_json(rep, 200, json_pack("{s:i}", "stored", n));
        return;
fail:
        server_gc_done(s);
        if (bb)
                s->blob->ops->batch_free(s->blob, bb);
        free(sizes);
        api_internal(rep, "chunks upload", r);
}

/* A fetch streamed one chunk at a time, so that memory stays at one frame
 * whatever the batch size. */
struct fetch_stream {
        struct blob *blob;
        struct hash *hashes;
        size_t n, next;
        struct buf frame; /* the current frame */
        size_t off;       /* bytes of it already sent */
};

static void fetch_free(void *cls)
{
        struct fetch_stream *fs = cls;

        buf_free(&fs->frame);
        free(fs->hashes);
        free(fs);
}

/* Loads the next chunk's frame (header + stored payload) into fs->frame. */
static int fetch_load(struct fetch_stream *fs)
{
        struct buf payload = BUF_INIT;
        uint8_t hdr[FRAME_HDR_LEN], enc = 0;
        const struct hash *h = &fs->hashes[fs->next];
        int r;

        r = fs->blob->ops->get(fs->blob, h, &payload, &enc);
        if (r < 0) {
                char hex[HASH_HEX_LEN + 1];
                hash_to_hex(h, hex);
                log_error("fetch: chunk %s: %s", hex, err_msg(r));
                goto out;
        }
        memcpy(hdr, h->b, HASH_LEN);
        hdr[32] = enc;
        hdr[33] = (uint8_t)(payload.len >> 24);
        hdr[34] = (uint8_t)(payload.len >> 16);
        hdr[35] = (uint8_t)(payload.len >> 8);
        hdr[36] = (uint8_t)payload.len;
        buf_reset(&fs->frame);
        r = buf_append(&fs->frame, hdr, sizeof(hdr));
        if (r == 0)
                r = buf_append(&fs->frame, payload.data, payload.len);
        fs->off = 0;
        fs->next++;
out:
        buf_free(&payload);
        return r;
}

static ssize_t fetch_read(void *cls, uint64_t pos, char *out, size_t max)
{
        struct fetch_stream *fs = cls;
        size_t done = 0;

        (void)pos;
        while (done < max) {
                size_t k;
                if (fs->off == fs->frame.len) {
                        if (fs->next == fs->n)
                                break;
                        if (fetch_load(fs) < 0)
                                return HTTP_STREAM_ERROR;
                }
                k = fs->frame.len - fs->off;
                if (k > max - done)
                        k = max - done;
                memcpy(out + done, fs->frame.data + fs->off, k);
                fs->off += k;
                done += k;
        }
        return done ? (ssize_t)done : HTTP_STREAM_END;
}

void api_chunks_fetch(void *ctx, struct http_request *req, struct http_reply *rep)
{
        struct server *s = ctx;
        struct fetch_stream *fs = NULL;
        struct hash *hs = NULL;
        uint64_t total = 0;
        uint32_t size;
        json_t *body;
        int n, i, r;

        body = api_body_object(req, rep);
        if (!body)
                return;
        n = api_parse_hashes(body, API_MAX_FETCH, &hs, rep);
        json_decref(body);
        if (n < 0)
                return;
        for (i = 0; i < n; i++) {
                r = s->meta->ops->chunk_held(s->meta, req->device.user_id, &hs[i], &size);
                if (r < 0) {
                        api_internal(rep, "chunks/fetch", r);
                        goto fail;
                }
                if (r == 0) {
                        char hex[HASH_HEX_LEN + 1];
                        hash_to_hex(&hs[i], hex);
                        http_reply_error(rep, 404, "chunk %s is not held by this account", hex);
                        goto fail;
                }
                total += size;
        }
        if (total > FETCH_MAX_BYTES) {
                http_reply_error(rep, 413, "at most 16 MiB of chunks per fetch");
                goto fail;
        }
        fs = calloc(1, sizeof(*fs));
        if (!fs) {
                http_reply_error(rep, 500, "out of memory");
                goto fail;
        }
        fs->blob = s->blob;
        fs->hashes = hs;
        fs->n = (size_t)n;
        rep->status = 200;
        rep->content_type = "application/x-ferry-chunks";
        rep->stream = fetch_read;
        rep->stream_cls = fs;
        rep->stream_free = fetch_free;
        return;
fail:
        free(hs);
}
