/* localfs: the sync round's moves on the local folder that must never lose
 * data or escape the folder: the per-folder lock, the sweep of temporary
 * files a killed run left behind, the check that no parent of a path written
 * from the network is a symlink, moving files to the trash instead of
 * unlinking them, and moving a file aside as a conflict copy.
 *
 * Paths given to these functions are Ferry paths (relative to root) that
 * the caller has already passed through path_validate().
 */
#ifndef FERRY_LOCALFS_H
#define FERRY_LOCALFS_H

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "index.h"

#define LOCALFS_LOCK_FILE "lock"
#define LOCALFS_TRASH_DIR "trash"

/* Takes an exclusive flock on root/.ferry/lock without waiting. *fd gets the
 * lock's descriptor (release with localfs_unlock). -EBUSY with a message when
 * another ferry holds it. */
int localfs_lock(const char *root, int *fd);
void localfs_unlock(int fd);

/* Removes the .ferry-tmp-* files under root (not under .ferry/, never
 * following symlinks). With keep_resumable, keeps the partial downloads a
 * later round can resume: regular files with a resume name (below) changed
 * within the last LOCALFS_RESUME_MAX_AGE seconds. *removed and *kept (each
 * may be NULL) get how many were removed and kept. */
int localfs_sweep_temp(const char *root, int keep_resumable, int64_t *removed, int64_t *kept);

/* A download big enough to be worth resuming assembles into a temporary
 * file whose name depends only on its target path, so that the next round
 * finds what an interrupted one (killed, network cut, server restart) had
 * already written: ".ferry-tmp-r" and the first 16 hex digits of the
 * SHA-256 of the Ferry path. The name does not promise anything about the
 * content: whoever resumes verifies every chunk it keeps. */
#define LOCALFS_RESUME_NAME_LEN 28 /* strlen(PATH_TEMP_PREFIX) + 1 + 16 */
#define LOCALFS_RESUME_MAX_AGE (24 * 3600)

/* The resume name (a basename) for path into out (LOCALFS_RESUME_NAME_LEN +
 * 1 bytes). */
void localfs_resume_name(const char *path, char *out);

/* 1 when name (a basename) has the form of a resume name, 0 otherwise. */
int localfs_is_resume_name(const char *name);

/* Checks every parent component of path inside root with lstat: each must
 * be a real directory (not a symlink). With create set, missing ones are
 * made (0755). Returns 0, -ELOOP for a symlink, -ENOTDIR for something else
 * in the way, -ENOENT for a missing one without create; with a message. */
int localfs_safe_parents(const char *root, const char *path, int create);

/* The trash folder's name for a round started at when:
 * "YYYYmmdd-HHMMSS" (local time) into out (16 bytes). */
void localfs_trash_stamp(time_t when, char out[16]);

/* Moves root/path to root/.ferry/trash/<stamp>/path (creating the folders),
 * adding a ".N" suffix if that name is taken. *dest (may be NULL) gets the
 * new absolute path (malloc'd). */
int localfs_trash(const char *root, const char *stamp, const char *path, char **dest);

/* Renames root/path to its conflict name for this device and time (never
 * over an existing file: a later second is tried then). *newpath (may be
 * NULL) gets the new Ferry path (malloc'd). */
int localfs_conflict_move(const char *root, const char *path, const char *device, time_t when,
                          char **newpath);

/* The mode sent to the server: 0755 or 0644 for files (only the executable
 * bit syncs), 0 for directories and symlinks. */
uint32_t localfs_wire_mode(int kind, uint32_t st_mode);

/* The kind (enum file_kind) of a stat, or -1 for anything Ferry does not
 * sync (devices, sockets, fifos). */
int localfs_kind(const struct stat *st);

/* Fills the stat fields of e (kind, size, mtime_ns, ctime_ns, ino, mode) the
 * way the scanner records them (mode as localfs_wire_mode). */
void localfs_entry_stat(struct index_entry *e, const struct stat *st);

/* 1 when st still describes what e recorded (kind, size, mtime, ctime,
 * inode), 0 otherwise. */
int localfs_stat_matches(const struct index_entry *e, const struct stat *st);

/* Files modified this close to when their entry was recorded may have
 * changed again within the same time stamp (the file system's clock may
 * not have ticked), so their stat proves nothing. */
#define LOCALFS_RACY_NS INT64_C(1000000000)

/* 1 when e is a file whose content st's file still is, by the trust the
 * scan places in a stat: st matches e (localfs_stat_matches) and e was
 * recorded more than LOCALFS_RACY_NS after the file's mtime. The scan
 * then does not read the file again, and a download copies chunks from
 * it without hashing them. */
int localfs_entry_trusted(const struct index_entry *e, const struct stat *st);

/* 1 when a and b describe the same file unchanged in between (device,
 * inode, size, mtime, ctime): before and after reading it. */
int localfs_same_stat(const struct stat *a, const struct stat *b);

/* The file hash (manifest.h) of root/path, opened without following links. */
int localfs_hash_file(const char *root, const char *path, struct hash *out);

#endif
