/* dlwin: the windows of a download (transfer_dl.c) and filling them from
 * the network. A window is up to TRANSFER_FETCH_BATCH chunks
 * (~TRANSFER_BODY_BYTES) of one or more files, in manifest order, some
 * already filled from local files; the LAN peer is asked for the others
 * first (dlwin_peer, on the caller's thread), the server for what is still
 * missing (dlwin_send, one request per window).
 *
 * The pipeline: a download keeps two windows. While the caller verifies
 * and writes window k (dlwin_recv, then its own writes), the request for
 * window k+1 is already on its way on a second connection (remote_clone),
 * run by a fetcher thread into that window's own buffer, so that the
 * server reads and sends while this side hashes and writes. At most two
 * windows are out at once: memory stays at two windows and their frames.
 * Every chunk that enters a window from the network is verified against
 * its hash in dlwin_recv(), on the caller's thread with a hash_bg helper
 * taking part of the SHA-256 work (the fetcher thread only receives).
 *
 * No thread and no second connection when they would not pay: a download
 * whose rest fits in the window being sent, windows with nothing to fetch,
 * and a remote with a bandwidth limit (a clone would double it, as for
 * uploads) send on the transfer's own connection, in dlwin_send() itself.
 * Either way errors come out of dlwin_recv() of the window they concern.
 */
#ifndef FERRY_DLWIN_H
#define FERRY_DLWIN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"
#include "remote.h"
#include "transfer.h"

/* One chunk of one job inside the window. */
struct dlwin_slot {
        size_t job;
        size_t chunk;
        size_t off; /* in the window buffer */
        int have;
};

/* One window: set slots[0..ns) and fill what is local, then dlwin_peer,
 * dlwin_send, dlwin_recv. */
struct dlwin {
        struct dlwin_slot *slots;
        size_t ns;
        uint8_t *win;       /* TRANSFER_BODY_BYTES + CHUNK_MAX */
        struct buf fetched; /* the frames received for it */
        /* private: from dlwin_send() to dlwin_recv() */
        int sent, done;
        size_t want; /* slots asked of the server */
        int result;
        char msg[256]; /* the request's error message (err_set is per thread) */
};

struct dlwin_pipe {
        struct transfer *t;
        const struct dl_job *jobs;
        struct dlwin w[2];
        int peer_off; /* the LAN peer failed once: not asked again */
        /* private */
        struct buf chunk; /* one decoded (compressed) chunk */
        struct hash_bg *bg;
        struct hash *got;   /* hashes of raw chunks, per slot being checked */
        size_t *chk;        /* those slots */
        struct remote *rem; /* the fetcher's connection (a clone) */
        int started, no_thread, stop;
        pthread_t th;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        struct dlwin *queue[2]; /* sent, not answered yet, oldest first */
        size_t nq;
};

/* Allocates both windows. Returns 0 or -ENOMEM (then dlwin_pipe_free). */
int dlwin_pipe_init(struct dlwin_pipe *p, struct transfer *t, const struct dl_job *jobs);

/* Waits for a request in flight, stops the fetcher and frees everything
 * (a window's answer not received is dropped). */
void dlwin_pipe_free(struct dlwin_pipe *p);

/* Fills the slots of w not filled yet that the LAN peer (transfer.h)
 * has. A failing or lying peer is dropped (peer_off), never fatal: returns
 * 0, or -ENOMEM. */
int dlwin_peer(struct dlwin_pipe *p, struct dlwin *w);

/* Sends the request for the slots of w still not filled, on the fetcher
 * thread (started on first need, when `more` says other windows follow) or
 * here. w stays untouched by the caller until dlwin_recv(w). Returns 0 or
 * -ENOMEM; a failed request is reported by dlwin_recv(). */
int dlwin_send(struct dlwin_pipe *p, struct dlwin *w, int more);

/* Waits for w's answer and fills its slots, every chunk verified. Windows
 * are received in the order sent. Returns 0 or a negative code with its
 * message. */
int dlwin_recv(struct dlwin_pipe *p, struct dlwin *w);

#endif
