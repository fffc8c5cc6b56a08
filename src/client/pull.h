/* pull: the download half of a sync round: apply the server's changes since
 * the last applied seq, page by page, never overwriting unsynced local data
 * (conflict copies), moving deleted files to the trash instead of unlinking
 * them, never writing through a symlink, and recording the new seq only once
 * a page's files are safely on disk; entries the download rules hold back
 * are recorded as held down (pull_rules.h), not written. */
#ifndef FERRY_PULL_H
#define FERRY_PULL_H

#include <jansson.h>

#include "sync.h"

/* Entries asked for in one GET /api/v1/changes. */
#define PULL_PAGE 1000

/* Runs the pull half (first the entries queued in s->pending). Returns 0 or
 * a negative code with a message. */
int pull_run(struct sync_ctx *s);

#endif
