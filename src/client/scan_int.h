/* scan_int: what the parts of the scan module share: the full scan
 * (scan.c) and the targeted scan of a few paths (scan_paths.c) walk with
 * the same code and finish with the same second pass (scan_finish.c:
 * renames, deletes, order, stat refreshes). Private to those files. */
#ifndef FERRY_SCAN_INT_H
#define FERRY_SCAN_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sys/stat.h>

#include "index.h"
#include "scan.h"

/* An index entry as loaded at the start of the scan. */
struct known {
        struct index_entry e;
        int seen;    /* found in the folder, or in a part we could not read */
        int renamed; /* consumed as the source of a rename */
};

/* An unchanged file whose stat moved on (touch, copy back): its entry is
 * rewritten with the new stat at the end of the scan. */
struct refresh {
        struct index_entry e;
        struct manifest m;
};

/* A held-up row of the index (the rules held the file back before), as
 * loaded at the start of the scan: a held file whose size and mtime still
 * match is not read again. */
struct held_seen {
        char *path;
        uint64_t size;
        int64_t mtime_ns;
};

struct scan {
        const char *root;
        int rfd; /* the root, open */
        struct index *idx;
        const struct scan_options *opt; /* never NULL */
        struct scan_result *out;
        struct known *known;
        size_t nknown, capknown;
        /* since-last-sync with a time: known holds only the entries looked
         * up one by one, in the order found (not sorted), all seen */
        int lookup;
        struct refresh *refresh;
        size_t nrefresh, caprefresh;
        struct held_seen *held; /* sorted by path */
        size_t nheld, capheld;
        int64_t started_ns;
};

/* Loads the held-up rows into sc->held (sorted) when the options hold
 * files back; prefix NULL for all, else those at or under prefix. */
int scan_load_held(struct scan *sc, const char *prefix);

/* Sorts sc->held by path after scan_load_held calls. */
void scan_sort_held(struct scan *sc);

/* Opens the directory holding path (its parents, one by one from rfd,
 * never following a link). Returns the descriptor, -ENOENT when a parent is
 * gone or no longer a directory, or another negative code. */
int scan_open_parent(int rfd, const char *path);

/* Hashes dfd/name into m with st its stat: with old (the chunk list of an
 * earlier version of the file) through manifest_update_from_fd(), which
 * re-cuts only what changed, else manifest_from_fd(); the result is the
 * same. Returns 0, 1 when the file is to be skipped this round (gone,
 * unreadable, or changing under us), or a negative code for failures that
 * must stop the scan. */
int scan_hash_file(int dfd, const char *name, const char *rel, struct stat *st,
                   const struct manifest *old, struct manifest *m);

/* The sorted known entry of path, or NULL (not for sc->lookup scans). */
struct known *scan_find_known(struct scan *sc, const char *path);

/* Appends a zeroed change for path (copied) and returns it, or NULL. */
struct local_change *scan_add_change(struct scan *sc, int op, const char *path);

/* index_foreach callback: appends a copy of e to sc->known. */
int scan_load_known(const struct index_entry *e, void *ud);

/* qsort comparator of struct known by path (find_known needs that order). */
int scan_cmp_known(const void *a, const void *b);

/* Marks prefix and everything under it as seen: a part of the folder we
 * could not read this round must not turn into deletes. */
void scan_protect_subtree(struct scan *sc, const char *prefix);

/* Scans the entry name of the directory rel (open as dfd), and its subtree
 * for a directory, under sc->opt. */
int scan_name(struct scan *sc, int dfd, const char *rel, const char *name);

/* The second pass: renames, deletes, order, and the stat refreshes. */
int scan_finish(struct scan *sc);

/* Frees sc's lists; on failure (r < 0) also the result. */
void scan_cleanup(struct scan *sc, int r);

#endif
