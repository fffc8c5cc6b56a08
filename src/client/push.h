/* push: the upload half of a sync round: scan the folder, apply the
 * mass-delete guard, upload the chunks the server lacks and commit the
 * changes in batches, then bring the index up to date with each result (ok,
 * conflict -> keep both, missing chunks -> upload and retry once, invalid ->
 * report). */
#ifndef FERRY_PUSH_H
#define FERRY_PUSH_H

#include <stdint.h>

#include "sync.h"

/* At most this many changes in one POST /api/v1/commit. */
#define PUSH_COMMIT_BATCH 10000

/* 1 when deleting deletes of indexed entries trips the guard: more than
 * count AND more than percent % of indexed. */
int push_mass_delete_tripped(int64_t deletes, int64_t indexed, int64_t count, int percent);

/* Runs the push half. Returns 0 or a negative code with a message. */
int push_run(struct sync_ctx *s);

#endif
