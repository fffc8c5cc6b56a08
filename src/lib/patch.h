/* patch: a chunk list described as edits of another one, the `patch`
 * format of docs/api.md ("POST /api/v1/commit", "GET /api/v1/changes"):
 * [[start, delete_count, chunks], ...], with indices into the base list as
 * it was before any edit. Server and client share it both ways: a client
 * commits a small edit of a large file as a patch against the version the
 * server holds, and the changes feed sends a device the new version as a
 * patch against the version that device holds. Nothing here knows about
 * versions: only lists.
 */
#ifndef FERRY_PATCH_H
#define FERRY_PATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

/* One edit: delete del chunks of the base list from index start and insert
 * ins in their place. */
struct patch_edit {
        uint64_t start;
        uint64_t del;
        struct manifest ins; /* chunks and size only */
};

/* Where two chunk lists differ, by common prefix and common suffix: cur is
 * base with base[start, start + del) replaced by cur[start, start + ins).
 * One region, which is all an overwrite, insert, append or truncate in one
 * place needs; edits in several places make that region span them. Linear
 * in the lists' length. */
struct patch_region {
        size_t start, del, ins;
};

void patch_diff(const struct manifest *base, const struct manifest *cur, struct patch_region *d);

/* Whether sending d (from patch_diff against cur) saves anything over
 * cur's whole list: the few chunks of a small file are sent whole. */
int patch_worth(const struct manifest *cur, const struct patch_region *d);

/* Applies edits[0..n) to base into out (empty on entry): 0, or -EINVAL with
 * a message when an edit is out of range or out of order, or -ENOMEM. */
int patch_apply(const struct manifest *base, const struct patch_edit *edits, size_t n,
                struct manifest *out);

/* The one-edit patch [[start, del, cur[start, start + ins)]] of d: a new
 * reference, or NULL on out of memory. */
json_t *patch_to_json(const struct manifest *cur, const struct patch_region *d);

/* Parses a patch from the wire: *edits (malloc'd, n of them; free them
 * with patch_free) or -EINVAL with a message naming the bad edit. */
int patch_from_json(const json_t *v, struct patch_edit **edits, size_t *n);

void patch_free(struct patch_edit *edits, size_t n);

#endif
