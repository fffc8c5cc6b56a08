/* manifest: what a file version is made of — the ordered list of its chunks
 * (hash and size), plus the file's size and its file hash.
 *
 * The file hash is the SHA-256 of the chunks' SHA-256 digests laid end to
 * end (32 bytes each, in order; the empty file's is the SHA-256 of nothing),
 * not of the content itself. It names the same content just as surely
 * (chunk boundaries are a fixed function of the content), but it can be
 * checked chunk by chunk on several cores, and after an edit it follows from
 * the new chunk list without reading the unchanged parts again: a sequential
 * SHA-256 over a 1 GiB file costs 0.75 s on this class of CPU, which alone
 * would be most of the time budget of a small edit.
 *
 * Three encodings:
 *   - JSON for the wire: [["<64 hex>", size], ...]
 *   - a compact binary blob for storage: per chunk 32 bytes of hash then a
 *     4-byte big-endian size (36 bytes a chunk)
 *   - in memory: struct manifest.
 * manifest_from_fd() is the single place that reads a file to cut and hash
 * it: one pass computes the chunk boundaries and each chunk's hash, with a
 * fixed-size buffer (never the whole file in memory).
 */
#ifndef FERRY_MANIFEST_H
#define FERRY_MANIFEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

/* What a path holds. The same names are used on the wire ("file", "dir",
 * "symlink"). */
enum file_kind { KIND_FILE = 0, KIND_DIR = 1, KIND_SYMLINK = 2 };

/* "file", "dir", "symlink" */
const char *kind_name(int kind);
/* Returns the kind, or -EINVAL for an unknown name. */
int kind_parse(const char *name);

/* Upper bound on chunks in one manifest (a 1 TiB file at the average chunk
 * size); anything larger from the wire is rejected. */
#define MANIFEST_MAX_CHUNKS (16u * 1024u * 1024u)

struct chunk_ref {
        struct hash hash;
        uint32_t size;
        /* Set when the chunk was cut from a local file by this process: fp
         * is then the XXH3-64 of its bytes, which lets the uploader check
         * that the bytes it reads again are still those it hashed, at a
         * tenth of SHA-256's cost. Only for telling local bytes apart from
         * local bytes (an edit in between), never for anything from the
         * network: that is always checked with SHA-256. */
        uint32_t has_fp;
        uint64_t fp;
};

struct manifest {
        struct chunk_ref *chunks;
        size_t n;
        size_t cap;
        uint64_t size;         /* sum of chunk sizes */
        struct hash file_hash; /* manifest_file_hash() of the chunks */
};

#define MANIFEST_INIT                                                                              \
        {                                                                                          \
                NULL, 0, 0, 0,                                                                     \
                {                                                                                  \
                        {                                                                          \
                                0                                                                  \
                        }                                                                          \
                }                                                                                  \
        }

/* Appends a chunk and adds its size to m->size. Returns 0 or -ENOMEM. */
int manifest_add(struct manifest *m, const struct hash *h, uint32_t size);
/* The file hash of m's chunk list (see the top), into *out. */
void manifest_file_hash(const struct manifest *m, struct hash *out);
/* The file hash of the content p[0..n), held in memory (cut and hashed as
 * manifest_from_fd() would). Returns 0 or -ENOMEM. */
int manifest_file_hash_of(const void *p, size_t n, struct hash *out);
/* The XXH3-64 fingerprint of p[0..n) (struct chunk_ref's fp). */
uint64_t manifest_fp(const void *p, size_t n);
void manifest_free(struct manifest *m);

/* Called with the chunks m->chunks[first .. first + n), cut and hashed
 * (fingerprints too), as soon as their hashes are done and before their
 * bytes are read over: data holds their bytes end to end (valid only during
 * the call), from offset in the file. Every chunk comes once, in file order;
 * m is the list so far (it moves between calls). This is what lets an
 * upload send a file's chunks while the rest is still being read, reading
 * it once. A negative return aborts the read and is returned by
 * manifest_from_fd(). */
typedef int (*manifest_window_cb)(const struct manifest *m, size_t first, size_t n, uint64_t offset,
                                  const uint8_t *data, void *userdata);

/* Reads fd from its current position to EOF once: fills m (which must be
 * empty) with chunks (fingerprints included), size and file_hash. cb may be
 * NULL. Returns 0 or -errno (read errors set a message). */
int manifest_from_fd(int fd, struct manifest *m, manifest_window_cb cb, void *userdata);

/* Like manifest_from_fd() for a file whose earlier version's chunk list
 * old is known (from the index): reads fd from offset 0 once and gives
 * exactly the manifest manifest_from_fd() would (chunks, fingerprints, size,
 * file_hash), but runs the chunker only where the content changed: old
 * chunks are checked in place at their offsets (shifted by what an insert
 * or a cut moved them), their SHA-256 on both cores, and the gear hash runs
 * from a chunk that no longer matches until its cuts meet old boundaries
 * again (src/lib/manifest_update.c). Worth it for large files; a small one
 * costs the same either way. Returns 0 or -errno (read errors set a
 * message). */
int manifest_update_from_fd(int fd, const struct manifest *old, struct manifest *m);

/* New reference to a JSON array, or NULL on out of memory. */
json_t *manifest_to_json(const struct manifest *m);
/* Validates shape, hex and sizes (1..CHUNK_MAX each); fills chunks and size
 * (not file_hash). Returns 0 or -EINVAL with a message. */
int manifest_from_json(const json_t *j, struct manifest *m);

/* Allocates *out (caller frees). Returns 0 or -ENOMEM. */
int manifest_to_blob(const struct manifest *m, uint8_t **out, size_t *len);
/* Fills chunks and size (not file_hash). Returns 0 or -EINVAL. */
int manifest_from_blob(const uint8_t *p, size_t len, struct manifest *m);

#endif
