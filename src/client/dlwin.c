/* dlwin: filling a download's window from the LAN peer and the server
 * (see dlwin.h).
 */
#include "dlwin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "frame.h"
#include "hash.h"
#include "log.h"
#include "remote.h"

/* Fills the slots in [0, ns) not filled yet that the LAN peer (transfer.h)
 * has, each frame verified by frame_decode(); dlwin_fetch() gets the rest
 * from the server. A failing or lying peer is dropped, never fatal. */
int dlwin_peer(struct dlwin *d, size_t ns)
{
        struct transfer *t = d->t;
        struct hash *want = NULL;
        size_t nw = 0, pos = 0, used;
        struct frame f;
        int r = 0;

        if (!t->peer_fetch || d->peer_off)
                return 0;
        want = malloc(ns * sizeof(*want));
        if (!want)
                return -ENOMEM;
        for (size_t i = 0; i < ns; i++) {
                const struct hash *h = &d->jobs[d->slots[i].job].m.chunks[d->slots[i].chunk].hash;
                size_t k = 0;

                if (d->slots[i].have)
                        continue;
                while (k < nw && !hash_equal(&want[k], h))
                        k++;
                if (k == nw)
                        want[nw++] = *h;
        }
        buf_reset(&d->fetched);
        if (nw == 0 || (r = t->peer_fetch(t->peer_ud, want, nw, &d->fetched)) < 0)
                goto out;
        t->bytes_lan += d->fetched.len;
        while (pos < d->fetched.len) {
                if (frame_parse(d->fetched.data + pos, d->fetched.len - pos, &f, &used) <= 0 ||
                    frame_decode(&f, &d->chunk) < 0) {
                        r = err_set(-EBADMSG, "the LAN peer sent a chunk that does not verify");
                        goto out;
                }
                pos += used;
                for (size_t i = 0; i < ns; i++) {
                        struct dlwin_slot *s = &d->slots[i];
                        const struct chunk_ref *ref = &d->jobs[s->job].m.chunks[s->chunk];

                        if (s->have || !hash_equal(&ref->hash, &f.hash) ||
                            d->chunk.len != ref->size)
                                continue;
                        memcpy(d->win + s->off, d->chunk.data, ref->size);
                        s->have = 1;
                        t->chunks_lan++;
                }
        }
out:
        if (r < 0) {
                log_info("LAN peer dropped for this download: %s", err_msg(r));
                d->peer_off = 1;
        }
        free(want);
        return 0;
}

/* Fetches the slots in [0, ns) that are not filled yet, in one request. */
int dlwin_fetch(struct dlwin *d, size_t ns)
{
        json_t *req = json_object(), *arr = json_array();
        char hex[HASH_HEX_LEN + 1];
        size_t pos = 0, want = 0;
        int r;

        if (!req || !arr) {
                json_decref(arr);
                r = -ENOMEM;
                goto out;
        }
        json_object_set_new(req, "hashes", arr);
        for (size_t i = 0; i < ns; i++) {
                if (d->slots[i].have)
                        continue;
                hash_to_hex(&d->jobs[d->slots[i].job].m.chunks[d->slots[i].chunk].hash, hex);
                if (json_array_append_new(arr, json_string(hex)) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                want++;
        }
        if (want == 0) {
                r = 0;
                goto out;
        }
        r = remote_post_json_binary(d->t->remote, "/api/v1/chunks/fetch", req, &d->fetched);
        if (r < 0)
                goto out;
        d->t->bytes_fetched += d->fetched.len;
        for (size_t i = 0; i < ns; i++) {
                struct dlwin_slot *s = &d->slots[i];
                const struct chunk_ref *ref = &d->jobs[s->job].m.chunks[s->chunk];
                struct frame f;
                size_t used;

                if (s->have)
                        continue;
                r = frame_parse(d->fetched.data + pos, d->fetched.len - pos, &f, &used);
                if (r == 0)
                        r = err_set(-EPROTO, "the server's chunk answer is truncated");
                if (r < 0)
                        goto out;
                pos += used;
                if (!hash_equal(&f.hash, &ref->hash)) {
                        r = err_set(-EPROTO, "the server sent chunks out of order");
                        goto out;
                }
                r = frame_decode(&f, &d->chunk);
                if (r < 0)
                        goto out;
                if (d->chunk.len != ref->size) {
                        r = err_set(-EBADMSG, "a chunk of %s has the wrong size",
                                    d->jobs[s->job].path);
                        goto out;
                }
                memcpy(d->win + s->off, d->chunk.data, ref->size);
                s->have = 1;
                d->t->chunks_fetched++;
        }
        r = 0;
out:
        json_decref(req);
        return r;
}
