/* delta: the changes feed's patches (docs/api.md, GET /api/v1/changes with
 * patch=1). A device that asks for the changes since N holds, of each path,
 * the newest version with seq <= N (if it applied the feed through N). When
 * that version is a retained live file, the new version's chunk list can
 * go as a patch against it (patch.h) instead of whole: a one-chunk edit of
 * a 1 GiB file then costs one chunk's line, not 14,000. The device applies
 * the patch only when its own index holds exactly that version, and
 * otherwise asks for the whole entry (GET /api/v1/file).
 */
#ifndef FERRY_DELTA_H
#define FERRY_DELTA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"

/* Entries with fewer chunks than this go whole without a look at their
 * history: a patch could not save much, and the look costs two queries. */
#define DELTA_MIN_CHUNKS 16

/* For entries[idx[0..n)] of a changes page (objects of api_entry_json with
 * "chunks", live files) asked for with since: replaces "chunks" by
 * "patch_base" and "patch" wherever the version of the path at since is a
 * retained live file and the patch is shorter. Entries it cannot patch are
 * left whole. Returns 0 or a negative store code. */
int delta_page(struct meta *m, int64_t user, int64_t since, json_t *entries, const size_t *idx,
               size_t n);

#endif
