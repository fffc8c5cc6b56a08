/* sender: request bodies of chunk frames and the threads that post them
 * (see sender.h).
 *
 * With transfer.connections = 2 a second poster thread posts every other
 * body on a second connection (remote_clone), so that ferryd verifies and
 * stores two bodies at once (one per core, and one's fsync overlaps the
 * other's hashing) while the caller reads and hashes the next. Bodies are
 * numbered as they are shipped, and body_sent reports them strictly in that
 * order, each after all before it are through, so a mark never claims bytes
 * that an earlier, slower body still carries.
 */
#include "sender.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "log.h"
#include "thread.h"

/* Records that path's first `done` bytes are on the server once this body
 * is: one mark per file and body, the furthest offset. */
static int body_mark(struct body *bd, const char *path, uint64_t done)
{
        if (bd->n > 0 && bd->marks[bd->n - 1].path == path) {
                bd->marks[bd->n - 1].done = done;
                return 0;
        }
        if (buf_grow_array((void **)&bd->marks, &bd->cap, bd->n + 1, sizeof(*bd->marks)) < 0)
                return -ENOMEM;
        bd->marks[bd->n++] = (struct transfer_mark){.path = path, .done = done};
        return 0;
}

static void body_reset(struct body *bd)
{
        buf_reset(&bd->b);
        bd->n = 0;
        bd->nasks = 0;
}

static void body_free(struct body *bd)
{
        buf_free(&bd->b);
        free(bd->marks);
        free(bd->asks);
        memset(bd, 0, sizeof(*bd));
}

int sender_query_missing(struct remote *rem, const struct hash *hashes, size_t n,
                         int (*add)(void *ud, const struct hash *h), void *ud)
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
        for (i = 0; i < n; i++) {
                hash_to_hex(&hashes[i], hex);
                if (json_array_append_new(arr, json_string(hex)) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        r = remote_post_json(rem, "/api/v1/chunks/missing", req, &resp);
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
                r = add(ud, &h);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        json_decref(req);
        json_decref(resp);
        return r;
}

struct lacking {
        struct hash *h;
        size_t n, cap;
};

static int lacking_add(void *ud, const struct hash *h)
{
        struct lacking *l = ud;

        if (buf_grow_array((void **)&l->h, &l->cap, l->n + 1, sizeof(*l->h)) < 0)
                return -ENOMEM;
        l->h[l->n++] = *h;
        return 0;
}

static int lacks(const struct lacking *l, const struct hash *h)
{
        for (size_t i = 0; i < l->n; i++)
                if (hash_equal(&l->h[i], h))
                        return 1;
        return 0;
}

/* Asks about body's chunks (it has asks) and drops the frames of those the
 * server has, moving the rest forward; *dropped counts them. A body is a
 * few dozen chunks, so the linear lookups cost nothing. */
static int body_drop_present(struct remote *rem, struct body *bd, uint64_t *dropped)
{
        struct lacking l = {0};
        size_t rd = 0, wr = 0;
        int r;

        r = sender_query_missing(rem, bd->asks, bd->nasks, lacking_add, &l);
        if (r < 0 || l.n == bd->nasks)
                goto out;
        while (rd < bd->b.len) {
                struct frame f;
                size_t used;

                r = frame_parse(bd->b.data + rd, bd->b.len - rd, &f, &used);
                if (r <= 0) {
                        r = err_set(-EIO, "upload: a request body of this device is corrupt");
                        goto out;
                }
                if (lacks(&l, &f.hash)) {
                        memmove(bd->b.data + wr, bd->b.data + rd, used);
                        wr += used;
                } else {
                        (*dropped)++;
                }
                rd += used;
        }
        bd->b.len = wr;
        r = 0;
out:
        free(l.h);
        return r;
}

static void *poster_main(void *arg)
{
        struct poster *p = arg;
        struct sender *sd = p->sd;
        struct transfer *t = sd->t;

        pthread_mutex_lock(&sd->mu);
        for (;;) {
                struct body *body;
                uint64_t dropped = 0;
                int r = 0, report;

                while (!p->job && !p->stop)
                        pthread_cond_wait(&sd->cv, &sd->mu);
                if (!p->job)
                        break;
                body = p->job;
                pthread_mutex_unlock(&sd->mu);
                if (body->nasks > 0)
                        r = body_drop_present(p->rem, body, &dropped);
                if (r == 0 && body->b.len > 0)
                        r = remote_post_frames(p->rem, "/api/v1/chunks", &body->b, NULL);
                pthread_mutex_lock(&sd->mu);
                if (r < 0) {
                        snprintf(p->msg, sizeof(p->msg), "%s", err_msg(r));
                        p->result = r;
                        if (body->seq < sd->failed)
                                sd->failed = body->seq;
                } else {
                        t->bytes_sent += body->b.len;
                        sd->dropped += dropped;
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
        int r = thread_start(&p->th, poster_main, p);

        if (r < 0)
                return err_set(r, "cannot start the upload thread: %s", strerror(-r));
        p->started = 1;
        return 0;
}

/* Opens the other connections when the transfer asks for them and no
 * bandwidth limit applies (a clone would multiply it); fewer still work if
 * that fails. */
static void sender_add_posters(struct sender *sd)
{
        int want = sd->t->connections < SENDER_POSTERS ? sd->t->connections : SENDER_POSTERS;

        if (remote_limited(sd->t->remote))
                return;
        while (sd->nposters < want) {
                struct poster *p = &sd->post[sd->nposters];
                int r = remote_clone(sd->t->remote, &p->rem);

                if (r < 0) {
                        log_debug("upload: %d connection(s) only: %s", sd->nposters, err_msg(r));
                        err_clear();
                        return;
                }
                p->own_rem = 1;
                sd->nposters++;
        }
}

void sender_init(struct sender *sd, struct transfer *t)
{
        memset(sd, 0, sizeof(*sd));
        sd->t = t;
        sd->nposters = 1;
        sd->failed = UINT64_MAX;
        pthread_mutex_init(&sd->mu, NULL);
        pthread_cond_init(&sd->cv, NULL);
        for (int i = 0; i < SENDER_POSTERS; i++)
                sd->post[i] = (struct poster){.sd = sd, .rem = t->remote};
        for (int i = 0; i < SENDER_BODIES; i++)
                sd->body[i].b = (struct buf)BUF_INIT;
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
                sender_add_posters(sd);
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

int sender_add(struct sender *sd, const struct hash *h, const uint8_t *data, size_t len, int ask,
               const char *path, uint64_t done)
{
        struct body *bd = &sd->body[sd->fill];
        int r;

        r = frame_append(&bd->b, h, data, len, 1);
        if (r == 0 && sd->t->body_sent)
                r = body_mark(bd, path, done);
        if (r == 0 && ask) {
                r = buf_grow_array((void **)&bd->asks, &bd->capasks, bd->nasks + 1,
                                   sizeof(*bd->asks));
                if (r == 0)
                        bd->asks[bd->nasks++] = *h;
        }
        if (r < 0)
                return r;
        sd->t->chunks_sent++;
        if (bd->b.len >= TRANSFER_BODY_BYTES)
                return sender_ship(sd);
        return 0;
}

int sender_finish(struct sender *sd, int err)
{
        int r = err;

        if (r == 0)
                r = sender_ship(sd);
        /* every body must be through (or failed) before the commit that
         * needs its chunks, and before the buffers go */
        for (int i = 0; i < sd->nposters; i++) {
                int r2 = poster_wait(sd, &sd->post[i]);

                if (r == 0)
                        r = r2;
        }
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
        sd->t->chunks_sent -= sd->dropped;
        pthread_mutex_destroy(&sd->mu);
        pthread_cond_destroy(&sd->cv);
        for (int i = 0; i < SENDER_BODIES; i++)
                body_free(&sd->body[i]);
        return r;
}
