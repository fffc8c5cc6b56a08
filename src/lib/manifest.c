/* manifest: the chunk list of a file version and its codecs (see
 * manifest.h). manifest_from_fd() is the one place that reads a file to cut
 * and hash it: a single pass with two fixed 4 MiB buffers, so a 2 GiB file
 * costs the same memory as a 2 KiB one. The chunks' SHA-256 runs mostly on a
 * second thread (hash_bg) over one buffer while this one reads the next and
 * cuts it (gear hash), hashing a chunk itself only when the helper falls
 * behind. The file hash then follows from the chunk hashes. The JSON and
 * blob decoders treat their input as hostile: every shape, hash and size is
 * checked. */
#include "manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "chunker.h"
#include "err.h"

/* At least 2 * CHUNK_MAX so that after keeping a partial chunk there is
 * always room to read a whole CHUNK_MAX more. */
#define MANIFEST_READ_BUF (4u * 1024u * 1024u)
/* The first buffer, enough for most files whole. */
#define MANIFEST_SMALL_BUF (64u * 1024u)
#define BLOB_ENTRY (HASH_LEN + 4)

static const char *const kind_names[] = {"file", "dir", "symlink"};

const char *kind_name(int kind)
{
        if (kind < 0 || kind > KIND_SYMLINK)
                return "unknown";
        return kind_names[kind];
}

int kind_parse(const char *name)
{
        for (int i = 0; i <= KIND_SYMLINK; i++)
                if (name && strcmp(name, kind_names[i]) == 0)
                        return i;
        return err_set(-EINVAL, "unknown kind '%s' (file, dir, symlink)", name ? name : "");
}

int manifest_add(struct manifest *m, const struct hash *h, uint32_t size)
{
        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 16;
                struct chunk_ref *p;

                if (cap > SIZE_MAX / sizeof(*p))
                        return -ENOMEM;
                p = realloc(m->chunks, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                m->chunks = p;
                m->cap = cap;
        }
        m->chunks[m->n].hash = *h;
        m->chunks[m->n].size = size;
        m->chunks[m->n].has_fp = 0;
        m->chunks[m->n].fp = 0;
        m->n++;
        m->size += size;
        return 0;
}

void manifest_free(struct manifest *m)
{
        free(m->chunks);
        m->chunks = NULL;
        m->n = 0;
        m->cap = 0;
        m->size = 0;
}

/* Hands the chunks of t to m, keeping m->file_hash (the decoders do not set
 * it). */
static void manifest_move(struct manifest *m, struct manifest *t)
{
        m->chunks = t->chunks;
        m->n = t->n;
        m->cap = t->cap;
        m->size = t->size;
        t->chunks = NULL;
        t->n = t->cap = 0;
        t->size = 0;
}

void manifest_file_hash(const struct manifest *m, struct hash *out)
{
        struct hash_ctx *c = hash_ctx_new();

        if (!c) {
                /* out of memory here is out of memory for OpenSSL too: a
                 * zero hash matches nothing, so the caller fails safe */
                memset(out, 0, sizeof(*out));
                return;
        }
        for (size_t i = 0; i < m->n; i++)
                hash_ctx_update(c, m->chunks[i].hash.b, HASH_LEN);
        hash_ctx_final(c, out);
        hash_ctx_free(c);
}

int manifest_file_hash_of(const void *p, size_t n, struct hash *out)
{
        struct manifest m = MANIFEST_INIT;
        const uint8_t *b = p;
        int r = 0;

        for (size_t off = 0, cut; off < n; off += cut) {
                struct hash h;

                cut = chunker_cut(b + off, n - off, 1);
                hash_buf(b + off, cut, &h);
                r = manifest_add(&m, &h, (uint32_t)cut);
                if (r < 0)
                        goto out;
        }
        manifest_file_hash(&m, out);
out:
        manifest_free(&m);
        return r;
}

uint64_t manifest_fp(const void *p, size_t n)
{
        return XXH3_64bits(p, n);
}

/* Past this many chunks waiting for the helper thread, the reading thread
 * hashes the next chunk itself: the gear hash costs less than SHA-256, so
 * the helper would otherwise fall behind and the reader wait. */
#define BG_BACKLOG_MAX 48

/* One of the two read buffers: while the helper thread still hashes the
 * chunks of one, the other is filled and cut. */
struct rbuf {
        uint8_t *p;
        uint64_t mark; /* hash_bg mark after the last chunk handed over from p */
        /* the chunks cut from p not yet given to the window callback */
        size_t first, n;
        uint64_t offset;
        const uint8_t *data;
};

/* Gives rb's chunks to cb (their hashes must be done) and forgets them. */
static int window_flush(struct rbuf *rb, const struct manifest *t, manifest_window_cb cb,
                        void *userdata)
{
        size_t n = rb->n;

        rb->n = 0;
        if (!cb || n == 0)
                return 0;
        return cb(t, rb->first, n, rb->offset, rb->data, userdata);
}

int manifest_from_fd(int fd, struct manifest *m, manifest_window_cb cb, void *userdata)
{
        struct manifest t = MANIFEST_INIT;
        struct hash_bg *bg = NULL;
        struct rbuf rb[2] = {{0}};
        size_t start = 0, end = 0, cap = MANIFEST_SMALL_BUF;
        uint64_t offset = 0;
        int cur = 0, eof = 0;
        int r = 0;

        /* Most files are small: start with one small buffer (from the heap,
         * no page faults, no thread) and take the two large ones only when
         * it fills up. Nothing is cut before then (a cut needs CHUNK_MAX
         * bytes or the end of the file), so the bytes can move. */
        rb[0].p = malloc(MANIFEST_SMALL_BUF);
        if (!rb[0].p) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                uint8_t *buf = rb[cur].p;

                if (!eof && end - start < CHUNK_MAX) {
                        ssize_t got;

                        if (cap < MANIFEST_READ_BUF && end == cap) {
                                uint8_t *p = realloc(rb[0].p, MANIFEST_READ_BUF);

                                if (p)
                                        rb[0].p = p;
                                rb[1].p = malloc(MANIFEST_READ_BUF);
                                bg = hash_bg_new();
                                if (!p || !rb[1].p || !bg) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                buf = rb[0].p;
                                cap = MANIFEST_READ_BUF;
                        } else if (cap == MANIFEST_READ_BUF && cap - end < CHUNK_MAX) {
                                /* carry the partial chunk over to the other
                                 * buffer, once its hashes are done */
                                int other = cur ^ 1;

                                hash_bg_wait_mark(bg, rb[other].mark);
                                r = window_flush(&rb[other], &t, cb, userdata);
                                if (r < 0)
                                        goto out;
                                memcpy(rb[other].p, buf + start, end - start);
                                end -= start;
                                start = 0;
                                cur = other;
                                buf = rb[cur].p;
                        }
                        got = read(fd, buf + end, cap - end);
                        if (got < 0) {
                                if (errno == EINTR)
                                        continue;
                                r = -errno;
                                err_set(r, "read failed: %s", strerror(errno));
                                goto out;
                        }
                        if (got == 0)
                                eof = 1;
                        end += (size_t)got;
                        continue;
                }
                if (start == end)
                        break;
                /* Either CHUNK_MAX bytes are buffered or eof is set, so this
                 * always cuts. */
                size_t cut = chunker_cut(buf + start, end - start, eof);
                struct chunk_ref *c;

                /* manifest_add may move the chunk list that queued hashes
                 * are written into */
                if (t.n == t.cap && bg)
                        hash_bg_wait(bg);
                r = manifest_add(&t, &(struct hash){{0}}, (uint32_t)cut);
                if (r < 0)
                        goto out;
                c = &t.chunks[t.n - 1];
                c->fp = manifest_fp(buf + start, cut);
                c->has_fp = 1;
                if (bg && hash_bg_backlog(bg) < BG_BACKLOG_MAX) {
                        hash_bg_oneshot(bg, buf + start, cut, &c->hash);
                        rb[cur].mark = hash_bg_mark(bg);
                } else {
                        hash_buf(buf + start, cut, &c->hash);
                }
                if (rb[cur].n++ == 0) {
                        rb[cur].first = t.n - 1;
                        rb[cur].offset = offset;
                        rb[cur].data = buf + start;
                }
                offset += cut;
                start += cut;
        }
        if (bg)
                hash_bg_wait(bg);
        /* the other buffer's chunks came first */
        r = window_flush(&rb[cur ^ 1], &t, cb, userdata);
        if (r == 0)
                r = window_flush(&rb[cur], &t, cb, userdata);
        if (r < 0)
                goto out;
        manifest_file_hash(&t, &m->file_hash);
        manifest_move(m, &t);
        r = 0;
out:
        /* first: the thread may still be writing into t's hashes */
        hash_bg_free(bg);
        manifest_free(&t);
        free(rb[0].p);
        free(rb[1].p);
        return r;
}

json_t *manifest_to_json(const struct manifest *m)
{
        json_t *arr = json_array();

        if (!arr)
                return NULL;
        for (size_t i = 0; i < m->n; i++) {
                char hex[HASH_HEX_LEN + 1];
                json_t *e;

                hash_to_hex(&m->chunks[i].hash, hex);
                e = json_pack("[s,I]", hex, (json_int_t)m->chunks[i].size);
                if (!e || json_array_append_new(arr, e) < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

int manifest_from_json(const json_t *j, struct manifest *m)
{
        struct manifest t = MANIFEST_INIT;
        size_t n;
        int r = 0;

        if (!json_is_array(j))
                return err_set(-EINVAL, "manifest: expected an array of [hash, size]");
        n = json_array_size(j);
        if (n > MANIFEST_MAX_CHUNKS)
                return err_set(-EINVAL, "manifest: too many chunks (%zu)", n);
        for (size_t i = 0; i < n; i++) {
                const json_t *e = json_array_get(j, i);
                const json_t *jh, *js;
                json_int_t size;
                struct hash h;

                if (!json_is_array(e) || json_array_size(e) != 2) {
                        r = err_set(-EINVAL, "manifest: chunk %zu is not [hash, size]", i);
                        goto out;
                }
                jh = json_array_get(e, 0);
                js = json_array_get(e, 1);
                if (!json_is_string(jh) || json_string_length(jh) != HASH_HEX_LEN ||
                    hash_from_hex(json_string_value(jh), &h) < 0) {
                        r = err_set(-EINVAL, "manifest: chunk %zu has an invalid hash", i);
                        goto out;
                }
                if (!json_is_integer(js)) {
                        r = err_set(-EINVAL, "manifest: chunk %zu has a non-integer size", i);
                        goto out;
                }
                size = json_integer_value(js);
                if (size < 1 || size > (json_int_t)CHUNK_MAX) {
                        r = err_set(-EINVAL, "manifest: chunk %zu size %lld out of range", i,
                                    (long long)size);
                        goto out;
                }
                r = manifest_add(&t, &h, (uint32_t)size);
                if (r < 0)
                        goto out;
        }
        manifest_move(m, &t);
out:
        manifest_free(&t);
        return r;
}

int manifest_to_blob(const struct manifest *m, uint8_t **out, size_t *len)
{
        size_t n = m->n * BLOB_ENTRY;
        uint8_t *p = malloc(n ? n : 1);

        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < m->n; i++) {
                uint8_t *e = p + i * BLOB_ENTRY;
                uint32_t s = m->chunks[i].size;

                memcpy(e, m->chunks[i].hash.b, HASH_LEN);
                e[HASH_LEN] = (uint8_t)(s >> 24);
                e[HASH_LEN + 1] = (uint8_t)(s >> 16);
                e[HASH_LEN + 2] = (uint8_t)(s >> 8);
                e[HASH_LEN + 3] = (uint8_t)s;
        }
        *out = p;
        *len = n;
        return 0;
}

int manifest_from_blob(const uint8_t *p, size_t len, struct manifest *m)
{
        struct manifest t = MANIFEST_INIT;
        size_t n;
        int r = 0;

        if (len % BLOB_ENTRY != 0)
                return err_set(-EINVAL, "manifest blob: length %zu is not a multiple of %d", len,
                               BLOB_ENTRY);
        n = len / BLOB_ENTRY;
        if (n > MANIFEST_MAX_CHUNKS)
                return err_set(-EINVAL, "manifest blob: too many chunks (%zu)", n);
        for (size_t i = 0; i < n; i++) {
                const uint8_t *e = p + i * BLOB_ENTRY;
                uint32_t s = (uint32_t)e[HASH_LEN] << 24 | (uint32_t)e[HASH_LEN + 1] << 16 |
                             (uint32_t)e[HASH_LEN + 2] << 8 | e[HASH_LEN + 3];
                struct hash h;

                if (s < 1 || s > CHUNK_MAX) {
                        r = err_set(-EINVAL, "manifest blob: chunk %zu size %u out of range", i, s);
                        goto out;
                }
                memcpy(h.b, e, HASH_LEN);
                r = manifest_add(&t, &h, s);
                if (r < 0)
                        goto out;
        }
        manifest_move(m, &t);
out:
        manifest_free(&t);
        return r;
}
