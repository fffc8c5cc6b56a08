/* dlwin: the window of a download (transfer_dl.c) and filling it from the
 * network: up to TRANSFER_FETCH_BATCH chunks (~TRANSFER_BODY_BYTES) of one
 * or more files, in manifest order, some already filled from local files;
 * the LAN peer is asked for the others first (dlwin_peer), the server for
 * what is still missing (dlwin_fetch). Every chunk that enters the window
 * from the network is verified against its hash (frame_decode()).
 */
#ifndef FERRY_DLWIN_H
#define FERRY_DLWIN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "transfer.h"

/* One chunk of one job inside the window. */
struct dlwin_slot {
        size_t job;
        size_t chunk;
        size_t off; /* in the window buffer */
        int have;
};

struct dlwin {
        struct transfer *t;
        const struct dl_job *jobs;
        struct dlwin_slot *slots;
        uint8_t *win;
        struct buf fetched, chunk; /* the frames received, one decoded chunk */
        int peer_off;              /* the LAN peer failed once: not asked again */
};

/* Fills the slots in [0, ns) not filled yet that the LAN peer
 * (transfer.h) has. A failing or lying peer is dropped (peer_off), never
 * fatal: returns 0, or -ENOMEM. */
int dlwin_peer(struct dlwin *w, size_t ns);

/* Fetches the slots in [0, ns) still not filled from the server, in one
 * request. Returns 0 or a negative code with its message. */
int dlwin_fetch(struct dlwin *w, size_t ns);

#endif
