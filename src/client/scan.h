/* scan: finds what changed in the folder since the index was written.
 *
 * Walks the folder with lstat (symlinks are never followed), skipping the
 * .ferry/ state folder and Ferry's temporary files. A file whose size,
 * mtime, ctime (nanoseconds) and inode match its index entry is unchanged and
 * not read; anything else is cut and hashed (manifest_from_fd). A file whose
 * mtime falls within a second of when its entry was recorded is "racy" and is
 * hashed anyway, so same-size rewrites within one clock tick are not missed.
 * A content-identical file whose stat changed (touch, copy-back) is not a
 * change: its index entry's stat is refreshed instead.
 *
 * A new file whose content hash equals that of a file that disappeared in
 * the same scan is reported as a rename (no re-upload).
 *
 * Changes come out in an order the server can apply: puts and renames in
 * path order (parents before children), then deletes deepest first.
 *
 * The device's rules (rules.h, ignore.h) shape what a sync's scan sees
 * (struct scan_options): ignored names are skipped (never read, never
 * reported new, changed or deleted), and a new or changed entry the rules
 * hold back is reported as held (local_change.held, the reason) without its
 * content being read, so that a held film is not hashed every round. The top-level
 * RULES_BACKUP_PREFIX folder (`ferry backup` sets) is never looked at, like .ferry/.
 */
#ifndef FERRY_SCAN_H
#define FERRY_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "manifest.h"

struct ignore;

enum change_op { CHANGE_PUT = 0, CHANGE_DELETE = 1, CHANGE_RENAME = 2 };

struct local_change {
        int op;
        char *path;   /* for a rename: the new path */
        char *from;   /* rename only: the old path */
        int64_t base; /* seq of the index entry (of `from` for a rename); 0 if new */
        int kind;     /* enum file_kind (put, rename) */
        uint64_t size;
        int64_t mtime_ns;
        int64_t ctime_ns;
        uint64_t ino;
        uint32_t mode;
        struct manifest manifest; /* files: chunks, size, file_hash */
        char *target;             /* symlinks */
        /* Not NULL: the rules hold this put or rename back (the reason,
         * malloc'd). A held put's content is not read (manifest empty); a
         * held rename is a synced file moved to a name the rules do not
         * select (found by its content, as any rename). */
        char *held;
        /* 1: a large new file the scan did not read (scan_options.
         * stream_min): its manifest is empty until the upload reads,
         * hashes and sends it in one pass (transfer_stream), which fills
         * the manifest in and sets sent. */
        int stream;
        /* 1: every chunk of this put is on the server (transfer_stream
         * sent them): transfer_upload leaves it out. */
        int sent;
};

struct scan_result {
        struct local_change *changes;
        size_t n;
        size_t cap;
        int64_t entries_seen; /* files, dirs and links found in the folder */
        int64_t deletes;      /* how many changes are deletes */
        /* when the scan began (fsutil_now_ns): store it as recorded_ns when
         * writing index entries for these changes, so a rewrite made in
         * the same clock tick as the scan still looks racy next round */
        int64_t started_ns;
};

/* What a sync's scan applies beyond the index; zeroed: nothing (the plain
 * scan_folder / scan_paths). */
struct scan_options {
        /* .ferryignore and the defaults (ignore.h); NULL: nothing ignored */
        const struct ignore *ignore;
        /* Asked for each new or changed file or link, and each new
         * directory, before a file's content is read: 1 holds it back (why
         * gets the reason, whylen bytes), 0 lets it sync, < 0 stops the
         * scan. A held directory is not reported at all (what is under it
         * is asked about one by one). NULL: nothing is held. With hold set,
         * the index's held-up rows (index_held_*) tell the scan which held
         * files it has seen before, so that they are not read again. */
        int (*hold)(void *ud, const char *path, int kind, uint64_t size, char *why, size_t whylen);
        void *ud;
        /* since-last-sync (rules.h, RULES_MODE_SINCE): nothing is reported
         * deleted or renamed; with since_ns > 0, scan_folder_opts looks only
         * at entries whose mtime or ctime is later than since_ns, and at the
         * held-up files, each checked against its own index entry (the
         * index is not loaded as a whole). */
        int since;
        int64_t since_ns;
        /* 0: every new or changed file is read. Else a new file (no index
         * entry at its path, not held) of at least this many bytes is
         * reported unread (local_change.stream), unless it may be a moved
         * synced file (same size, mtime and mode as a vanished one): then
         * it is read to tell. */
        uint64_t stream_min;
};

/* Scans root against idx. May update idx (stat refreshes only). Returns 0
 * or -errno with a message; -ENOENT/-EACCES when root itself is missing or
 * unreadable (the mass-delete guard relies on this: a missing folder is never
 * "everything was deleted"). */
int scan_folder(const char *root, struct index *idx, struct scan_result *out);

/* Like scan_folder, but looks only at paths[0..n) (Ferry paths, e.g. from
 * inotify): a path that is a directory is scanned with its subtree, a path
 * that is gone makes deletes of its index entry and those under it, and
 * renames are found among the paths given (a move inside the folder names
 * both ends). A path whose parent directory the index does not know is
 * widened to that parent, so a new directory is always put with its
 * content. Paths under .ferry/ or naming temporary files are ignored; an
 * empty path means the whole folder. The same safety rules hold: a part
 * that cannot be read is left alone, never reported deleted. */
int scan_paths(const char *root, struct index *idx, const char *const *paths, size_t n,
               struct scan_result *out);

/* scan_folder and scan_paths under the options o (NULL: none). */
int scan_folder_opts(const char *root, struct index *idx, const struct scan_options *o,
                     struct scan_result *out);
int scan_paths_opts(const char *root, struct index *idx, const struct scan_options *o,
                    const char *const *paths, size_t n, struct scan_result *out);

/* Frees what one change holds (not the change itself). */
void scan_change_free(struct local_change *c);

void scan_result_free(struct scan_result *r);

#endif
