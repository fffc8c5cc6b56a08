/* index: the device's memory of the last state it synced, in
 * DIR/.ferry/index.db (SQLite, WAL).
 *
 * An entry says "this path, with this stat and this content, is the version
 * the server numbered seq". The scanner compares the folder against it to
 * find local changes; an entry is written only after the server accepted an
 * upload or a download was safely renamed into place, so after a crash at any
 * moment the next scan finds whatever was not finished.
 *
 * The index also records, for every file, where each of its chunks sits
 * (offset and size), so that a download can take chunks the device already
 * has from local files instead of the network; and a small key/value table
 * of state (the last applied seq, the time of the last sync).
 */
#ifndef FERRY_INDEX_H
#define FERRY_INDEX_H

#include <stdint.h>

#include "hash.h"
#include "manifest.h"

#define INDEX_FILE "index.db"

struct index;

struct index_entry {
        char *path;
        int kind; /* enum file_kind */
        uint64_t size;
        int64_t mtime_ns;
        int64_t ctime_ns;
        uint64_t ino;
        uint32_t mode;
        struct hash hash;    /* files: content hash; zero otherwise */
        char *target;        /* symlinks: the link text; NULL otherwise */
        int64_t seq;         /* server seq this state corresponds to */
        int64_t recorded_ns; /* when the stat was recorded (racy-git check) */
};

int index_open(const char *db_path, struct index **out);
void index_close(struct index *idx);

/* Group many writes in one transaction (much faster, and atomic). Nests:
 * only the outermost begin/commit pair opens and closes the transaction; a
 * rollback at any depth rolls back the whole transaction. */
int index_begin(struct index *idx);
int index_commit(struct index *idx);
int index_rollback(struct index *idx);

/* Fills *out (caller frees with index_entry_free). -ENOENT if absent. */
int index_get(struct index *idx, const char *path, struct index_entry *out);

/* Inserts or replaces the entry for e->path. For files, m gives the chunk
 * list recorded for local chunk reuse (may be NULL: no chunks recorded). */
int index_put(struct index *idx, const struct index_entry *e, const struct manifest *m);

/* Removes the entry and its chunk records. Absent is not an error. */
int index_delete(struct index *idx, const char *path);

/* Calls cb for every entry in path order; a negative return stops and is
 * returned. The entry is valid only during the call. */
int index_foreach(struct index *idx, int (*cb)(const struct index_entry *e, void *ud), void *ud);

/* Calls cb for the entry at prefix (if any) and every entry under prefix/
 * (not in a defined order). Same rules as index_foreach. */
int index_foreach_under(struct index *idx, const char *prefix,
                        int (*cb)(const struct index_entry *e, void *ud), void *ud);

int index_count(struct index *idx, int64_t *n);

/* The chunk list recorded for path. -ENOENT if none. */
int index_get_manifest(struct index *idx, const char *path, struct manifest *m);

/* A local file that held chunk h when it was recorded: *path (malloc'd) and
 * the chunk's byte offset in it. -ENOENT if none. The caller must verify the
 * bytes it reads (the file may have changed since). */
int index_find_chunk(struct index *idx, const struct hash *h, char **path, uint64_t *offset);

/* Small integer state: "last_seq", "last_sync_ns", ... Missing keys read as
 * -ENOENT. */
int index_state_get(struct index *idx, const char *key, int64_t *value);
int index_state_set(struct index *idx, const char *key, int64_t value);

void index_entry_free(struct index_entry *e);

/* Files the rules hold back (rules.h), per direction: what `ferry held`
 * lists. dir is enum rules_dir. A held-up file is a local file not
 * uploaded; a held-down file is a server entry (seq) not downloaded. */
struct index_held {
        char *path;
        int dir;  /* RULES_UP or RULES_DOWN */
        int kind; /* enum file_kind */
        uint64_t size;
        int64_t mtime_ns;
        int64_t seq; /* down: the server entry's seq; up: 0 */
        char *reason;
};
/* Inserts or replaces the (dir, path) row. */
int index_held_put(struct index *idx, const struct index_held *h);
int index_held_remove(struct index *idx, int dir, const char *path);
/* dir -1 for both; prefix NULL for all, else the path or under prefix/;
 * by path. The row is valid during the call only. */
int index_held_foreach(struct index *idx, int dir, const char *prefix,
                       int (*cb)(const struct index_held *h, void *ud), void *ud);
int index_held_count(struct index *idx, int dir, int64_t *n);

/* Per-path overrides of the rules set by `ferry push` / `ferry pull`
 * (and answers to ask): the file then syncs both ways, whatever the rules
 * say. */
int index_override_add(struct index *idx, const char *path);
int index_override_remove(struct index *idx, const char *path);
/* 1 if path has an override, 0 if not, or a negative code. */
int index_override_has(struct index *idx, const char *path);

#endif
