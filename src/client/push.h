/* push: the upload half of a sync round: scan the folder, apply the
 * mass-delete guard, upload the chunks the server lacks and commit the
 * changes in batches, then bring the index up to date with each result (ok,
 * conflict -> keep both, missing chunks -> upload and retry once, invalid ->
 * report). */
#ifndef FERRY_PUSH_H
#define FERRY_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "sync.h"

/* At most this many changes in one POST /api/v1/commit. */
#define PUSH_COMMIT_BATCH 10000

/* Changes are uploaded and committed in groups, each of about this many
 * seconds of transfer (judged by the previous group's rate, the first one
 * PUSH_GROUP_FIRST bytes of files), so that a long upload commits as it
 * goes. Group sizes count file bytes. */
#define PUSH_GROUP_SECONDS 2
#define PUSH_GROUP_FIRST (4ull << 20)
#define PUSH_GROUP_MIN (256ull << 10)
#define PUSH_GROUP_MAX (1ull << 40)

/* 1 when deleting deletes of indexed entries trips the guard: more than
 * count AND more than percent % of indexed. */
int push_mass_delete_tripped(int64_t deletes, int64_t indexed, int64_t count, int percent);

/* The end of the group starting at changes[from]: at least one change,
 * at most PUSH_COMMIT_BATCH, stopping once the file puts in it add up to
 * target bytes. */
size_t push_group_end(struct local_change *const *changes, size_t n, size_t from, uint64_t target);

/* The next group's size after a group of bytes took elapsed_ns: about
 * PUSH_GROUP_SECONDS at that rate, within [PUSH_GROUP_MIN, PUSH_GROUP_MAX]. */
uint64_t push_group_target(uint64_t bytes, int64_t elapsed_ns);

/* Runs the push half. Returns 0 or a negative code with a message. */
int push_run(struct sync_ctx *s);

#endif
