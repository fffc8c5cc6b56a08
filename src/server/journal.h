/* journal: the rules of a space's journal, written once above the metadata
 * store interface (meta.h) so that every backend shares them: commits,
 * the version history they leave, and restoring a version of it.
 *
 * A commit is a list of changes (put, delete, rename), each naming the
 * version of its path it is based on. journal_commit() applies each change
 * only if that base is still current (compare-and-set), gives every applied
 * change the next number of the user's space, keeps tombstones for deletes,
 * and runs the whole list in one transaction. See docs/api.md, "commit".
 */
#ifndef FERRY_JOURNAL_H
#define FERRY_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "manifest.h"
#include "meta.h"
#include "patch.h"

enum journal_op { JOURNAL_PUT = 0, JOURNAL_DELETE, JOURNAL_RENAME };

struct journal_change {
        int op;           /* enum journal_op */
        const char *path; /* put, delete: the path; rename: the new path */
        const char *from; /* rename only */
        int64_t base;     /* seq of the entry the device last saw, 0 for none */
        /* put only: */
        int kind; /* enum file_kind */
        uint64_t size;
        int64_t mtime_ns;
        uint32_t mode;
        int has_hash;
        struct hash hash;
        const char *target;       /* symlinks */
        struct manifest manifest; /* files: the chunks (file_hash unused) */
        /* files, instead of manifest: edits against the base version's
         * chunks (the path's live entry, whose seq must equal base), see
         * patch.h */
        int has_patch;
        const struct patch_edit *patch;
        size_t n_patch;
        /* files, instead of manifest: the chunks of version same_seq of
         * same_path, which must be a retained live file with this hash
         * and size (a copy sends no chunk list) */
        const char *same_path;
        int64_t same_seq;
};

enum journal_status {
        JOURNAL_OK = 0,
        JOURNAL_CONFLICT,
        JOURNAL_MISSING_CHUNKS,
        JOURNAL_INVALID,
};

struct journal_result {
        int status;  /* enum journal_status */
        int64_t seq; /* OK: the entry's seq (0 for the no-op delete of an absent path) */
        /* CONFLICT: the entry that blocked the change, when there is one. */
        int has_current;
        struct meta_entry current;
        /* MISSING_CHUNKS: distinct chunks the account does not hold, in order. */
        struct hash *missing;
        size_t n_missing;
        char error[200]; /* INVALID */
};

void journal_result_clear(struct journal_result *r);

/* Applies changes[0..n) for user, made by device (its id), in one
 * transaction. results must hold n items (the caller clears them with
 * journal_result_clear). *seq is the space's number after the commit.
 * Returns 0 (whatever the per-change statuses) or a negative code when the
 * store failed, in which case nothing was committed. */
int journal_commit(struct meta *m, int64_t user, const char *device,
                   const struct journal_change *changes, size_t n, struct journal_result *results,
                   int64_t *seq);

/* journal_commit with the commit time now (seconds since the epoch) rather
 * than the clock's: every version it stores carries it. */
int journal_commit_at(struct meta *m, int64_t user, const char *device,
                      const struct journal_change *changes, size_t n,
                      struct journal_result *results, int64_t *seq, int64_t now);

enum journal_restore_status {
        JOURNAL_RESTORED = 0,        /* entry: the new current version */
        JOURNAL_RESTORE_UNCHANGED,   /* entry: the current version, already that content */
        JOURNAL_RESTORE_NOT_FOUND,   /* no such retained version (or no live one) */
        JOURNAL_RESTORE_TOMBSTONE,   /* the version asked for is a delete */
        JOURNAL_RESTORE_TARGET_LIVE, /* entry: the live entry at the new path */
};

struct journal_restore {
        int status;   /* enum journal_restore_status */
        int64_t from; /* the seq of the version restored (when found) */
        struct meta_entry entry;
};

void journal_restore_clear(struct journal_restore *r);

/* Makes version seq of path (0: its newest live version) the current
 * version of to (NULL: path itself) with a new commit by device at time
 * now, in one transaction: same kind, size, hash, mode, mtime_ns, target
 * and chunks. Unless to's live entry already has that content (UNCHANGED,
 * nothing committed) or to is another path that has a live entry
 * (TARGET_LIVE). Returns 0 with out->status set (the caller clears out),
 * -EINVAL with a message for an invalid path or seq, or a negative store
 * code (nothing committed). */
int journal_restore(struct meta *m, int64_t user, const char *device, const char *path, int64_t seq,
                    const char *to, int64_t now, struct journal_restore *out);

/* Entries with seq > since, ascending, at most limit; *more tells whether
 * there are further ones. cb may return 1 to stop without taking the entry
 * it was given (a response budget is full): *more is then set too. Returns 0
 * or a negative code. */
int journal_changes_since(struct meta *m, int64_t user, int64_t since, int64_t limit,
                          meta_entry_cb cb, void *userdata, int *more);

/* The tree under prefix (NULL: everything), sorted by path. -EINVAL when
 * prefix is not a valid path. */
int journal_list(struct meta *m, int64_t user, const char *prefix, int with_deleted,
                 meta_entry_cb cb, void *userdata);

/* One entry (live or tombstone); -ENOENT when the path never existed. */
int journal_get(struct meta *m, int64_t user, const char *path, struct meta_entry *out);

#endif
