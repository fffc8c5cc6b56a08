/* transfer: chunk uploads (see transfer.h; downloads are in transfer_dl.c).
 *
 * Memory stays bounded whatever the file sizes: an upload holds at most
 * three request bodies (~4 MiB each: up to two being sent, one being
 * filled) and one chunk. This is what lets a 2 GiB file sync with the
 * client well under 100 MiB of RSS.
 *
 * With transfer.connections = 2 a second poster thread posts every other
 * body on a second connection (remote_clone), so that ferryd verifies and
 * stores two bodies at once (one per core, and one's fsync overlaps the
 * other's hashing) while this thread reads and hashes the next. Bodies are
 * numbered as they are shipped, and body_sent reports them strictly in that
 * order, each after all before it are through, so a mark never claims bytes
 * that an earlier, slower body still carries.
 */
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
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
#include "log.h"
#include "manifest.h"
#include "path.h"

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

/* A request body and the files it advances (for transfer.body_sent). */
struct body {
        struct buf b;
        struct transfer_mark *marks;
        size_t n, cap;
        uint64_t seq; /* its number among the bodies shipped */
};

/* Records that c's first `done` bytes are on the server once this body is:
 * one mark per file and body, the furthest offset. */
static int body_mark(struct body *bd, const char *path, uint64_t done)
{
        if (bd->n > 0 && bd->marks[bd->n - 1].path == path) {
                bd->marks[bd->n - 1].done = done;
                return 0;
        }
        if (bd->n == bd->cap) {
                size_t ncap = bd->cap ? bd->cap * 2 : 16;
                struct transfer_mark *p = realloc(bd->marks, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                bd->marks = p;
                bd->cap = ncap;
        }
        bd->marks[bd->n++] = (struct transfer_mark){.path = path, .done = done};
        return 0;
}

static void body_reset(struct body *bd)
{
        buf_reset(&bd->b);
        bd->n = 0;
}

static void body_free(struct body *bd)
{
        buf_free(&bd->b);
        free(bd->marks);
        memset(bd, 0, sizeof(*bd));
}

#define SENDER_POSTERS 2
#define SENDER_BODIES (SENDER_POSTERS + 1)

struct sender;

/* A thread posting bodies on one connection, one at a time, so that
 * reading, hashing and framing the next body overlaps with the server
 * verifying and storing this one. */
struct poster {
        struct sender *sd;
        struct remote *rem; /* the transfer's remote, or a clone (own_rem) */
        int own_rem;
        pthread_t th;
        int started;
        struct body *job; /* the body to post; NULL when idle */
        int stop;
        int result;    /* of the last failed post */
        char msg[256]; /* its error message (err_set is per thread) */
};

/* The bodies and posters of one upload, under one lock: hand-overs come a
 * few dozen times a second, never contended for long. */
struct sender {
        struct transfer *t;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct poster post[SENDER_POSTERS];
        int nposters; /* 1, or 2 from the second body on */
        struct body body[SENDER_BODIES];
        int fill;          /* index of the body being filled */
        uint64_t shipped;  /* bodies handed to posters */
        uint64_t reported; /* bodies done with (reported or not), in order */
        uint64_t failed;   /* the first body that failed (UINT64_MAX: none) */
};

static void *poster_main(void *arg)
{
        struct poster *p = arg;
        struct sender *sd = p->sd;
        struct transfer *t = sd->t;

        pthread_mutex_lock(&sd->mu);
        for (;;) {
                struct body *body;
                int r, report;

                while (!p->job && !p->stop)
                        pthread_cond_wait(&sd->cv, &sd->mu);
                if (!p->job)
                        break;
                body = p->job;
                pthread_mutex_unlock(&sd->mu);
                r = remote_post_frames(p->rem, "/api/v1/chunks", &body->b, NULL);
                pthread_mutex_lock(&sd->mu);
                if (r < 0) {
                        snprintf(p->msg, sizeof(p->msg), "%s", err_msg(r));
                        p->result = r;
                        if (body->seq < sd->failed)
                                sd->failed = body->seq;
                } else {
                        t->bytes_sent += body->b.len;
                }
                /* marks go out in shipping order, each once every body
                 * before it is through */
                while (sd->reported != body->seq)
                        pthread_cond_wait(&sd->cv, &sd->mu);
                /* every body before this one is done: failed is final for
                 * them, and nothing after a failed body is claimed */
                report = body->seq < sd->failed && t->body_sent && body->n > 0;
                pthread_mutex_unlock(&sd->mu);
                /* this poster's connection is idle until its next job */
                if (report)
                        t->body_sent(t->ud, p->rem, body->marks, body->n);
                pthread_mutex_lock(&sd->mu);
                sd->reported++;
                p->job = NULL;
                pthread_cond_broadcast(&sd->cv);
        }
        pthread_mutex_unlock(&sd->mu);
        return NULL;
}

/* Waits until p has no body in flight; returns its first failed post's
 * code (its message set again on this thread) or 0. */
static int poster_wait(struct sender *sd, struct poster *p)
{
        int r;

        pthread_mutex_lock(&sd->mu);
        while (p->job)
                pthread_cond_wait(&sd->cv, &sd->mu);
        r = p->result;
        pthread_mutex_unlock(&sd->mu);
        return r < 0 ? err_set(r, "%s", p->msg) : 0;
}

static int poster_start(struct poster *p)
{
        sigset_t all, prev;
        int r;

        /* signals (SIGINT of `ferry watch`) stay with the main thread,
         * which decides what to abandon */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &prev);
        r = pthread_create(&p->th, NULL, poster_main, p);
        pthread_sigmask(SIG_SETMASK, &prev, NULL);
        if (r != 0)
                return err_set(-r, "cannot start the upload thread: %s", strerror(r));
        p->started = 1;
        return 0;
}

/* Opens the second connection when the transfer asks for it and no
 * bandwidth limit applies (a clone would double it); one connection
 * still works if that fails. */
static void sender_add_poster(struct sender *sd)
{
        struct poster *p = &sd->post[1];
        int r;

        if (sd->t->connections < 2 || remote_limited(sd->t->remote))
                return;
        r = remote_clone(sd->t->remote, &p->rem);
        if (r < 0) {
                log_debug("upload: one connection only: %s", err_msg(r));
                err_clear();
                return;
        }
        p->own_rem = 1;
        sd->nposters = 2;
}

/* Hands the filled body to the next poster (once that one's previous body
 * is through) and switches to the next free body. */
static int sender_ship(struct sender *sd)
{
        struct body *b = &sd->body[sd->fill];
        struct poster *p;
        int r;

        if (b->b.len == 0)
                return 0;
        if (sd->shipped == 1)
                sender_add_poster(sd);
        p = &sd->post[sd->shipped % (uint64_t)sd->nposters];
        r = poster_wait(sd, p);
        if (r < 0)
                return r;
        if (!p->started && (r = poster_start(p)) < 0)
                return r;
        pthread_mutex_lock(&sd->mu);
        b->seq = sd->shipped++;
        p->job = b;
        pthread_cond_broadcast(&sd->cv);
        pthread_mutex_unlock(&sd->mu);
        /* body shipped - SENDER_BODIES + 1 went to the poster just waited
         * for (or, with one poster, before the body it waited for) */
        sd->fill = (sd->fill + 1) % SENDER_BODIES;
        body_reset(&sd->body[sd->fill]);
        return 0;
}

/* Waits for every body in flight; the first failure's code, or 0. */
static int sender_wait(struct sender *sd)
{
        int r = 0;

        for (int i = 0; i < sd->nposters; i++) {
                int r2 = poster_wait(sd, &sd->post[i]);

                if (r == 0)
                        r = r2;
        }
        return r;
}

static void sender_stop(struct sender *sd)
{
        pthread_mutex_lock(&sd->mu);
        for (int i = 0; i < SENDER_POSTERS; i++)
                sd->post[i].stop = 1;
        pthread_cond_broadcast(&sd->cv);
        pthread_mutex_unlock(&sd->mu);
        for (int i = 0; i < SENDER_POSTERS; i++) {
                struct poster *p = &sd->post[i];

                if (p->started)
                        pthread_join(p->th, NULL);
                if (p->own_rem)
                        remote_free(p->rem);
        }
}

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
                r = frame_append(&sd->body[sd->fill].b, &ref->hash, chunk, ref->size, 1);
                if (r == 0 && t->body_sent)
                        r = body_mark(&sd->body[sd->fill], c->path, off + ref->size);
                if (r < 0)
                        goto out;
                set->sent[k] = 1;
                t->chunks_sent++;
                if (sd->body[sd->fill].b.len >= TRANSFER_BODY_BYTES) {
                        r = sender_ship(sd);
                        if (r < 0)
                                goto out;
                }
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
        struct sender sd = {.t = t, .nposters = 1, .failed = UINT64_MAX};
        uint8_t *chunk = NULL;
        int r = 0, r2;

        if (set->n == 0)
                return 0;
        pthread_mutex_init(&sd.mu, NULL);
        pthread_cond_init(&sd.cv, NULL);
        for (int i = 0; i < SENDER_POSTERS; i++)
                sd.post[i] = (struct poster){.sd = &sd, .rem = t->remote};
        for (int i = 0; i < SENDER_BODIES; i++)
                sd.body[i].b = (struct buf)BUF_INIT;
        chunk = malloc(CHUNK_MAX);
        if (!chunk) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                if (!is_file_put(changes[i]) || skip[i])
                        continue;
                r = send_file(t, changes[i], set, &sd, chunk, &skip[i]);
                if (r < 0)
                        goto out;
        }
        r = sender_ship(&sd);
out:
        /* every body must be through (or failed) before the commit that
         * needs its chunks, and before the buffers go */
        r2 = sender_wait(&sd);
        if (r == 0)
                r = r2;
        sender_stop(&sd);
        pthread_mutex_destroy(&sd.mu);
        pthread_cond_destroy(&sd.cv);
        free(chunk);
        for (int i = 0; i < SENDER_BODIES; i++)
                body_free(&sd.body[i]);
        return r;
}

/* Asks which of all[from..to) the server lacks and adds those to missing. */
static int query_missing(struct transfer *t, const struct hset *all, size_t from, size_t to,
                         struct hset *missing)
{
        json_t *req = json_object(), *arr = json_array(), *resp = NULL, *list, *v;
        char hex[HASH_HEX_LEN + 1];
        size_t i;
        int r;

        if (!req || !arr) {
                json_decref(arr);
                r = -ENOMEM;
                goto out;
        }
        json_object_set_new(req, "hashes", arr);
        for (i = from; i < to; i++) {
                hash_to_hex(&all->h[i], hex);
                if (json_array_append_new(arr, json_string(hex)) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = remote_post_json(t->remote, "/api/v1/chunks/missing", req, &resp);
        if (r < 0)
                goto out;
        list = json_object_get(resp, "missing");
        if (!json_is_array(list)) {
                r = err_set(-EPROTO, "the server's chunks/missing answer has no \"missing\" list");
                goto out;
        }
        json_array_foreach(list, i, v)
        {
                struct hash h;

                if (!json_is_string(v) || hash_from_hex(json_string_value(v), &h) < 0) {
                        r = err_set(-EPROTO, "the server sent an invalid hash in \"missing\"");
                        goto out;
                }
                r = hset_add(missing, &h);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        json_decref(req);
        json_decref(resp);
        return r;
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
                if (!is_file_put(changes[i]) || skip[i])
                        continue;
                r = add_new_chunks(t, changes[i], &all);
                if (r < 0)
                        goto out;
        }
        r = hset_seal(&all);
        if (r < 0)
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
