/* pull_apply: how one server entry meets the local folder, for the pull
 * half of a sync round (pull.c): checked path, the download rules
 * (pull_rules.h), the local state against the index, then a directory or
 * link written, a file download queued, a delete moved to the trash, or
 * unsynced local data moved aside as a conflict copy. */
#ifndef FERRY_PULL_APPLY_H
#define FERRY_PULL_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sync.h"
#include "transfer.h"

/* Applies one server entry (docs/api.md) to the folder, queuing file
 * downloads in jobs[0..*njobs) (grown as needed). Files moved to the trash
 * are remembered in s->moved_from/moved_to; their index entries are the
 * caller's to drop once the page's downloads are done. Returns 0 or a
 * negative code with a message. */
int pull_apply_entry(struct sync_ctx *s, const json_t *entry, struct dl_job **jobs, size_t *njobs,
                     size_t *capjobs);

/* Notes a download that could not be applied, for the round's report
 * (s->dl_failed; nothing when that is NULL). */
void pull_apply_note_failed(struct sync_ctx *s, const char *path, int64_t seq, const char *reason);

/* GET /api/v1/file?path=P: the server's current entry of path, with its
 * chunks (a tombstone for a deleted path). */
int pull_apply_get_file(struct sync_ctx *s, const char *path, json_t **out);

#endif
