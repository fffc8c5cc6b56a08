/* dlfile: the file-system half of a download (transfer_dl.c): writing a
 * verified file into its temporary name, writing many small files at once
 * on several threads, opening a resume file, and syncing the directories
 * files were renamed into.
 *
 * A download of many small files spends most of its time in the kernel
 * creating inodes (on ext4 without a journal, each creation also skips the
 * inodes deleted in the last seconds, one by one), not in this program:
 * that work runs on several threads here, while the network, the index and
 * the order of renames stay on the calling thread. A file written here is
 * complete and verified but neither durable nor in place; the caller makes
 * it durable and renames it, as for any download.
 */
#ifndef FERRY_DLFILE_H
#define FERRY_DLFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "manifest.h"

/* One whole file to write from memory. */
struct dlfile_task {
        /* in */
        const char *root;    /* the folder */
        const char *path;    /* Ferry path, validated, parents checked */
        const uint8_t *data; /* the whole content */
        size_t len;
        /* what the content must be: each chunk of m is checked against its
         * bytes, then m's chunk list against m->file_hash */
        const struct manifest *m;
        uint32_t mode; /* 0 means 0644 */
        int64_t mtime_ns;
        size_t tag; /* the caller's, untouched */
        /* out, on success: the open temporary file, its name, the target's
         * full name and the file's stat once written */
        int fd;
        char *tmp;
        char *final;
        struct stat st;
        /* private: what failed */
        int r;
        int step;
};

/* Gives the written file fd its mode (0 means 0644) and mtime and starts
 * its write-back (the caller's fsync/syncfs later mostly waits for I/O
 * already under way). Returns 0 or -errno. */
int dlfile_finish_fd(int fd, uint32_t mode, int64_t mtime_ns);

/* Writes tasks[0..n) into new temporary files beside their targets
 * (PATH_TEMP_PREFIX names), each verified against its hash before it is
 * created, using up to nthreads threads (the caller's included). Returns 0
 * (every task has fd, tmp, final and st, the caller's to close, rename
 * or remove, and free) or the first failure in task order, with its
 * message set; then no file of this call is left behind and the tasks hold
 * nothing to free. */
int dlfile_write(struct dlfile_task *tasks, size_t n, int nthreads);

/* Opens the resume file tmp (transfer_dl.c), creating it if absent. Only
 * a regular file with no other link is written into (anything else there
 * is removed first): a hard link to it elsewhere must not be changed
 * through it. *size gets its current size. Returns a descriptor or a
 * negative code. */
int dlfile_open_resume(const char *tmp, uint64_t *size);

/* The directories files were renamed into, each once. */
struct dlfile_dirs {
        char **v;
        size_t n, cap;
};

/* Adds the directory holding final (an absolute file name). Returns 0 or
 * -ENOMEM. */
int dlfile_dirs_add(struct dlfile_dirs *ds, const char *final);

/* fsync()s each directory of ds, so that the renames into them are
 * durable. Returns 0 or the first negative code, with its message. */
int dlfile_dirs_sync(const struct dlfile_dirs *ds);

void dlfile_dirs_free(struct dlfile_dirs *ds);

/* How many threads dlfile_write() is worth on this machine (1 to 4). */
int dlfile_threads(void);

#endif
