/* dlcopy: the local sources of a download (transfer_dl.c): finding a
 * chunk in a file of the folder that the index says holds it, reading it,
 * and copying runs of chunks from a trusted source straight into the file
 * being written with copy_file_range(2).
 *
 * Trust: a source whose stat (size, mtime, ctime, inode, taken with fstat
 * on the open descriptor) equals what the index recorded for its path, and
 * whose entry is not racy, holds the content the index says: the scan
 * places the same trust in an unchanged stat (it does not read such files
 * again, scan.c). Chunks from such a source need no SHA-256. Every other
 * source is read and each chunk hashed, as before.
 *
 * The trust is checked twice: when the source is opened, and once the file
 * that took unverified chunks from it is complete (dlcopy_settle(), before
 * the file is accepted). A source whose stat moved in between makes the
 * caller read that file back and verify every chunk (dlcopy_verify_fd()).
 *
 * A large file's consecutive chunks that sit one after the other in one
 * trusted source are copied by the kernel, with no buffer here; where
 * copy_file_range() is refused (another file system, an old kernel), the
 * same bytes go through pread()+write(), and from then on for the rest of
 * the download. Setting FERRY_DL_NO_COPY_RANGE=1 in the environment forces
 * that fallback (the tests cover both paths with it).
 */
#ifndef FERRY_DLCOPY_H
#define FERRY_DLCOPY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "index.h"
#include "manifest.h"

/* What dlcopy_find() found. */
enum dlcopy_found {
        DLCOPY_NONE = 0,   /* not on this device: obtain it over the network */
        DLCOPY_VERIFY = 1, /* in a local file that must be read and hashed */
        DLCOPY_TRUSTED = 2 /* in a trusted local file: its bytes are the chunk */
};

/* A source a file being written took unverified chunks from. */
struct dlcopy_use {
        int fd; /* a dup() of the source's descriptor */
        struct stat st;
};

#define DLCOPY_USES_MAX 8

struct dlcopy {
        /* set by the caller (dlcopy_init) */
        const char *root;
        struct index *idx; /* may be NULL: nothing is local */
        int (*open_moved)(void *ud, const char *path);
        void *ud;
        int no_copy_range; /* use pread()+write() instead of copy_file_range() */
        /* statistics: bytes the kernel copied */
        uint64_t bytes_copied;
        /* private: the open source */
        char *path;
        int fd;
        int trusted;
        int trust_checked; /* src_trust() ran for it */
        struct stat st;    /* at open, when trusted */
        struct manifest m; /* the index's chunk list of a trusted source */
        uint64_t *offs;    /* offs[k]: where chunk k of m starts */
        size_t last;       /* the chunk of m found last */
        /* private: the sources of unverified chunks of the file being
         * written; overflow when more were used than fit */
        struct dlcopy_use used[DLCOPY_USES_MAX];
        size_t nused;
        int overflow;
        uint8_t *buf; /* CHUNK_MAX bytes, for the fallback and verify */
};

/* Prepares dc (reads FERRY_DL_NO_COPY_RANGE). Cannot fail. */
void dlcopy_init(struct dlcopy *dc, const char *root, struct index *idx,
                 int (*open_moved)(void *ud, const char *path), void *ud);

/* Looks chunk ref up: in the trusted source open now (its next chunk
 * first, without asking the index), else where the index says, opening
 * that file as the current source. Whether a source is trusted is only
 * worked out (an index entry and its chunk list read) once a lookup sets
 * want_trust: chunks of small files are hashed anyway. *off gets the
 * chunk's offset in the current source. Returns an enum dlcopy_found. */
int dlcopy_find(struct dlcopy *dc, const struct chunk_ref *ref, int want_trust, uint64_t *off);

/* 1 when ref is the chunk after the one found last in the current trusted
 * source (then it becomes the one found last), 0 otherwise. Never changes
 * the source, never asks the index. */
int dlcopy_next(struct dlcopy *dc, const struct chunk_ref *ref);

/* Reads the chunk found at off into dst (ref->size bytes). Unless
 * dlcopy_find() said DLCOPY_TRUSTED and trust is set, its hash is checked.
 * Returns 1 when dst holds the chunk, 0 when it must be obtained
 * otherwise. */
int dlcopy_read(struct dlcopy *dc, const struct chunk_ref *ref, uint64_t off, int trust,
                uint8_t *dst);

/* Records that the file being written took unverified chunks from the
 * current (trusted) source, for dlcopy_settle(). */
void dlcopy_note(struct dlcopy *dc);

/* Copies len bytes at off of the current source to out at its file
 * position (which advances by len). Returns 0 or a negative code with its
 * message (-EIO when the source got shorter meanwhile). */
int dlcopy_copy(struct dlcopy *dc, uint64_t off, uint64_t len, int out, const char *out_name);

/* Ends the file being written: 1 when every source it took unverified
 * chunks from still has the stat it was trusted with, 0 when one moved
 * (then dlcopy_verify_fd() must pass before the file is accepted). Forgets
 * those sources either way. */
int dlcopy_settle(struct dlcopy *dc);

/* Reads the file fd back chunk by chunk against m. Returns 0 or -EBADMSG
 * (or the read's error). */
int dlcopy_verify_fd(struct dlcopy *dc, int fd, const struct manifest *m);

/* Closes the current source, so that the next lookup opens the file now
 * at its path (after renames into the folder changed the index). */
void dlcopy_forget(struct dlcopy *dc);

void dlcopy_free(struct dlcopy *dc);

#endif
