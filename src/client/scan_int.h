/* scan_int: what the two halves of the scan module share: the full scan
 * (scan.c) and the targeted scan of a few paths (scan_paths.c) walk with
 * the same code and finish with the same second pass (renames, deletes,
 * order, stat refreshes). Private to those two files. */
#ifndef FERRY_SCAN_INT_H
#define FERRY_SCAN_INT_H

#include <stddef.h>
#include <stdint.h>

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

struct scan {
        const char *root;
        struct index *idx;
        struct scan_result *out;
        struct known *known;
        size_t nknown, capknown;
        struct refresh *refresh;
        size_t nrefresh, caprefresh;
        int64_t started_ns;
};

/* index_foreach callback: appends a copy of e to sc->known. */
int scan_load_known(const struct index_entry *e, void *ud);

/* qsort comparator of struct known by path (find_known needs that order). */
int scan_cmp_known(const void *a, const void *b);

/* Marks prefix and everything under it as seen: a part of the folder we
 * could not read this round must not turn into deletes. */
void scan_protect_subtree(struct scan *sc, const char *prefix);

/* Scans the entry name of the directory rel (open as dfd), and its subtree
 * for a directory. */
int scan_name(struct scan *sc, int dfd, const char *rel, const char *name);

/* The second pass: renames, deletes, order, and the stat refreshes. */
int scan_finish(struct scan *sc);

/* Frees sc's lists; on failure (r < 0) also the result. */
void scan_cleanup(struct scan *sc, int r);

#endif
