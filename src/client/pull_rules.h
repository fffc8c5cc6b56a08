/* pull_rules: the download rules (rules.h) and ignore patterns (ignore.h)
 * in the pull: which server entries this device takes and which it holds
 * back (held-down rows of the held store, index.h); when held entries come
 * down after all (an override from `ferry pull` or an answer to ask, a
 * change of the rules or of .ferryignore); and `ferry prune`, which turns
 * synced files the rules no longer select into held-down ones.
 *
 * A held-down row remembers the server entry (seq, kind, size, mtime) so
 * that `ferry held` can list it and the pull does not need the server's
 * changes again: last_seq advances past held entries like any other.
 */
#ifndef FERRY_PULL_RULES_H
#define FERRY_PULL_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "sync.h"

struct rules;
struct ignore;

/* The reason of a held-down row for a name .ferryignore matches. */
#define PULL_RULES_IGNORED "ignored by .ferryignore"

/* 1 when path is RULES_BACKUP_PREFIX or under it: backup sets are never
 * synced, not held, not listed. */
int pull_rules_is_backup(const char *path);

/* What becomes of one server entry e (path, kind, size, mtime_ns and seq
 * are read; dir and reason are not). deleted: it is a delete; in_index:
 * the index has the path (at another seq).
 *
 * Returns 1 when the entry is not to be applied: a backup set (skipped
 * silently), an ignored name or one the download rules hold or ask about
 * (its held-down row is written with the entry's seq, size, kind and the
 * reason), or the delete of an ignored name (its row is dropped, the local
 * file left alone). Returns 0 when it is to be applied as usual: a delete
 * (its held-down row is dropped), a path the index has (synced files keep
 * syncing whatever the rules say, until `ferry prune`), an override, a
 * file the rules select; its held-down row, if any, goes when the entry
 * is in place (pull_apply.c, pull.c), so that a failed download is tried
 * again. Negative on an index error. */
int pull_rules_fate(struct sync_ctx *s, const struct index_held *e, int deleted, int in_index);

/* Held-down entries that may now come down are fetched (GET
 * /api/v1/file) into s->pending, for the pull to apply: those with an
 * override, those the rules and .ferryignore now let through, and those
 * the index has (a synced file whose name is no longer ignored). Rows of
 * paths synced since (the index has them at their seq or later) are
 * dropped. Runs on the first pass of a full round, and of a targeted one
 * only when rules.json or .ferryignore changed since the last time. */
int pull_rules_release(struct sync_ctx *s);

/* `ferry prune`: synced files (in the index, no override, not ignored)
 * that the download rules do not select (hold or ask) are moved to
 * .ferry/trash/<stamp>/, dropped from the index and recorded as held down,
 * so that they neither come back nor count as local deletes. A file
 * changed here since it was synced is kept (its edit is not uploaded yet);
 * one missing here is left to the next sync (a local delete). Then the
 * folders the rules do not select that are left empty are removed and
 * held down the same way. The caller holds the folder's lock. */
enum pull_prune_what {
        PULL_PRUNE_MOVED,   /* moved to the trash */
        PULL_PRUNE_WOULD,   /* --dry-run: would be moved */
        PULL_PRUNE_CHANGED, /* kept: changed here, not uploaded yet */
        PULL_PRUNE_DIR,     /* an empty folder removed */
};

struct pull_prune_item {
        const char *path;
        int kind;
        uint64_t size;
        const char *reason; /* why the rules do not select it */
        enum pull_prune_what what;
};

struct pull_prune {
        const char *root;
        struct index *idx;
        const struct rules *rules;
        const struct ignore *ignore;
        char *const *paths; /* only at or under these (npaths 0: everywhere) */
        size_t npaths;
        int dry_run;
        const char *stamp; /* trash folder (localfs_trash_stamp) */
        /* told about each file and folder, in path order (folders after
         * their files); may be NULL */
        void (*report)(void *ud, const struct pull_prune_item *it);
        void *ud;
};

/* Returns the number of files moved (or that would be), or a negative code
 * with a message. */
int pull_rules_prune(const struct pull_prune *p);

#endif
