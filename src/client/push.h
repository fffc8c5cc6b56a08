/* push: the upload half of a sync round: scan the folder under the
 * device's rules (push_rules.c: ignored names skipped, held files listed
 * and kept back), apply the mass-delete guard, upload the chunks the
 * server lacks and commit the changes in batches, then bring the index up
 * to date with each result (ok, conflict -> keep both, missing chunks ->
 * upload and retry once, invalid -> report). */
#ifndef FERRY_PUSH_H
#define FERRY_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "scan.h"
#include "sync.h"

struct rules;
struct ignore;

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

/* Upload connections (transfer.connections; at most SENDER_POSTERS). */
#define PUSH_CONNECTIONS 2

/* A new file of at least this many bytes is not read by the scan but by its
 * upload, which hashes and sends it in one pass (transfer_stream): the
 * upload starts at once instead of after a whole read, and the file is read
 * once. Smaller files gain nothing from it (a scan reads them in
 * milliseconds, and many go up together in batched bodies). */
#define PUSH_STREAM_MIN (32ull << 20)

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

/* The index state key of the start of the last scan whose changes all
 * went up (ns since the epoch): since-last-sync looks at what changed
 * after it. Written by every full round, whatever the mode, so that a
 * switch to since-last-sync starts from the last upload. */
#define PUSH_LAST_UPLOAD_KEY "last_upload_ns"

/* push_rules.c: the rules in the push.
 *
 * The scan of a round (or of `ferry status`) under the device's rules:
 * names ig ignores are skipped, new or changed entries the upload rules
 * hold back (and that have no override) are reported held, and under
 * since-last-sync only what changed after PUSH_LAST_UPLOAD_KEY is looked at
 * and nothing is deleted. targeted: scan_paths over paths[0..n). */
int push_scan(struct index *idx, const char *root, const struct rules *rules,
              const struct ignore *ig, int targeted, const char *const *paths, size_t n,
              struct scan_result *out);

/* Takes the held changes out of sr: writes their held-up rows (not for
 * directories), sends a held rename after all when the moved file has an
 * override, keeps the delete of a directory a held rename moved a file out
 * of, and removes the held-up rows the scan looked at and did not hold
 * again (the file vanished, is ignored, or syncs now). whole: the scan
 * covered the whole folder; else it covered scope[0..nscope). sr->deletes
 * is counted again. */
int push_rules_apply(struct index *idx, struct scan_result *sr, int whole, const char *const *scope,
                     size_t nscope);

/* After the server accepted c: a deleted path loses its override, a
 * renamed one takes it to its new name. */
int push_rules_moved(struct index *idx, const struct local_change *c);

#endif
