/* dlwin: filling a download's windows from the LAN peer and the server
 * (see dlwin.h for the pipeline).
 *
 * The fetcher thread only moves bytes: it builds the request of the oldest
 * window in its queue, receives the frames into that window's buffer and
 * marks it done. Verifying stays with the caller (dlwin_recv), because the
 * fetcher's time is the server's too: while it hashes, no request is out.
 * Receiving window k+1 thus overlaps verifying and writing window k, and
 * the SHA-256 of raw chunks (random or already compressed data, the bulk
 * of a large download) is shared with a hash_bg helper: a chunk goes to
 * the helper when it is idle, else it is hashed here, so the two cores
 * split the work whatever else runs.
 */
#include "dlwin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chunker.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "thread.h"

int dlwin_pipe_init(struct dlwin_pipe *p, struct transfer *t, const struct dl_job *jobs)
{
        memset(p, 0, sizeof(*p));
        p->t = t;
        p->jobs = jobs;
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv, NULL);
        for (int i = 0; i < 2; i++) {
                p->w[i].slots = calloc(TRANSFER_FETCH_BATCH, sizeof(*p->w[i].slots));
                p->w[i].win = malloc(TRANSFER_BODY_BYTES + CHUNK_MAX);
                if (!p->w[i].slots || !p->w[i].win)
                        return -ENOMEM;
        }
        p->got = malloc(TRANSFER_FETCH_BATCH * sizeof(*p->got));
        p->chk = malloc(TRANSFER_FETCH_BATCH * sizeof(*p->chk));
        p->bg = hash_bg_new();
        if (!p->got || !p->chk || !p->bg)
                return -ENOMEM;
        return 0;
}

void dlwin_pipe_free(struct dlwin_pipe *p)
{
        if (p->started) {
                pthread_mutex_lock(&p->mu);
                p->stop = 1;
                pthread_cond_broadcast(&p->cv);
                pthread_mutex_unlock(&p->mu);
                pthread_join(p->th, NULL);
        }
        if (p->rem)
                remote_free(p->rem);
        for (int i = 0; i < 2; i++) {
                free(p->w[i].slots);
                free(p->w[i].win);
                buf_free(&p->w[i].fetched);
        }
        hash_bg_free(p->bg);
        free(p->got);
        free(p->chk);
        buf_free(&p->chunk);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
}

static const struct chunk_ref *slot_ref(const struct dlwin_pipe *p, const struct dlwin_slot *s)
{
        return &p->jobs[s->job].m.chunks[s->chunk];
}

/* Fills the slots not filled yet that the LAN peer (transfer.h) has, each
 * frame verified by frame_decode(); the server gets asked for the rest. A
 * failing or lying peer is dropped, never fatal. Uses w->fetched, free
 * until the window is sent. */
int dlwin_peer(struct dlwin_pipe *p, struct dlwin *w)
{
        struct transfer *t = p->t;
        struct hash *want = NULL;
        size_t nw = 0, pos = 0, used;
        struct frame f;
        int r = 0;

        if (!t->peer_fetch || p->peer_off)
                return 0;
        want = malloc(w->ns * sizeof(*want));
        if (!want)
                return -ENOMEM;
        for (size_t i = 0; i < w->ns; i++) {
                const struct hash *h = &slot_ref(p, &w->slots[i])->hash;
                size_t k = 0;

                if (w->slots[i].have)
                        continue;
                while (k < nw && !hash_equal(&want[k], h))
                        k++;
                if (k == nw)
                        want[nw++] = *h;
        }
        buf_reset(&w->fetched);
        if (nw == 0 || (r = t->peer_fetch(t->peer_ud, want, nw, &w->fetched)) < 0)
                goto out;
        t->bytes_lan += w->fetched.len;
        while (pos < w->fetched.len) {
                if (frame_parse(w->fetched.data + pos, w->fetched.len - pos, &f, &used) <= 0 ||
                    frame_decode(&f, &p->chunk) < 0) {
                        r = err_set(-EBADMSG, "the LAN peer sent a chunk that does not verify");
                        goto out;
                }
                pos += used;
                for (size_t i = 0; i < w->ns; i++) {
                        struct dlwin_slot *s = &w->slots[i];
                        const struct chunk_ref *ref = slot_ref(p, s);

                        if (s->have || !hash_equal(&ref->hash, &f.hash) ||
                            p->chunk.len != ref->size)
                                continue;
                        memcpy(w->win + s->off, p->chunk.data, ref->size);
                        s->have = 1;
                        t->chunks_lan++;
                }
        }
out:
        if (r < 0) {
                log_info("LAN peer dropped for this download: %s", err_msg(r));
                p->peer_off = 1;
        }
        free(want);
        return 0;
}

/* Asks the server on rem for the slots of w not filled, into w->fetched.
 * Runs on the fetcher thread or the caller's; touches only w. */
static int fetch_request(struct dlwin_pipe *p, struct remote *rem, struct dlwin *w)
{
        json_t *req = json_object(), *arr = json_array();
        char hex[HASH_HEX_LEN + 1];
        int r;

        if (!req || !arr) {
                json_decref(arr);
                r = err_set(-ENOMEM, "out of memory");
                goto out;
        }
        json_object_set_new(req, "hashes", arr);
        for (size_t i = 0; i < w->ns; i++) {
                if (w->slots[i].have)
                        continue;
                hash_to_hex(&slot_ref(p, &w->slots[i])->hash, hex);
                if (json_array_append_new(arr, json_string(hex)) < 0) {
                        r = err_set(-ENOMEM, "out of memory");
                        goto out;
                }
        }
        r = remote_post_json_binary(rem, "/api/v1/chunks/fetch", req, &w->fetched);
out:
        json_decref(req);
        return r;
}

/* Records the outcome of w's request (on the thread that made it). */
static void fetch_done(struct dlwin *w, int r)
{
        w->result = r < 0 ? r : 0;
        if (r < 0)
                snprintf(w->msg, sizeof(w->msg), "%s", err_msg(r));
        w->done = 1;
}

static void *fetcher_main(void *arg)
{
        struct dlwin_pipe *p = arg;

        pthread_mutex_lock(&p->mu);
        for (;;) {
                struct dlwin *w;
                int r;

                while (p->nq == 0 && !p->stop)
                        pthread_cond_wait(&p->cv, &p->mu);
                if (p->stop)
                        break;
                w = p->queue[0];
                pthread_mutex_unlock(&p->mu);
                r = fetch_request(p, p->rem, w);
                pthread_mutex_lock(&p->mu);
                fetch_done(w, r);
                p->queue[0] = p->queue[1];
                p->nq--;
                pthread_cond_broadcast(&p->cv);
        }
        pthread_mutex_unlock(&p->mu);
        return NULL;
}

/* Opens the second connection and starts the fetcher; 0 when done, else
 * the caller keeps to its own connection for the rest of the download. */
static int fetcher_start(struct dlwin_pipe *p)
{
        int r;

        if (remote_limited(p->t->remote))
                return -EAGAIN; /* a clone would get the limit again */
        r = remote_clone(p->t->remote, &p->rem);
        if (r < 0)
                goto out;
        r = thread_start(&p->th, fetcher_main, p);
        if (r == 0)
                p->started = 1;
out:
        if (r < 0) {
                log_debug("download: one connection, no prefetch: %s", strerror(-r));
                err_clear();
                remote_free(p->rem);
                p->rem = NULL;
        }
        return r;
}

int dlwin_send(struct dlwin_pipe *p, struct dlwin *w, int more)
{
        w->want = 0;
        w->result = 0;
        w->done = 0;
        w->sent = 1;
        buf_reset(&w->fetched);
        for (size_t i = 0; i < w->ns; i++)
                w->want += !w->slots[i].have;
        if (w->want == 0) {
                w->done = 1;
                return 0;
        }
        if (!p->started && !p->no_thread && more && fetcher_start(p) < 0)
                p->no_thread = 1;
        if (!p->started) {
                fetch_done(w, fetch_request(p, p->t->remote, w));
                return 0;
        }
        pthread_mutex_lock(&p->mu);
        p->queue[p->nq++] = w; /* at most two windows: one sent, one written */
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return 0;
}

/* Checks the raw chunks handed to the hash helper or hashed inline. */
static int check_raw(struct dlwin_pipe *p, struct dlwin *w, size_t nchk)
{
        hash_bg_wait(p->bg);
        for (size_t k = 0; k < nchk; k++) {
                struct dlwin_slot *s = &w->slots[p->chk[k]];

                if (!hash_equal(&p->got[k], &slot_ref(p, s)->hash))
                        return err_set(-EBADMSG,
                                       "a chunk of %s from the server does not "
                                       "match its hash",
                                       p->jobs[s->job].path);
                s->have = 1;
        }
        return 0;
}

int dlwin_recv(struct dlwin_pipe *p, struct dlwin *w)
{
        size_t pos = 0, nchk = 0;
        int r = 0;

        if (!w->sent)
                return 0;
        w->sent = 0;
        if (p->started) {
                pthread_mutex_lock(&p->mu);
                while (!w->done)
                        pthread_cond_wait(&p->cv, &p->mu);
                pthread_mutex_unlock(&p->mu);
        }
        if (w->result < 0)
                return err_set(w->result, "%s", w->msg);
        if (w->want == 0)
                return 0;
        p->t->bytes_fetched += w->fetched.len;
        for (size_t i = 0; i < w->ns; i++) {
                struct dlwin_slot *s = &w->slots[i];
                const struct chunk_ref *ref = slot_ref(p, s);
                struct frame f;
                size_t used;

                if (s->have)
                        continue;
                r = frame_parse(w->fetched.data + pos, w->fetched.len - pos, &f, &used);
                if (r == 0)
                        r = err_set(-EPROTO, "the server's chunk answer is truncated");
                if (r < 0)
                        goto out;
                pos += used;
                if (!hash_equal(&f.hash, &ref->hash)) {
                        r = err_set(-EPROTO, "the server sent chunks out of order");
                        goto out;
                }
                p->t->chunks_fetched++;
                if (f.encoding == FRAME_ENC_RAW && f.len == ref->size) {
                        /* hashed in place, by the helper when it is idle */
                        memcpy(w->win + s->off, f.payload, ref->size);
                        p->chk[nchk] = i;
                        if (hash_bg_backlog(p->bg) > 0)
                                hash_buf(w->win + s->off, ref->size, &p->got[nchk]);
                        else
                                hash_bg_oneshot(p->bg, w->win + s->off, ref->size, &p->got[nchk]);
                        nchk++;
                        continue;
                }
                r = frame_decode(&f, &p->chunk);
                if (r < 0)
                        goto out;
                if (p->chunk.len != ref->size) {
                        r = err_set(-EBADMSG, "a chunk of %s has the wrong size",
                                    p->jobs[s->job].path);
                        goto out;
                }
                memcpy(w->win + s->off, p->chunk.data, ref->size);
                s->have = 1;
        }
        r = 0;
out:
        /* the helper may still read the window: wait for it either way */
        if (r == 0 && nchk > 0)
                r = check_raw(p, w, nchk);
        else if (nchk > 0)
                hash_bg_wait(p->bg);
        return r;
}
