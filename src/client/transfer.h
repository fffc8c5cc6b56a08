/* transfer: moving file content between the folder and the server, chunk by
 * chunk, never holding a whole file in memory.
 *
 * Upload: for the files a scan found changed, ask the server which chunks it
 * lacks (POST /api/v1/chunks/missing), read exactly those from the files and
 * send them in bodies of about 4 MiB (POST /api/v1/chunks), one body in
 * flight on a second thread while the next is read, or two on two
 * connections (transfer.connections), so that the server stores two at
 * once. Every chunk read is checked again (its XXH3 fingerprint from the
 * scan): a file that changed since the scan is skipped this round (the
 * next scan picks it up), so the server never gets bytes that do not match
 * what will be committed. A large new file the scan left unread is read,
 * hashed and sent in one pass instead (transfer_stream).
 *
 * Download: assemble file versions from their manifests into temporary files
 * (".ferry-tmp-<random>" in the target's directory), taking chunks this
 * device already has from local files (verified by hash, or trusted by an
 * unchanged stat and copied by the kernel, dlcopy.h), then what a LAN
 * peer has (the optional peer_fetch hook), and the rest from
 * POST /api/v1/chunks/fetch, in windows of at most 1,024 chunks and ~4 MiB,
 * the next window's request on a second connection while this one is
 * verified and written (dlwin.h; one connection with a bandwidth limit).
 * Each chunk is verified against its hash and each file's chunk list
 * against its file hash (manifest.h); files are given their mode and
 * mtime (small files on several threads, dlfile.h); files are then made
 * durable in groups of up to 1,024 (one syncfs() for many, so the disk
 * merges their writes) and only then renamed into place; the touched
 * directories are fsynced once before transfer_download() returns.
 */
#ifndef FERRY_TRANSFER_H
#define FERRY_TRANSFER_H

#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include "buf.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "remote.h"
#include "scan.h"

/* Sizes of one request (docs/api.md gives the server's hard limits). */
#define TRANSFER_BODY_BYTES (4u * 1024u * 1024u)
#define TRANSFER_MISSING_BATCH 10000
#define TRANSFER_FETCH_BATCH 1024

/* After a chunk body reached the server: the file at path (a change's
 * path) has its first `done` bytes there, every chunk up to that offset
 * being sent now or earlier, or held by the server already. */
struct transfer_mark {
        const char *path;
        uint64_t done;
};

struct transfer {
        struct remote *remote;
        const char *root;
        struct index *idx; /* where local copies of chunks are looked up; may be NULL */
        /* Optional: opens (O_RDONLY) the current location of a file the index
         * still names but that this round moved away (to the trash); returns
         * a descriptor or a negative code. */
        int (*open_moved)(void *ud, const char *path);
        /* Optional: called after each chunk body of an upload was accepted,
         * with the files that body advanced, on the thread that posted it,
         * in the order the bodies were filled, once every body before it
         * was accepted (never after one failed), and never two calls at
         * once. It may itself make a request on rem (the connection that
         * posted the body: nothing else uses it meanwhile; remote or a
         * clone of it). Must not fail the upload: records are reported,
         * not relied on. */
        void (*body_sent)(void *ud, struct remote *rem, const struct transfer_mark *marks,
                          size_t n);
        void *ud;
        /* Upload connections at once: 2 posts bodies on remote and on a
         * clone of it (remote_clone) while the next is read; 0 or 1 keep
         * to remote. Remote keeps to one when it has a bandwidth limit. */
        int connections;
        /* Optional: a LAN peer asked before the server (lanclient_fetch with
         * a struct lanclient as peer_ud). Given the distinct hashes[0..n)
         * (n <= TRANSFER_FETCH_BATCH) of a download window that are not on
         * this device, appends to frames (frame.h format) those it has, in
         * any order; the server is asked for the rest. Every frame is
         * verified here. A negative return, or a frame that does not
         * verify, stops using the peer until transfer_download() returns. */
        int (*peer_fetch)(void *peer_ud, const struct hash *hashes, size_t n, struct buf *frames);
        void *peer_ud;
        /* statistics, for the debug log; bytes_fetched and bytes_lan count
         * the frame bytes received from the server and from the LAN peer */
        uint64_t chunks_sent, bytes_sent, chunks_fetched, bytes_fetched, chunks_local;
        uint64_t chunks_lan, bytes_lan;
        uint64_t bytes_copied; /* of chunks_local, copied by copy_file_range() */
};

/* Sends the chunks the server lacks for the file puts among changes[0..n)
 * (other changes are ignored). Only chunks that are not in the base
 * version's chunk list (the index's manifest of the path, when the put has
 * a base) nor recorded in the index for another synced file are asked
 * about: the server holds those for this account since it accepted those
 * versions. skip[i] is set to 1 for a file that vanished
 * or changed since it was scanned (and left alone otherwise): do not commit
 * it this round. Returns 0 or a negative code (network, server). */
int transfer_upload(struct transfer *t, struct local_change *const *changes, size_t n, int *skip);

/* Reads c's file (a put the scan left unread, local_change.stream) once,
 * cutting, hashing and sending its chunks as it goes: each 4 MiB read is on
 * its way to the server while the next is hashed, so a large new file costs
 * one read and the upload overlaps the hashing. Chunks the file repeats or
 * that the index records for a synced file are not sent; the server is
 * asked about the others first (sender.h), so a new file whose upload was
 * cut off earlier resumes where it stopped. Fills in c->manifest and sets
 * c->sent (transfer_upload then leaves it out). A file that changed since
 * the scan or while it was read gets *skip = 1 (its chunks may have been
 * sent; nothing is committed). Returns 0 or a negative code (network,
 * server, memory). */
int transfer_stream(struct transfer *t, struct local_change *c, int *skip);

/* Sends the chunks named in missing (a JSON array of hex hashes, as in a
 * commit's missing_chunks result) from c's file. *skip as above. */
int transfer_upload_missing(struct transfer *t, const struct local_change *c, const json_t *missing,
                            int *skip);

/* One file version to download. */
struct dl_job {
        char *path;        /* Ferry path */
        struct manifest m; /* chunks, size and file_hash */
        uint32_t mode;     /* from the server: 0644 or 0755 */
        int64_t mtime_ns;
        int64_t seq;
        /* the local state seen when the download was decided, so that a
         * change made meanwhile is noticed before the rename */
        int have_prev;
        struct stat prev;
};

struct dl_hooks {
        /* Called just before the rename into place (may be NULL): a
         * negative return abandons this file and is returned. */
        int (*before_rename)(void *ud, struct dl_job *j);
        /* Called once the file is in place, with its stat. */
        int (*done)(void *ud, struct dl_job *j, const struct stat *st);
        void *ud;
};

/* Downloads jobs[0..n) (their parents must exist and be checked safe).
 * Returns 0 or the first negative code (then some files may be in place and
 * reported through done, the others are not touched). */
int transfer_download(struct transfer *t, struct dl_job *jobs, size_t n,
                      const struct dl_hooks *hooks);

void dl_job_free(struct dl_job *j);

/* Reads exactly len bytes at off; -EIO on a short read (the file shrank).
 * Shared by the upload and download halves. */
int transfer_pread_full(int fd, uint8_t *p, size_t len, uint64_t off);

#endif
