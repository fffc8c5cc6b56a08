/* backup: `ferry backup`, one-shot uploads of chosen local files and
 * folders into a named backup set of the user's space (docs/cli.md
 * "backup"), and the check of what changed since the last backup.
 *
 * A set NAME lives on the server under RULES_BACKUP_PREFIX/NAME/, which no
 * sync or watch ever downloads or uploads: a source PATH (a local file or
 * folder anywhere) goes to .ferry-backup/NAME/<basename of PATH>/... Each
 * set has, in the linked folder's .ferry/ (which gives the server and the
 * token):
 *   backup-NAME.json  the set's sources (absolute paths), in the order added
 *   backup-NAME.db    its own index (index.h), keyed by the path inside the
 *                     set ("<basename>/<rel>"), so that only new or changed
 *                     files are read and sent, and local deletes since the
 *                     last backup become deletes in the set
 *   backup-NAME.lock  held (flock) while a backup or a check runs
 *
 * A backup scans each source with the scan module (scan_paths_opts on the
 * source's parent, so that a source that is a single file works too, with
 * the built-in ignore defaults and every folder named .ferry left out: a
 * linked folder's state never goes into a backup), uploads the chunks the
 * server lacks (transfer_upload; chunks deduplicate against everything the
 * account holds) and commits the changes (POST /api/v1/commit) in groups,
 * writing the set's index from the server's answers only. A backup is the
 * device's word about its own files: a change another device made to the
 * set meanwhile (a commit conflict) is overwritten, not kept as a copy.
 *
 * The modules: backup.c (sets, sources, the lock, names, the report,
 * notify-send), backup_scan.c (the scans and what they found),
 * backup_upload.c (uploads and commits).
 */
#ifndef FERRY_BACKUP_H
#define FERRY_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Set names: 1 to 64 bytes, one valid path component, not starting with
 * '.' (so that the device name, the default, usually is one). */
#define BACKUP_NAME_MAX 64
/* Changes are uploaded and committed in groups of about this many bytes
 * of files, at most PUSH_COMMIT_BATCH changes, so that a long first backup
 * lands group by group. */
#define BACKUP_GROUP_BYTES (64ull << 20)

struct backup_set {
        char *name;
        char **sources; /* absolute paths, in the order added */
        size_t nsources;
        int exists; /* backup-NAME.json was there */
};

/* 0, or -EINVAL with a message saying what is wrong with name. */
int backup_name_check(const char *name);

/* Loads .ferry/backup-NAME.json into set (zeroed by the caller). A set
 * that does not exist yet loads empty (set->exists 0). */
int backup_set_load(const struct config *cfg, const char *name, struct backup_set *set);
/* Writes it atomically. */
int backup_set_save(const struct config *cfg, const struct backup_set *set);
void backup_set_free(struct backup_set *set);

/* Resolves path (realpath: a link given as PATH is followed once) and adds
 * it to set's sources unless it is there; *abs (malloc'd, may be NULL) gets
 * the absolute path. -EEXIST when another source of the set has the same
 * basename (both would land in the same folder of the set); -EINVAL for a
 * path that cannot be a source (the root, a name Ferry reserves, a path
 * inside a .ferry folder), -ENOENT when it does not exist. */
int backup_set_add(struct backup_set *set, const char *path, char **abs);

/* The sets that have a backup-NAME.json in this linked folder, sorted;
 * names[0..n) malloc'd (free each and the array). */
int backup_sets_local(const struct config *cfg, char ***names, size_t *n);

/* The time of the set's last completed backup (ns since the epoch) into
 * *last_ns, 0 when it never completed. Reads the set's index without its
 * lock (a running backup does not hold this up). */
int backup_last(const struct config *cfg, const char *name, int64_t *last_ns);

/* What a check found or a backup moved, per path of the set. */
enum backup_what { BACKUP_NEW = 0, BACKUP_MODIFIED, BACKUP_DELETED, BACKUP_RENAMED, BACKUP_NWHAT };

struct backup_item {
        int what;   /* enum backup_what */
        int kind;   /* enum file_kind */
        char *path; /* in the set: "<basename>/<rel>" */
        char *from; /* renames: the old path */
        uint64_t size;
};

struct backup_report {
        struct backup_item *items; /* in scan order: puts and renames, then deletes */
        size_t n, cap;
        int64_t count[BACKUP_NWHAT];
        uint64_t bytes; /* of the new and modified files */
        char **missing; /* sources that are not there (left alone) */
        size_t nmissing;
        int64_t last_ns;  /* the last completed backup, 0 if never */
        int64_t last_seq; /* the space's seq after it */
        int64_t failed;   /* backup_run: changes not committed (logged) */
        int64_t bytes_up; /* backup_run: bytes sent to the server */
};

void backup_report_free(struct backup_report *rep);

/* "2 new, 1 modified, 0 deleted, 0 renamed, 12.0 KiB" into out. */
void backup_report_counts(const struct backup_report *rep, char *out, size_t len);

/* What the scans of the set's sources find against its index, without
 * sending anything (the index only gets stat refreshes of files found
 * unchanged). -EBUSY when a backup of the set runs. */
int backup_check(const struct config *cfg, const struct backup_set *set, struct backup_report *rep);

struct backup_options {
        /* Back up only these sources (absolute paths of the set); n 0: all */
        const char *const *only;
        size_t nonly;
        int allow_mass_delete; /* the mass-delete guard of sync, for the set */
};

/* Backs the set up: scans, uploads, commits. rep gets what moved (items
 * committed; failed counts the rest). Returns 0 when everything selected
 * was backed up; -ENOENT when a source was missing (the others were backed
 * up), -ECANCELED for the mass-delete guard (nothing sent), -EBUSY when a
 * backup or a check of the set runs, another negative code on failure. */
int backup_run(const struct config *cfg, const struct backup_set *set,
               const struct backup_options *o, struct backup_report *rep);

/* Runs `notify-send SUMMARY BODY` when notify-send is on PATH (waits for
 * it at most a few seconds). 1 when it ran and exited 0, 0 when there is no
 * notify-send, a negative code when it failed. */
int backup_notify(const char *summary, const char *body);

/* An interval: seconds, or a number with s, m, h or d ("90", "90s", "15m",
 * "2h", "1d"), from 1 second to 366 days. -EINVAL with a message. */
int backup_parse_interval(const char *s, int64_t *secs);

#endif
