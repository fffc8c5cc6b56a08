/* restore: `ferry restore [PATH...] --at TIME|SEQ [--into DIR]` and `ferry
 * restore [PATH...] --into DIR` (docs/cli.md "restore"): the space's files
 * as of a point, from GET /api/v1/snapshot, page by page.
 *
 * Two ways:
 *   - in place (no DIR): each path whose content as of the point differs
 *     from its current one is restored through the server (POST
 *     /api/v1/restore, issue 5's restore of one version), so that the
 *     restore is a new version every device downloads; paths created after
 *     the point are left as they are (and counted);
 *   - into DIR: the files are downloaded directly (transfer_download:
 *     verified by hash, written to a temporary file and renamed into
 *     place), the server is not changed. PATH lands at DIR/<basename of
 *     PATH>/..., like `cp -r PATH DIR/` (the whole space: DIR/<path>). A
 *     file already in DIR with that content is left; one with another
 *     content is never overwritten (reported, exit 1). Nothing is written
 *     outside DIR: every parent is checked to be a real directory, never a
 *     symlink.
 * Without PATH, the whole space except the backup sets (.ferry-backup/):
 * restore a set by naming it, `.ferry-backup/NAME`.
 */
#ifndef FERRY_RESTORE_H
#define FERRY_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Parses a --at value: digits are a seq (*seq, *time = -1); else a local
 * time "YYYY-MM-DD", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" (a 'T'
 * may replace the space) into *time, seconds since the epoch (*seq = -1).
 * -EINVAL with a message otherwise. */
int restore_parse_point(const char *s, int64_t *seq, int64_t *time);

struct restore_options {
        const char *const *paths; /* Ferry paths; npaths 0: the whole space */
        size_t npaths;
        int64_t seq;      /* the point: a seq (> 0), or */
        int64_t time;     /* a time (>= 0); both < 0: now */
        const char *into; /* a local directory; NULL: in place, through the server */
};

struct restore_stats {
        int64_t seq;       /* the point listed (the space's seq then) */
        int64_t restored;  /* in place: paths restored as new versions */
        int64_t files;     /* into: files written */
        int64_t dirs;      /* into: directories made */
        int64_t links;     /* into: symlinks made */
        uint64_t bytes;    /* into: bytes of the files written */
        int64_t unchanged; /* already as they were */
        int64_t newer;     /* in place: live paths created after the point, left alone */
        int64_t kept;      /* into: local files with other content, not overwritten */
        int64_t failed;    /* logged */
        int64_t listed;    /* entries in the snapshot */
};

/* Restores o->paths as of the point. Prints a line per path restored in
 * place. 0 when everything was restored; -EEXIST when some local file was
 * kept (into), -EIO when some path failed (logged), -ENOENT when the
 * space held nothing there then or the history there is pruned, another
 * negative code on failure; st has the counts in every case. */
int restore_run(const struct config *cfg, const struct restore_options *o,
                struct restore_stats *st);

#endif
