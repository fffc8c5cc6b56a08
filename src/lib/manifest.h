/* manifest: what a file version is made of — the ordered list of its chunks
 * (hash and size), plus the file's size and whole-file hash.
 *
 * Three encodings:
 *   - JSON for the wire: [["<64 hex>", size], ...]
 *   - a compact binary blob for storage: per chunk 32 bytes of hash then a
 *     4-byte big-endian size (36 bytes a chunk)
 *   - in memory: struct manifest.
 * manifest_from_fd() is the single place that reads a file to cut and hash
 * it: one pass computes the chunk boundaries, each chunk's hash and the whole
 * file's hash, with a fixed-size buffer (never the whole file in memory).
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
};

struct manifest {
        struct chunk_ref *chunks;
        size_t n;
        size_t cap;
        uint64_t size;         /* sum of chunk sizes */
        struct hash file_hash; /* SHA-256 of the whole content */
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
void manifest_free(struct manifest *m);

/* Called for each chunk as it is cut, with its bytes (valid only during the
 * call) and its offset in the file. A negative return aborts the read and is
 * returned by manifest_from_fd(). */
typedef int (*manifest_chunk_cb)(const struct chunk_ref *c, uint64_t offset, const uint8_t *data,
                                 void *userdata);

/* Reads fd from its current position to EOF once: fills m (which must be
 * empty) with chunks, size and file_hash. cb may be NULL. Returns 0 or
 * -errno (read errors set a message). */
int manifest_from_fd(int fd, struct manifest *m, manifest_chunk_cb cb, void *userdata);

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
