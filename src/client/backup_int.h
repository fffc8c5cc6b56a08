/* backup_int: what the parts of the backup module share (backup.h): a
 * session on one set (its lock, its index, the ignore patterns and the
 * scans of its sources) and the report's bookkeeping. Private to
 * backup.c, backup_scan.c and backup_upload.c. */
#ifndef FERRY_BACKUP_INT_H
#define FERRY_BACKUP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "backup.h"
#include "config.h"
#include "index.h"
#include "scan.h"

struct ignore;

/* Index state keys of the set's index. */
#define BK_STATE_LAST_NS "backup_last_ns"
#define BK_STATE_LAST_SEQ "backup_last_seq"

/* One source of the set, as scanned. */
struct bk_source {
        const char *abs;  /* the set's string */
        char *parent;     /* the scan's root: the source's directory */
        const char *base; /* inside abs: the source's name, the top folder in the set */
        int selected;     /* scanned this time */
        int missing;      /* not there: left alone */
        struct scan_result sr;
};

struct bk_session {
        const struct config *cfg;
        const struct backup_set *set;
        int lock_fd;
        struct index *idx;
        struct ignore *ig;
        struct bk_source *src;
        size_t nsrc;
};

/* root/.ferry/backup-NAME<suffix>, malloc'd (NULL: out of memory). */
char *bk_state_file(const struct config *cfg, const char *name, const char *suffix);

/* Takes the set's lock (without waiting: -EBUSY), opens its index and the
 * ignore patterns. s is zeroed here; bk_close it whatever this returns. */
int bk_open(const struct config *cfg, const struct backup_set *set, struct bk_session *s);
void bk_close(struct bk_session *s);

/* Scans the selected sources (only[0..nonly), absolute; nonly 0: all) into
 * s->src[].sr, and reports what they found in rep (items, counts, bytes,
 * missing sources, the last backup). */
int bk_scan(struct bk_session *s, const char *const *only, size_t nonly, struct backup_report *rep);

/* Appends what c is (for a check: found; for a backup: committed). */
int bk_report_add(struct backup_report *rep, const struct local_change *c);

/* Empties rep's items and counts (not the missing sources, nor the last
 * backup). */
void bk_report_reset(struct backup_report *rep);

/* Uploads and commits what the scans found (backup_upload.c). */
int bk_upload(struct bk_session *s, struct backup_report *rep);

#endif
