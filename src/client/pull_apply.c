/* pull_apply: one server entry against the local folder (see
 * pull_apply.h).
 *
 * Every entry from the server is checked before it touches the disk: its
 * path passes path_validate() and each parent directory inside the folder
 * must be a real directory, never a symlink. Then the download rules decide
 * (pull_rules.h): an entry they hold back is recorded as held down and
 * nothing here is written, not even its parent directories. Local data that
 * the index does not know as synced (an edit not uploaded yet, a file
 * created meanwhile) is never overwritten: it is moved aside as a conflict
 * copy, or, against a delete, simply kept (the edit wins and is uploaded by
 * the next pass). Deleted files go to .ferry/trash/, not away. A file
 * entry whose chunk list came as a patch is made whole first, from the
 * index's list of the version the patch is against.
 */
#include "pull_apply.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "localfs.h"
#include "log.h"
#include "manifest.h"
#include "patch.h"
#include "path.h"
#include "pull_rules.h"
#include "rules.h"

enum local { LOCAL_ABSENT, LOCAL_CLEAN, LOCAL_DIRTY };

/* What one server entry says, parsed. */
struct rentry {
        const char *path;
        int64_t seq;
        int deleted;
        int kind;
        uint64_t size;
        int64_t mtime_ns;
        uint32_t mode;
        struct hash hash;
        const char *target;
        const json_t *chunks;
};

/* Notes a download that failed, for the round's report. */
void pull_apply_note_failed(struct sync_ctx *s, const char *path, int64_t seq, const char *reason)
{
        json_t *f;

        if (!s->dl_failed)
                return;
        f = json_pack("{s:s, s:I, s:s}", "path", path, "seq", (json_int_t)seq, "reason", reason);
        if (f && json_array_append_new(s->dl_failed, f) < 0)
                log_debug("out of memory noting the failed download of %s", path);
}

static int parse_entry(const json_t *j, struct rentry *e)
{
        const char *kind, *hex;

        memset(e, 0, sizeof(*e));
        e->path = json_string_value(json_object_get(j, "path"));
        if (!e->path || !json_is_integer(json_object_get(j, "seq")))
                return err_set(-EPROTO, "the server sent an entry without path or seq");
        e->seq = json_integer_value(json_object_get(j, "seq"));
        e->deleted = json_is_true(json_object_get(j, "deleted"));
        kind = json_string_value(json_object_get(j, "kind"));
        e->kind = kind ? kind_parse(kind) : -EINVAL;
        if (e->deleted)
                return 0;
        if (e->kind < 0)
                return err_set(-EPROTO, "the server sent %s with an unknown kind", e->path);
        e->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
        e->mtime_ns = json_integer_value(json_object_get(j, "mtime_ns"));
        e->mode = (uint32_t)json_integer_value(json_object_get(j, "mode"));
        e->target = json_string_value(json_object_get(j, "target"));
        e->chunks = json_object_get(j, "chunks");
        if (e->kind == KIND_FILE) {
                hex = json_string_value(json_object_get(j, "hash"));
                if (!hex || hash_from_hex(hex, &e->hash) < 0)
                        return err_set(-EPROTO, "the server sent %s without a valid hash", e->path);
        }
        if (e->kind == KIND_SYMLINK && (!e->target || !*e->target))
                return err_set(-EPROTO, "the server sent the link %s without a target", e->path);
        return 0;
}

/* Reads the link at full into a malloc'd string (NULL on failure). */
static char *read_link(const char *full)
{
        char *t = malloc(PATH_MAX_BYTES + 2);
        ssize_t n;

        if (!t)
                return NULL;
        n = readlink(full, t, PATH_MAX_BYTES + 1);
        if (n < 0 || n > PATH_MAX_BYTES) {
                free(t);
                return NULL;
        }
        t[n] = '\0';
        return t;
}

/* Is the local state at path what the index recorded as synced? */
static enum local local_state(struct sync_ctx *s, const char *path, const char *full,
                              const struct index_entry *ie, const struct stat *st, int have_st)
{
        struct hash h;
        char *t;
        int same;

        if (!have_st)
                return LOCAL_ABSENT;
        if (!ie || localfs_kind(st) != ie->kind)
                return LOCAL_DIRTY;
        if (localfs_stat_matches(ie, st) && ie->kind != KIND_SYMLINK &&
            (ie->kind != KIND_FILE || ie->mode == localfs_wire_mode(KIND_FILE, st->st_mode)))
                return LOCAL_CLEAN;
        if (ie->kind == KIND_SYMLINK) {
                t = read_link(full);
                same = t && ie->target && !strcmp(t, ie->target);
                free(t);
                return same ? LOCAL_CLEAN : LOCAL_DIRTY;
        }
        if (ie->kind == KIND_FILE && ie->mode == localfs_wire_mode(KIND_FILE, st->st_mode) &&
            localfs_hash_file(s->cfg->root, path, &h) == 0 && hash_equal(&h, &ie->hash))
                return LOCAL_CLEAN;
        return LOCAL_DIRTY;
}

/* Does the local copy already hold exactly what the server entry says? */
static int local_same(struct sync_ctx *s, const struct rentry *e, const char *full,
                      const struct index_entry *ie, enum local ls, const struct stat *st)
{
        struct hash h;
        char *t;
        int same;

        if (ls == LOCAL_ABSENT || localfs_kind(st) != e->kind)
                return 0;
        if (e->kind == KIND_DIR)
                return 1;
        if (e->kind == KIND_SYMLINK) {
                t = read_link(full);
                same = t && !strcmp(t, e->target);
                free(t);
                return same;
        }
        if ((uint64_t)st->st_size != e->size)
                return 0;
        if (ls == LOCAL_CLEAN && ie)
                return hash_equal(&ie->hash, &e->hash);
        return localfs_hash_file(s->cfg->root, e->path, &h) == 0 && hash_equal(&h, &e->hash);
}

static int record(struct sync_ctx *s, const struct rentry *e, const char *full,
                  const struct manifest *m)
{
        struct index_entry ie = {0};
        struct stat st;
        int r;

        if (lstat(full, &st) < 0)
                return err_set(-errno, "cannot stat %s: %s", full, strerror(errno));
        localfs_entry_stat(&ie, &st);
        ie.path = (char *)e->path;
        ie.seq = e->seq;
        ie.recorded_ns = fsutil_now_ns();
        if (e->kind == KIND_FILE)
                ie.hash = e->hash;
        if (e->kind == KIND_SYMLINK)
                ie.target = (char *)e->target;
        r = index_put(s->idx, &ie, m);
        /* here now: no longer held down (the row goes only now, so that a
         * failed download is tried again) */
        return r < 0 ? r : index_held_remove(s->idx, RULES_DOWN, e->path);
}

static int remember_moved(struct sync_ctx *s, const char *path, char *dest)
{
        if (s->nmoved == s->capmoved) {
                size_t ncap = s->capmoved ? s->capmoved * 2 : 16;
                char **a = realloc(s->moved_from, ncap * sizeof(*a));

                if (!a)
                        return -ENOMEM;
                s->moved_from = a;
                a = realloc(s->moved_to, ncap * sizeof(*a));
                if (!a)
                        return -ENOMEM;
                s->moved_to = a;
                s->capmoved = ncap;
        }
        s->moved_from[s->nmoved] = strdup(path);
        if (!s->moved_from[s->nmoved])
                return -ENOMEM;
        s->moved_to[s->nmoved++] = dest;
        return 0;
}

/* Removes what is at path so the server's version can take its place:
 * synced data goes to the trash, an empty directory away, anything else
 * aside as a conflict copy. */
static int clear_path(struct sync_ctx *s, const char *path, const char *full, const struct stat *st,
                      enum local ls)
{
        char *dest = NULL;
        int r;

        if (ls == LOCAL_CLEAN && S_ISDIR(st->st_mode) && rmdir(full) == 0)
                return 0;
        if (ls == LOCAL_CLEAN && !S_ISDIR(st->st_mode)) {
                r = localfs_trash(s->cfg->root, s->stamp, path, &dest);
                if (r == 0)
                        r = remember_moved(s, path, dest);
                else
                        free(dest);
                return r;
        }
        r = localfs_conflict_move(s->cfg->root, path, s->cfg->device_name, time(NULL), NULL);
        if (r == 0) {
                s->stats.conflicts++;
                s->again = 1;
        }
        return r;
}

static int apply_delete(struct sync_ctx *s, const struct rentry *e, const char *full,
                        const struct stat *st, enum local ls)
{
        char *dest = NULL;
        int r;

        if (ls == LOCAL_ABSENT)
                return index_delete(s->idx, e->path);
        if (ls == LOCAL_DIRTY) {
                log_warn("%s was deleted on another device but changed here; keeping the local "
                         "version",
                         e->path);
                s->again = 1;
                return index_delete(s->idx, e->path);
        }
        if (S_ISDIR(st->st_mode)) {
                if (rmdir(full) < 0) {
                        log_warn("%s was deleted on another device but still holds files here; "
                                 "keeping it",
                                 e->path);
                        s->again = 1;
                } else {
                        s->stats.deleted++;
                }
                return index_delete(s->idx, e->path);
        }
        r = localfs_trash(s->cfg->root, s->stamp, e->path, &dest);
        if (r < 0)
                return r;
        s->stats.deleted++;
        /* the index entry goes at the end of the page: until then a download
         * may take chunks from the trashed copy (a rename elsewhere) */
        return remember_moved(s, e->path, dest);
}

static int write_symlink(const char *full, const char *target)
{
        char rnd[17], *tmp = NULL, *slash;
        int r;

        r = fsutil_random_hex(rnd, 8);
        if (r < 0)
                return r;
        slash = strrchr(full, '/');
        if (asprintf(&tmp, "%.*s/%s%s", (int)(slash - full), full, PATH_TEMP_PREFIX, rnd) < 0)
                return -ENOMEM;
        if (symlink(target, tmp) < 0) {
                r = err_set(-errno, "cannot create the link %s: %s", full, strerror(errno));
                goto out;
        }
        if (rename(tmp, full) < 0) {
                r = err_set(-errno, "cannot create the link %s: %s", full, strerror(errno));
                unlink(tmp);
                goto out;
        }
        r = fsutil_fsync_parent(full);
out:
        free(tmp);
        return r;
}

/* Metadata-only update: the content is already here. */
static void apply_meta(const struct rentry *e, const char *full, const struct stat *st)
{
        struct timespec ts[2];

        if (e->kind != KIND_FILE)
                return;
        if ((st->st_mode & 0777) != (e->mode & 0777) && (e->mode & 0777))
                chmod(full, e->mode & 0777);
        ts[0].tv_sec = 0;
        ts[0].tv_nsec = UTIME_OMIT;
        ts[1].tv_sec = (time_t)(e->mtime_ns / 1000000000);
        ts[1].tv_nsec = (long)(e->mtime_ns % 1000000000);
        if (ts[1].tv_nsec >= 0)
                utimensat(AT_FDCWD, full, ts, AT_SYMLINK_NOFOLLOW);
}

static int queue_job(const struct rentry *e, const struct stat *st, int have_st,
                     struct dl_job **jobs, size_t *njobs, size_t *capjobs)
{
        struct dl_job *j;
        int r;

        if (*njobs == *capjobs) {
                size_t ncap = *capjobs ? *capjobs * 2 : 64;
                struct dl_job *p = realloc(*jobs, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                *jobs = p;
                *capjobs = ncap;
        }
        j = &(*jobs)[*njobs];
        memset(j, 0, sizeof(*j));
        j->path = strdup(e->path);
        if (!j->path)
                return -ENOMEM;
        (*njobs)++;
        if (e->chunks && !json_is_null(e->chunks)) {
                r = manifest_from_json(e->chunks, &j->m);
                if (r < 0)
                        return r;
        }
        if (j->m.size != e->size)
                return err_set(-EPROTO, "the server's chunks of %s do not add up to its size",
                               e->path);
        j->m.file_hash = e->hash;
        j->mode = e->mode;
        j->mtime_ns = e->mtime_ns;
        j->seq = e->seq;
        j->have_prev = have_st;
        if (have_st)
                j->prev = *st;
        return 0;
}

/* The local file holds this device's own version e (whose chunk list the
 * server left out): 1 when it was recorded as synced, with a manifest cut
 * from the file itself; 0 when the file is something else. */
static int adopt_own(struct sync_ctx *s, const struct rentry *e, const char *full)
{
        struct manifest m = MANIFEST_INIT;
        struct stat st;
        int fd, r;

        if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->size)
                return 0;
        fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return 0;
        r = manifest_from_fd(fd, &m, NULL, NULL);
        close(fd);
        if (r < 0 || m.size != e->size || !hash_equal(&m.file_hash, &e->hash)) {
                manifest_free(&m);
                return 0;
        }
        apply_meta(e, full, &st);
        r = record(s, e, full, &m);
        manifest_free(&m);
        return r < 0 ? r : 1;
}

int pull_apply_get_file(struct sync_ctx *s, const char *path, json_t **out)
{
        char *esc = remote_escape(path), *q = NULL;
        int r;

        *out = NULL;
        if (!esc || asprintf(&q, "/api/v1/file?path=%s", esc) < 0) {
                free(esc);
                return -ENOMEM;
        }
        r = remote_get_json(s->remote, q, out);
        free(esc);
        free(q);
        return r;
}

/* An entry of this device's own making without its chunk list
 * ("chunks_omitted"), that the index does not have at this seq (a crash
 * between commit and index update, or a lost index): adopt the local file
 * when it is that version, else fetch the whole entry and apply that (the
 * download rules then decide, as for any entry). */
static int apply_omitted(struct sync_ctx *s, const struct rentry *e, struct dl_job **jobs,
                         size_t *njobs, size_t *capjobs)
{
        json_t *resp = NULL, *ch;
        char *full = NULL;
        int r;

        if (localfs_safe_parents(s->cfg->root, e->path, 0) == 0) {
                full = path_join(s->cfg->root, e->path);
                r = full ? adopt_own(s, e, full) : -ENOMEM;
                free(full);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        err_clear();
        r = pull_apply_get_file(s, e->path, &resp);
        if (r < 0)
                goto out;
        ch = json_object_get(resp, "chunks");
        if (json_is_true(json_object_get(resp, "chunks_omitted")) ||
            (!json_is_true(json_object_get(resp, "deleted")) && !json_is_array(ch))) {
                r = err_set(-EPROTO, "the server's entry for %s has no chunk list", e->path);
                goto out;
        }
        r = pull_apply_entry(s, resp, jobs, njobs, capjobs);
out:
        json_decref(resp);
        return r;
}

/* The entry with "chunks" rebuilt from its "patch" against the index's list
 * of the path, when the index holds exactly the version patch_base: a new
 * reference, or NULL (the patch does not fit what is held here). */
static json_t *rebuild_patched(struct sync_ctx *s, const json_t *entry, const struct rentry *e,
                               const struct index_entry *ie)
{
        struct manifest base = MANIFEST_INIT, m = MANIFEST_INIT;
        json_t *pb = json_object_get(entry, "patch_base"), *out = NULL, *ch;
        struct patch_edit *ed = NULL;
        size_t ned = 0;

        if (!ie || !json_is_integer(pb) || ie->seq != json_integer_value(pb) ||
            ie->kind != KIND_FILE || index_get_manifest(s->idx, e->path, &base) < 0 ||
            base.size != ie->size || base.n == 0 ||
            patch_from_json(json_object_get(entry, "patch"), &ed, &ned) < 0 ||
            patch_apply(&base, ed, ned, &m) < 0 || m.size != e->size)
                goto out;
        ch = manifest_to_json(&m);
        out = json_copy((json_t *)entry); /* shallow: the values are shared */
        if (!ch || !out || json_object_set_new(out, "chunks", ch) < 0) {
                json_decref(out);
                out = NULL;
                goto out;
        }
        json_object_del(out, "patch");
        json_object_del(out, "patch_base");
out:
        patch_free(ed, ned);
        manifest_free(&base);
        manifest_free(&m);
        return out;
}

/* An entry whose chunk list came as a patch (docs/api.md, GET
 * /api/v1/changes with patch=1): rebuilt from the index when it holds the
 * version the patch is against, else fetched whole from the server; then
 * applied as any entry. */
static int apply_patched(struct sync_ctx *s, const json_t *entry, const struct rentry *e,
                         const struct index_entry *ie, struct dl_job **jobs, size_t *njobs,
                         size_t *capjobs)
{
        json_t *full = rebuild_patched(s, entry, e, ie), *resp = NULL;
        int r;

        if (full) {
                r = pull_apply_entry(s, full, jobs, njobs, capjobs);
                json_decref(full);
                return r;
        }
        log_debug("%s: the patch does not fit the version held here; fetching the whole entry",
                  e->path);
        err_clear();
        r = pull_apply_get_file(s, e->path, &resp);
        if (r < 0)
                goto out;
        if (json_object_get(resp, "patch") || (!json_is_true(json_object_get(resp, "deleted")) &&
                                               json_is_string(json_object_get(resp, "hash")) &&
                                               !json_is_array(json_object_get(resp, "chunks")))) {
                r = err_set(-EPROTO, "the server's entry for %s has no chunk list", e->path);
                goto out;
        }
        r = pull_apply_entry(s, resp, jobs, njobs, capjobs);
out:
        json_decref(resp);
        return r;
}

int pull_apply_entry(struct sync_ctx *s, const json_t *entry, struct dl_job **jobs, size_t *njobs,
                     size_t *capjobs)
{
        struct index_entry ie = {0};
        struct index_held held = {0};
        struct rentry e;
        char *full = NULL;
        struct stat st;
        int have_ie = 0, have_st, r;
        enum local ls;

        r = parse_entry(entry, &e);
        if (r < 0)
                return r;
        if (path_validate(e.path) < 0) {
                log_warn("ignoring an entry from the server with an invalid path: %s",
                         err_msg(-EINVAL));
                s->stats.refused++;
                return 0;
        }
        if (pull_rules_is_backup(e.path))
                return 0; /* backup sets are never synced */
        r = index_get(s->idx, e.path, &ie);
        if (r < 0 && r != -ENOENT)
                return r;
        have_ie = r == 0;
        if (have_ie && ie.seq == e.seq) {
                r = 0;
                goto out;
        }
        if (!e.deleted && e.kind == KIND_FILE && json_object_get(entry, "patch")) {
                r = apply_patched(s, entry, &e, have_ie ? &ie : NULL, jobs, njobs, capjobs);
                goto out;
        }
        if (!e.deleted && e.kind == KIND_FILE &&
            json_is_true(json_object_get(entry, "chunks_omitted"))) {
                r = apply_omitted(s, &e, jobs, njobs, capjobs);
                goto out;
        }
        /* before anything is written here, not even a parent folder */
        held.path = (char *)e.path;
        held.kind = e.kind;
        held.size = e.size;
        held.mtime_ns = e.mtime_ns;
        held.seq = e.seq;
        r = pull_rules_fate(s, &held, e.deleted, have_ie);
        if (r != 0) {
                r = r < 0 ? r : 0;
                goto out;
        }
        r = localfs_safe_parents(s->cfg->root, e.path, !e.deleted);
        if (r == -ENOENT && e.deleted) {
                r = index_delete(s->idx, e.path); /* nothing here to delete */
                goto out;
        }
        if (r < 0) {
                char why[600];

                snprintf(why, sizeof(why), "not applied: %s", err_msg(r));
                log_warn("not applying the server's change to %s: %s", e.path, err_msg(r));
                pull_apply_note_failed(s, e.path, e.seq, why);
                s->stats.refused++;
                r = 0;
                goto out;
        }
        full = path_join(s->cfg->root, e.path);
        if (!full) {
                r = -ENOMEM;
                goto out;
        }
        have_st = lstat(full, &st) == 0;
        ls = local_state(s, e.path, full, have_ie ? &ie : NULL, &st, have_st);
        if (e.deleted) {
                r = apply_delete(s, &e, full, &st, ls);
                goto out;
        }
        if (local_same(s, &e, full, have_ie ? &ie : NULL, ls, &st)) {
                struct manifest m = MANIFEST_INIT;

                apply_meta(&e, full, &st);
                if (e.kind == KIND_FILE && e.chunks) {
                        r = manifest_from_json(e.chunks, &m);
                        if (r < 0)
                                goto out;
                }
                r = record(s, &e, full, e.kind == KIND_FILE ? &m : NULL);
                manifest_free(&m);
                goto out;
        }
        if (ls != LOCAL_ABSENT &&
            !(ls == LOCAL_CLEAN && e.kind == KIND_FILE && S_ISREG(st.st_mode))) {
                r = clear_path(s, e.path, full, &st, ls);
                if (r < 0)
                        goto out;
                have_st = 0;
        }
        if (e.kind == KIND_FILE) {
                r = queue_job(&e, &st, have_st, jobs, njobs, capjobs);
                goto out;
        }
        if (e.kind == KIND_DIR) {
                if (mkdir(full, 0755) < 0 && errno != EEXIST) {
                        r = err_set(-errno, "cannot create directory %s: %s", full,
                                    strerror(errno));
                        goto out;
                }
        } else {
                r = write_symlink(full, e.target);
                if (r < 0)
                        goto out;
        }
        s->stats.downloaded++;
        r = record(s, &e, full, NULL);
out:
        if (have_ie)
                index_entry_free(&ie);
        free(full);
        return r;
}
