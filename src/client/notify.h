/* notify: the watch daemon's view of local changes: recursive inotify
 * watches on a linked folder, turned into "this Ferry path changed" calls.
 *
 * Every directory of the folder gets a watch (never through a symlink, never
 * inside .ferry/); a directory that appears (mkdir, or moved in) is watched
 * with everything under it as soon as its event is read, and reported as
 * changed so that the caller scans it: files created before its watch
 * existed are found by that scan, later ones by their own events. A
 * directory moved away loses its watches; moved within the folder it is
 * watched again under its new name. .ferry/, the top-level backup folder
 * (rules.h) and Ferry's temporary files are never reported, nor are names
 * the ignore patterns match (ignore.h): an ignored directory gets no watch
 * at all. The one thing reported from .ferry/ is that rules.json was
 * replaced (NOTIFY_RULES), so that the daemon picks up `ferry rules` at
 * once.
 *
 * When the kernel's event queue overflows, or the watch limit
 * (fs.inotify.max_user_watches) is reached, events are lost: the caller is
 * told (NOTIFY_RESCAN, notify_limited) and must fall back to full scans.
 */
#ifndef FERRY_NOTIFY_H
#define FERRY_NOTIFY_H

#include <stddef.h>

/* What happened to a path (bits). */
enum {
        NOTIFY_CHANGED = 1,    /* created, deleted, moved, attributes: settles quickly */
        NOTIFY_WRITING = 2,    /* being written (modified, or a new file not closed yet) */
        NOTIFY_CLOSED = 4,     /* closed after writing: complete */
        NOTIFY_GONE = 8,       /* deleted or moved away (no longer being written) */
        NOTIFY_RESCAN = 16,    /* events were lost (queue overflow): scan everything */
        NOTIFY_ROOT_GONE = 32, /* the folder itself was deleted or moved */
        NOTIFY_RULES = 64      /* .ferry/rules.json was written */
};

/* path is a Ferry path ("" with NOTIFY_RESCAN / NOTIFY_ROOT_GONE /
 * NOTIFY_RULES). */
typedef void (*notify_cb)(void *ud, const char *path, unsigned what);

struct notify;
struct ignore;

/* Watches root and every directory under it that ig does not ignore (ig
 * may be NULL: nothing ignored; it is borrowed and must stay valid until
 * notify_set_ignore replaces it or notify_close). */
int notify_open(const char *root, const struct ignore *ig, struct notify **out);
void notify_close(struct notify *n);

/* New ignore patterns (.ferryignore changed): drops the watches of the
 * directories now ignored and walks the folder again, watching those no
 * longer ignored. The caller rescans the folder to find what they hold. */
int notify_set_ignore(struct notify *n, const struct ignore *ig);

/* The inotify descriptor (non-blocking) to wait on. */
int notify_fd(const struct notify *n);

/* Reads every queued event, calling cb for each path concerned. Returns 0
 * or -errno. */
int notify_read(struct notify *n, notify_cb cb, void *ud);

/* Walks the whole folder again, watching directories that were missed
 * (after an overflow). */
int notify_rewalk(struct notify *n);

/* 1 once a watch could not be added for lack of watches (ENOSPC): some
 * directories are not watched and only full scans see their changes. */
int notify_limited(const struct notify *n);

/* How many directories are watched. */
size_t notify_count(const struct notify *n);

#endif
