/* sync: one sync round of a linked folder (DESIGN.md "Sync, one round"):
 * lock the folder, sweep temporary files a killed run left behind, then
 * push (scan, mass-delete guard, upload, commit) and pull (apply the
 * server's changes since the last applied seq), again while a pass made
 * conflict copies or found local edits to re-upload, and record the time of
 * the sync.
 *
 * The round is its own module so that `ferry sync`, the sync loop of
 * `make run` and, later, the watch daemon all run the same code. push.c and
 * pull.c hold the two halves; struct sync_ctx is what they share.
 */
#ifndef FERRY_SYNC_H
#define FERRY_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "index.h"
#include "remote.h"
#include "transfer.h"

/* Passes of push + pull in one round; a pass is repeated only when the
 * previous one left something to upload (a conflict copy, a local edit of a
 * file deleted elsewhere). */
#define SYNC_MAX_PASSES 3

struct sync_options {
        int allow_mass_delete;
};

struct sync_stats {
        int64_t uploaded;   /* puts and renames the server accepted */
        int64_t downloaded; /* files, directories and links written from the server */
        int64_t deleted;    /* deletes sent, and local copies moved to the trash */
        int64_t conflicts;  /* conflict copies made */
        int64_t invalid;    /* changes the server refused as invalid */
        int64_t refused;    /* server entries not applied (unsafe path) */
};

/* What push and pull share during a round. */
struct sync_ctx {
        const struct config *cfg;
        struct index *idx;
        struct remote *remote;
        struct transfer xfer;
        const struct sync_options *opts;
        char stamp[16];  /* trash folder of this round */
        int64_t scan_ns; /* when the last scan started (recorded_ns of pushed entries) */
        int again;       /* another pass is needed */
        json_t *pending; /* server entries to apply before the pull (commit conflicts) */
        /* files moved to the trash in the current pull page: a download may
         * still take chunks from them */
        char **moved_from, **moved_to;
        size_t nmoved, capmoved;
        struct sync_stats stats;
};

/* Runs one round on the folder of cfg. Returns 0 when the folder and the
 * server are in sync, a negative code with a message otherwise (-ECANCELED
 * for the mass-delete guard, -EBUSY when another ferry holds the lock). *st
 * gets the counts even on failure. */
int sync_run(const struct config *cfg, const struct sync_options *o, struct sync_stats *st);

#endif
