/* transfer: chunk uploads (see transfer.h; downloads are in transfer_dl.c,
 * the request bodies and their posting threads in sender.c).
 *
 * Memory stays bounded whatever the file sizes: an upload holds at most
 * three request bodies (~4 MiB each: up to two being sent, one being
 * filled) and one chunk, or, for a file read and sent in one pass
 * (transfer_stream), the two 4 MiB read buffers of manifest_from_fd(). This
 * is what lets a 2 GiB file sync with the client well under 100 MiB of RSS.
 */
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "chunker.h"
#include "err.h"
#include "frame.h"
#include "fsutil.h"
#include "hash.h"
#include "localfs.h"
#include "log.h"
#include "manifest.h"
#include "path.h"
#include "sender.h"

/* ---- a sorted set of hashes (the chunks the server lacks) ---- */

struct hset {
        struct hash *h;
        uint8_t *sent; /* parallel: already uploaded this round */
        size_t n, cap;
};

static int hash_cmp(const void *a, const void *b)
{
        return memcmp(a, b, HASH_LEN);
}

static int hset_add(struct hset *s, const struct hash *h)
{
        if (s->n == s->cap) {
                size_t ncap = s->cap ? s->cap * 2 : 256;
                struct hash *p = realloc(s->h, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                s->h = p;
                s->cap = ncap;
        }
        s->h[s->n++] = *h;
        return 0;
}

/* Sorts, drops duplicates and allocates the sent flags. */
static int hset_seal(struct hset *s)
{
        size_t w = 0;

        if (s->n)
                qsort(s->h, s->n, sizeof(*s->h), hash_cmp);
        for (size_t i = 0; i < s->n; i++)
                if (w == 0 || !hash_equal(&s->h[w - 1], &s->h[i]))
                        s->h[w++] = s->h[i];
        s->n = w;
        s->sent = calloc(s->n ? s->n : 1, 1);
        return s->sent ? 0 : -ENOMEM;
}

static ssize_t hset_find(const struct hset *s, const struct hash *h)
{
        const struct hash *p;

        if (!s->n)
                return -1;
        p = bsearch(h, s->h, s->n, sizeof(*s->h), hash_cmp);
        return p ? p - s->h : -1;
}

static void hset_free(struct hset *s)
{
        free(s->h);
        free(s->sent);
        memset(s, 0, sizeof(*s));
}

static int is_file_put(const struct local_change *c)
{
        return c->op == CHANGE_PUT && c->kind == KIND_FILE;
}

int transfer_pread_full(int fd, uint8_t *p, size_t len, uint64_t off)
{
        while (len > 0) {
                ssize_t n = pread(fd, p, len, (off_t)off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

/* ---- upload ---- */

/* Appends to body every chunk of c that set lacks and that was not sent yet,
 * posting whenever the body is full. A file that no longer matches its scan
 * gets *skip = 1. */
static int send_file(struct transfer *t, const struct local_change *c, struct hset *set,
                     struct sender *sd, uint8_t *chunk, int *skip)
{
        uint64_t off = 0;
        char *full = NULL;
        int fd = -1, r = 0;

        for (size_t i = 0; i < c->manifest.n; off += c->manifest.chunks[i].size, i++) {
                const struct chunk_ref *ref = &c->manifest.chunks[i];
                ssize_t k = hset_find(set, &ref->hash);
                struct hash h;
                int same;

                if (k < 0 || set->sent[k])
                        continue;
                if (fd < 0) {
                        full = path_join(t->root, c->path);
                        if (!full) {
                                r = -ENOMEM;
                                goto out;
                        }
                        fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0) {
                                log_warn("%s vanished before it was uploaded; skipped this round",
                                         c->path);
                                *skip = 1;
                                goto out;
                        }
                }
                if (ref->size > CHUNK_MAX || transfer_pread_full(fd, chunk, ref->size, off) < 0) {
                        log_warn("%s changed while it was uploaded; it will be synced next round",
                                 c->path);
                        *skip = 1;
                        goto out;
                }
                /* The bytes must still be those the scan hashed. The scan
                 * took a fingerprint of them as it read them (a tenth of
                 * SHA-256's cost); a chunk without one (read some other
                 * way) is hashed again. ferryd checks the SHA-256 of every
                 * chunk it takes in any case. */
                if (ref->has_fp) {
                        same = manifest_fp(chunk, ref->size) == ref->fp;
                } else {
                        hash_buf(chunk, ref->size, &h);
                        same = hash_equal(&h, &ref->hash);
                }
                if (!same) {
                        log_warn("%s changed while it was uploaded; it will be synced next round",
                                 c->path);
                        *skip = 1;
                        goto out;
                }
                r = sender_add(sd, &ref->hash, chunk, ref->size, 0, c->path, off + ref->size);
                if (r < 0)
                        goto out;
                set->sent[k] = 1;
        }
out:
        if (fd >= 0)
                close(fd);
        free(full);
        return r;
}

static int send_all(struct transfer *t, struct local_change *const *changes, size_t n,
                    struct hset *set, int *skip)
{
        struct sender sd;
        uint8_t *chunk = NULL;
        int r = 0;

        if (set->n == 0)
                return 0;
        sender_init(&sd, t);
        chunk = malloc(CHUNK_MAX);
        if (!chunk) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                if (!is_file_put(changes[i]) || skip[i] || changes[i]->sent)
                        continue;
                r = send_file(t, changes[i], set, &sd, chunk, &skip[i]);
                if (r < 0)
                        goto out;
        }
out:
        r = sender_finish(&sd, r);
        free(chunk);
        return r;
}

static int missing_add(void *ud, const struct hash *h)
{
        return hset_add(ud, h);
}

/* Asks which of all[from..to) the server lacks and adds those to missing. */
static int query_missing(struct transfer *t, const struct hset *all, size_t from, size_t to,
                         struct hset *missing)
{
        return sender_query_missing(t->remote, all->h + from, to - from, missing_add, missing);
}

/* Adds c's chunks to all, leaving out those of its base version and any
 * other chunk the index records for a synced file: the server accepted
 * those versions, so it holds their chunks for this account (should it
 * have lost one, the commit answers missing_chunks and it is sent then). */
static int add_new_chunks(struct transfer *t, const struct local_change *c, struct hset *all)
{
        struct manifest base = MANIFEST_INIT;
        struct hset known = {0};
        int r = 0;

        if (c->base > 0 && t->idx) {
                r = index_get_manifest(t->idx, c->path, &base);
                if (r == -ENOENT)
                        r = 0;
                if (r < 0)
                        goto out;
                for (size_t k = 0; k < base.n; k++)
                        if ((r = hset_add(&known, &base.chunks[k].hash)) < 0)
                                goto out;
                if ((r = hset_seal(&known)) < 0)
                        goto out;
        }
        for (size_t k = 0; k < c->manifest.n; k++) {
                char *where = NULL;
                uint64_t off;

                if (hset_find(&known, &c->manifest.chunks[k].hash) >= 0)
                        continue;
                if (t->idx) {
                        r = index_find_chunk(t->idx, &c->manifest.chunks[k].hash, &where, &off);
                        free(where);
                        if (r == 0)
                                continue;
                        if (r != -ENOENT)
                                goto out;
                        r = 0;
                }
                if ((r = hset_add(all, &c->manifest.chunks[k].hash)) < 0)
                        goto out;
        }
out:
        manifest_free(&base);
        hset_free(&known);
        return r;
}

int transfer_upload(struct transfer *t, struct local_change *const *changes, size_t n, int *skip)
{
        struct hset all = {0}, missing = {0};
        int r = 0;

        for (size_t i = 0; i < n; i++) {
                if (!is_file_put(changes[i]) || skip[i] || changes[i]->sent)
                        continue;
                r = add_new_chunks(t, changes[i], &all);
                if (r < 0)
                        goto out;
        }
        r = hset_seal(&all);
        if (r < 0 || all.n == 0)
                goto out;
        for (size_t from = 0; from < all.n; from += TRANSFER_MISSING_BATCH) {
                size_t to =
                    from + TRANSFER_MISSING_BATCH < all.n ? from + TRANSFER_MISSING_BATCH : all.n;

                r = query_missing(t, &all, from, to, &missing);
                if (r < 0)
                        goto out;
        }
        r = hset_seal(&missing);
        if (r < 0)
                goto out;
        log_debug("upload: %zu distinct chunks, %zu missing on the server", all.n, missing.n);
        r = send_all(t, changes, n, &missing, skip);
out:
        hset_free(&all);
        hset_free(&missing);
        return r;
}

int transfer_upload_missing(struct transfer *t, const struct local_change *c, const json_t *missing,
                            int *skip)
{
        struct local_change *one = (struct local_change *)c;
        struct hset set = {0};
        json_t *v;
        size_t i;
        int r = 0;

        if (!json_is_array(missing))
                return err_set(-EPROTO, "the server's missing_chunks result has no list");
        json_array_foreach(missing, i, v)
        {
                struct hash h;

                if (!json_is_string(v) || hash_from_hex(json_string_value(v), &h) < 0) {
                        r = err_set(-EPROTO, "the server sent an invalid missing chunk hash");
                        goto out;
                }
                r = hset_add(&set, &h);
                if (r < 0)
                        goto out;
        }
        r = hset_seal(&set);
        if (r == 0)
                r = send_all(t, &one, 1, &set, skip);
out:
        hset_free(&set);
        return r;
}

/* ---- one pass: read, hash and send a new file (transfer_stream) ---- */

/* The distinct chunks met so far in the file being streamed: open
 * addressing on the hash's first bytes (uniform already), half full at
 * most. */
struct seen {
        struct hash *slot;
        uint8_t *used;
        size_t cap, n;
};

/* 1 when h was added, 0 when it was there, -ENOMEM. */
static int seen_add(struct seen *s, const struct hash *h)
{
        size_t i;

        if ((s->n + 1) * 2 > s->cap) {
                struct seen g = {.cap = s->cap ? s->cap * 2 : 1024};

                g.slot = malloc(g.cap * sizeof(*g.slot));
                g.used = calloc(g.cap, 1);
                if (!g.slot || !g.used) {
                        free(g.slot);
                        free(g.used);
                        return -ENOMEM;
                }
                for (i = 0; i < s->cap; i++)
                        if (s->used[i])
                                seen_add(&g, &s->slot[i]);
                free(s->slot);
                free(s->used);
                *s = g;
        }
        memcpy(&i, h->b, sizeof(i));
        for (i &= s->cap - 1; s->used[i]; i = (i + 1) & (s->cap - 1))
                if (hash_equal(&s->slot[i], h))
                        return 0;
        s->used[i] = 1;
        s->slot[i] = *h;
        s->n++;
        return 1;
}

struct stream {
        struct transfer *t;
        struct sender sd;
        const char *path;
        struct seen seen;
        int failed; /* stream_window failed (not the read) */
};

/* Each window of chunks as manifest_from_fd() hashes them: into the body
 * being filled, unless the file had the chunk already or a synced file of
 * the index holds it (then the server does). The poster asks the server
 * about the rest before sending (sender.h). */
static int stream_window(const struct manifest *m, size_t first, size_t n, uint64_t offset,
                         const uint8_t *data, void *ud)
{
        struct stream *st = ud;
        int r = 0;

        for (size_t i = first; i < first + n && r >= 0; i++) {
                const struct chunk_ref *ref = &m->chunks[i];
                char *where = NULL;
                uint64_t off;

                r = seen_add(&st->seen, &ref->hash);
                if (r > 0 && st->t->idx) {
                        r = index_find_chunk(st->t->idx, &ref->hash, &where, &off);
                        free(where);
                        r = r == -ENOENT ? 1 : r < 0 ? r : 0;
                }
                if (r > 0)
                        r = sender_add(&st->sd, &ref->hash, data, ref->size, 1, st->path,
                                       offset + ref->size);
                data += ref->size;
                offset += ref->size;
        }
        if (r < 0)
                st->failed = 1;
        return r < 0 ? r : 0;
}

int transfer_stream(struct transfer *t, struct local_change *c, int *skip)
{
        struct stream st = {.t = t, .path = c->path};
        struct manifest m = MANIFEST_INIT;
        struct stat before, after;
        char *full = path_join(t->root, c->path);
        uint64_t sent0;
        int fd = -1, r;

        if (!full)
                return -ENOMEM;
        /* The scan did not read the file, so no fingerprint tells whether
         * what is there now is what it saw: the whole stat must be the
         * same (another file moved in, through a renamed parent too, has
         * another inode, and no one sets a ctime). */
        fd = open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &before) < 0 || !S_ISREG(before.st_mode) ||
            (uint64_t)before.st_size != c->size || (uint64_t)before.st_ino != c->ino ||
            fsutil_ts_ns(&before.st_mtim) != c->mtime_ns ||
            fsutil_ts_ns(&before.st_ctim) != c->ctime_ns) {
                log_info("%s changed since the scan; it will be synced next round", c->path);
                *skip = 1;
                r = 0;
                goto out;
        }
        sent0 = t->chunks_sent;
        sender_init(&st.sd, t);
        r = manifest_from_fd(fd, &m, stream_window, &st);
        if (r < 0 && !st.failed && r != -ENOMEM) {
                /* the file, not the upload: as a scan that cannot read it */
                log_warn("cannot read %s: %s; skipping it this round", c->path, err_msg(r));
                err_clear();
                *skip = 1;
                r = 0;
        }
        r = sender_finish(&st.sd, r);
        if (r < 0 || *skip)
                goto out;
        /* the summary transfer_upload gives, for the same questions */
        log_debug("upload: %zu distinct chunks, %llu missing on the server (%s, read once)",
                  st.seen.n, (unsigned long long)(t->chunks_sent - sent0), c->path);
        if (fstat(fd, &after) < 0 || !localfs_same_stat(&before, &after) || m.size != c->size) {
                log_info("%s changed while it was uploaded; it will be synced next round", c->path);
                *skip = 1;
                goto out;
        }
        c->manifest = m;
        memset(&m, 0, sizeof(m));
        c->stream = 0;
        c->sent = 1;
out:
        if (fd >= 0)
                close(fd);
        free(full);
        free(st.seen.slot);
        free(st.seen.used);
        manifest_free(&m);
        return r;
}
