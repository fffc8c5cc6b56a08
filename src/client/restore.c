/* restore: the space as of a point, restored in place through the server
 * or written into a local directory (see restore.h).
 *
 * Both walk GET /api/v1/snapshot page by page (1,000 entries, each with
 * its chunk list), so memory stays bounded by a page whatever the size of
 * the space. The first page resolves the point (a time becomes the seq of
 * the newest commit at or before it); every later request, and every
 * other PATH, asks for that seq, so all the pages describe one moment.
 *
 * In place, a path is restored only when its content then differs from its
 * content now (kind, hash, mode, link target), which the current listing
 * (GET /api/v1/files) tells without a request per path.
 */
#include "restore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "localfs.h"
#include "log.h"
#include "path.h"
#include "remote.h"
#include "rules.h"
#include "transfer.h"

#define PAGE_LIMIT 1000

int restore_parse_point(const char *s, int64_t *seq, int64_t *time)
{
        static const char *const formats[] = {"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                                              "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"};
        const char *p;
        char *end;

        *seq = *time = -1;
        for (p = s; *p >= '0' && *p <= '9'; p++)
                ;
        if (p != s && !*p) {
                long long v;

                errno = 0;
                v = strtoll(s, &end, 10);
                if (errno || v < 1)
                        return err_set(-EINVAL, "--at wants a seq from 1, not '%s'", s);
                *seq = v;
                return 0;
        }
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                struct tm tm, check;
                time_t t;

                memset(&tm, 0, sizeof(tm));
                end = strptime(s, formats[i], &tm);
                if (!end || *end)
                        continue;
                tm.tm_isdst = -1;
                check = tm;
                t = mktime(&tm);
                /* mktime normalises 2026-02-30 into March: not a date */
                if (t == (time_t)-1 || tm.tm_mday != check.tm_mday || tm.tm_mon != check.tm_mon)
                        break;
                *time = (int64_t)t;
                return 0;
        }
        return err_set(-EINVAL,
                       "--at wants a seq or a local time YYYY-MM-DD[ HH:MM[:SS]], not '%s'", s);
}

/* Whether path is under the backup sets' folder. */
static int in_backups(const char *path)
{
        size_t n = strlen(RULES_BACKUP_PREFIX);

        return strncmp(path, RULES_BACKUP_PREFIX, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The walk of one PATH's snapshot, and what the two ways keep. */
struct walk {
        const struct restore_options *o;
        struct restore_stats *st;
        struct remote *rem;
        int resolved;       /* st->seq is the point */
        const char *prefix; /* the PATH walked, NULL: everything */
        /* in place: the live entries now (sorted by path), and which of
         * them the snapshot has */
        json_t *cur;
        char *matched;
        /* into */
        char *dir;
        struct transfer t;
        struct dl_job *jobs;
        size_t njobs, capjobs;
};

/* GETs the pages of the snapshot of w->prefix, calling page(w, entries). */
static int walk_pages(struct walk *w, int (*page)(struct walk *w, json_t *entries))
{
        char *pfx = NULL, *after = NULL;
        struct buf q = BUF_INIT;
        json_t *resp = NULL;
        int r = 0, more = 1;

        if (w->prefix && !(pfx = remote_escape(w->prefix)))
                return -ENOMEM;
        while (more && r == 0) {
                json_t *ents;
                size_t n;

                buf_reset(&q);
                if (w->resolved || w->o->seq > 0)
                        r = buf_printf(&q, "/api/v1/snapshot?at=%lld&limit=%d",
                                       (long long)(w->resolved ? w->st->seq : w->o->seq),
                                       PAGE_LIMIT);
                else if (w->o->time >= 0)
                        r = buf_printf(&q, "/api/v1/snapshot?time=%lld&limit=%d",
                                       (long long)w->o->time, PAGE_LIMIT);
                else
                        r = buf_printf(&q, "/api/v1/snapshot?limit=%d", PAGE_LIMIT);
                if (r == 0 && pfx)
                        r = buf_printf(&q, "&prefix=%s", pfx);
                if (r == 0 && after)
                        r = buf_printf(&q, "&after=%s", after);
                json_decref(resp);
                resp = NULL;
                if (r == 0)
                        r = remote_get_json(w->rem, (const char *)q.data, &resp);
                if (r < 0)
                        break;
                ents = json_object_get(resp, "entries");
                if (!json_is_array(ents) || !json_is_integer(json_object_get(resp, "seq"))) {
                        r = err_set(-EPROTO, "the server's snapshot answer has no entries");
                        break;
                }
                w->st->seq = json_integer_value(json_object_get(resp, "seq"));
                w->resolved = 1;
                more = json_is_true(json_object_get(resp, "more"));
                n = json_array_size(ents);
                if (n == 0)
                        break;
                r = page(w, ents);
                free(after);
                after = remote_escape(
                    json_string_value(json_object_get(json_array_get(ents, n - 1), "path")) ?: "");
                if (!after && r == 0)
                        r = -ENOMEM;
        }
        json_decref(resp);
        buf_free(&q);
        free(after);
        free(pfx);
        return r;
}

/* --- in place --- */

static int cmp_entry_path(const void *key, const void *elt)
{
        const json_t *e = *(json_t *const *)elt;

        return strcmp(key, json_string_value(json_object_get(e, "path")) ?: "");
}

/* The index of path in w->cur, or -1. */
static ssize_t cur_find(struct walk *w, const char *path)
{
        size_t n = json_array_size(w->cur), lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                json_t *e = json_array_get(w->cur, mid);
                int c = cmp_entry_path(path, &e);

                if (c == 0)
                        return (ssize_t)mid;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return -1;
}

static int same_field(const json_t *a, const json_t *b, const char *key)
{
        json_t *x = json_object_get(a, key), *y = json_object_get(b, key);

        if (!x || json_is_null(x))
                return !y || json_is_null(y);
        return y && json_equal(x, y);
}

/* Same content: what the server's restore calls unchanged. */
static int same_content(const json_t *then, const json_t *now)
{
        return same_field(then, now, "kind") && same_field(then, now, "hash") &&
               same_field(then, now, "size") && same_field(then, now, "mode") &&
               same_field(then, now, "target");
}

static int restore_one(struct walk *w, const char *path, int64_t seq)
{
        json_t *body = json_pack("{s:s, s:I}", "path", path, "seq", (json_int_t)seq), *resp = NULL;
        int r;

        if (!body)
                return -ENOMEM;
        r = remote_post_json(w->rem, "/api/v1/restore", body, &resp);
        json_decref(body);
        if (r == -ECONNREFUSED || r == -ENOMEM || r == -EACCES) {
                json_decref(resp);
                return r;
        }
        if (r < 0) {
                log_error("cannot restore %s from version %lld: %s", path, (long long)seq,
                          err_msg(r));
                err_clear();
                w->st->failed++;
                return 0;
        }
        if (json_is_true(json_object_get(resp, "unchanged"))) {
                w->st->unchanged++;
        } else {
                printf("restored %s from version %lld (now version %lld)\n", path, (long long)seq,
                       (long long)json_integer_value(
                           json_object_get(json_object_get(resp, "entry"), "seq")));
                w->st->restored++;
        }
        json_decref(resp);
        return 0;
}

static int inplace_page(struct walk *w, json_t *entries)
{
        json_t *e;
        size_t i;
        int r = 0;

        json_array_foreach(entries, i, e)
        {
                const char *path = json_string_value(json_object_get(e, "path"));
                ssize_t k;

                if (!path)
                        return err_set(-EPROTO, "the server sent an entry without a path");
                if (!w->prefix && in_backups(path))
                        continue;
                w->st->listed++;
                k = cur_find(w, path);
                if (k >= 0)
                        w->matched[k] = 1;
                if (k >= 0 && same_content(e, json_array_get(w->cur, (size_t)k))) {
                        w->st->unchanged++;
                        continue;
                }
                r = restore_one(w, path, json_integer_value(json_object_get(e, "seq")));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int walk_in_place(struct walk *w)
{
        struct buf q = BUF_INIT;
        json_t *resp = NULL;
        char *esc = NULL;
        size_t n;
        int r;

        r = buf_append_str(&q, "/api/v1/files");
        if (r == 0 && w->prefix) {
                esc = remote_escape(w->prefix);
                r = esc ? buf_printf(&q, "?prefix=%s", esc) : -ENOMEM;
        }
        if (r == 0)
                r = remote_get_json(w->rem, (const char *)q.data, &resp);
        if (r < 0)
                goto out;
        w->cur = json_incref(json_object_get(resp, "files"));
        if (!json_is_array(w->cur)) {
                r = err_set(-EPROTO, "the server's listing has no files");
                goto out;
        }
        n = json_array_size(w->cur);
        w->matched = calloc(n ? n : 1, 1);
        if (!w->matched) {
                r = -ENOMEM;
                goto out;
        }
        r = walk_pages(w, inplace_page);
        for (size_t i = 0; i < n && r == 0; i++) {
                const char *p =
                    json_string_value(json_object_get(json_array_get(w->cur, i), "path"));

                if (!w->matched[i] && p && (w->prefix || !in_backups(p)))
                        w->st->newer++;
        }
out:
        json_decref(w->cur);
        w->cur = NULL;
        free(w->matched);
        w->matched = NULL;
        json_decref(resp);
        free(esc);
        buf_free(&q);
        return r;
}

/* --- into a directory --- */

/* The path under DIR of a snapshot path: PATH's basename, then the rest. */
static char *local_rel(const struct walk *w, const char *path)
{
        struct buf b = BUF_INIT;
        int r;

        if (!w->prefix)
                return strdup(path);
        r = buf_printf(&b, "%s%s", path_basename(w->prefix), path + strlen(w->prefix));
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        return (char *)buf_steal(&b, NULL);
}

static int kept(struct walk *w, const char *rel, const char *what)
{
        log_warn("%s/%s exists %s; not overwritten", w->dir, rel, what);
        w->st->kept++;
        return 0;
}

static int before_rename(void *ud, struct dl_job *j)
{
        struct walk *w = ud;
        char *full = path_join(w->dir, j->path);
        struct stat st;
        int r = 0;

        if (!full)
                return -ENOMEM;
        if (lstat(full, &st) == 0)
                r = err_set(-EEXIST, "%s appeared while it was being restored; not overwritten",
                            full);
        free(full);
        return r;
}

static int download_done(void *ud, struct dl_job *j, const struct stat *st)
{
        struct walk *w = ud;

        (void)j;
        w->st->files++;
        w->st->bytes += (uint64_t)st->st_size;
        return 0;
}

static int flush_jobs(struct walk *w)
{
        struct dl_hooks h = {.before_rename = before_rename, .done = download_done, .ud = w};
        int r = 0;

        if (w->njobs)
                r = transfer_download(&w->t, w->jobs, w->njobs, &h);
        for (size_t i = 0; i < w->njobs; i++)
                dl_job_free(&w->jobs[i]);
        w->njobs = 0;
        return r;
}

/* A file of the snapshot at rel (absent locally): queued for download. */
static int queue_file(struct walk *w, const json_t *e, char *rel)
{
        struct dl_job *j;
        int r;

        if (w->njobs == w->capjobs) {
                size_t ncap = w->capjobs ? w->capjobs * 2 : 64;
                struct dl_job *p = realloc(w->jobs, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                w->jobs = p;
                w->capjobs = ncap;
        }
        j = &w->jobs[w->njobs];
        memset(j, 0, sizeof(*j));
        r = manifest_from_json(json_object_get(e, "chunks"), &j->m);
        if (r == 0 &&
            hash_from_hex(json_string_value(json_object_get(e, "hash")) ?: "", &j->m.file_hash) < 0)
                r = err_set(-EPROTO, "the server sent %s without a valid hash", rel);
        if (r == 0 && j->m.size != (uint64_t)json_integer_value(json_object_get(e, "size")))
                r = err_set(-EPROTO, "the server's chunk list of %s does not add up", rel);
        if (r < 0) {
                manifest_free(&j->m);
                return r;
        }
        j->path = rel;
        j->mode = (json_integer_value(json_object_get(e, "mode")) & 0111) ? 0755 : 0644;
        j->mtime_ns = json_integer_value(json_object_get(e, "mtime_ns"));
        j->seq = json_integer_value(json_object_get(e, "seq"));
        w->njobs++;
        return 0;
}

/* Writes one entry under DIR, or queues it; takes rel. */
static int into_one(struct walk *w, const json_t *e, char *rel)
{
        const char *kind = json_string_value(json_object_get(e, "kind")) ?: "";
        const char *target = json_string_value(json_object_get(e, "target"));
        char *full = NULL, link[PATH_MAX_BYTES + 2];
        struct stat st;
        struct hash h, want;
        ssize_t n;
        int r;

        r = localfs_safe_parents(w->dir, rel, 1);
        if (r < 0) {
                log_error("cannot restore %s: %s", rel, err_msg(r));
                err_clear();
                w->st->failed++;
                r = 0;
                goto out;
        }
        full = path_join(w->dir, rel);
        if (!full) {
                r = -ENOMEM;
                goto out;
        }
        if (lstat(full, &st) < 0) {
                if (errno != ENOENT) {
                        r = err_set(-errno, "cannot stat %s: %s", full, strerror(errno));
                } else if (!strcmp(kind, "dir")) {
                        if (mkdir(full, 0755) < 0)
                                r = err_set(-errno, "cannot make %s: %s", full, strerror(errno));
                        else
                                w->st->dirs++;
                } else if (!strcmp(kind, "symlink")) {
                        if (!target || symlink(target, full) < 0)
                                r = err_set(target ? -errno : -EPROTO, "cannot make the link %s",
                                            full);
                        else
                                w->st->links++;
                } else {
                        r = queue_file(w, e, rel);
                        if (r == 0)
                                rel = NULL; /* the job has it */
                }
                goto out;
        }
        if (!strcmp(kind, "dir")) {
                if (S_ISDIR(st.st_mode))
                        w->st->unchanged++;
                else
                        r = kept(w, rel, "and is not a directory");
        } else if (!strcmp(kind, "symlink")) {
                n = S_ISLNK(st.st_mode) ? readlink(full, link, sizeof(link) - 1) : -1;
                if (n >= 0)
                        link[n] = '\0';
                if (n >= 0 && target && !strcmp(link, target))
                        w->st->unchanged++;
                else
                        r = kept(w, rel, "and is not that link");
        } else if (S_ISREG(st.st_mode) &&
                   hash_from_hex(json_string_value(json_object_get(e, "hash")) ?: "", &want) == 0 &&
                   localfs_hash_file(w->dir, rel, &h) == 0 && hash_equal(&h, &want)) {
                w->st->unchanged++;
        } else {
                err_clear();
                r = kept(w, rel, "with other content");
        }
out:
        free(full);
        free(rel);
        return r;
}

static int into_page(struct walk *w, json_t *entries)
{
        json_t *e;
        size_t i;
        int r = 0;

        json_array_foreach(entries, i, e)
        {
                const char *path = json_string_value(json_object_get(e, "path"));
                char *rel;

                if (!path || path_validate(path) < 0)
                        return err_set(-EPROTO, "the server sent an entry with an invalid path");
                if (!w->prefix && in_backups(path))
                        continue;
                w->st->listed++;
                rel = local_rel(w, path);
                if (!rel)
                        return -ENOMEM;
                if (path_validate(rel) < 0) {
                        log_error("cannot restore %s: %s", path, err_msg(-EINVAL));
                        err_clear();
                        free(rel);
                        w->st->failed++;
                        continue;
                }
                r = into_one(w, e, rel);
                if (r < 0)
                        return r;
        }
        return flush_jobs(w);
}

/* Drops the paths that are under another one given (docs/a under docs). */
static int covered(const struct restore_options *o, size_t i)
{
        for (size_t k = 0; k < o->npaths; k++) {
                size_t n = strlen(o->paths[k]);

                if (k == i || strncmp(o->paths[i], o->paths[k], n) != 0)
                        continue;
                if (o->paths[i][n] == '/' || (o->paths[i][n] == '\0' && k < i))
                        return 1;
        }
        return 0;
}

int restore_run(const struct config *cfg, const struct restore_options *o, struct restore_stats *st)
{
        struct walk w = {.o = o, .st = st};
        int r;

        memset(st, 0, sizeof(*st));
        r = remote_new(cfg->server, cfg->token, &w.rem);
        if (r < 0)
                return r;
        remote_set_limits(w.rem, cfg->limit_up, cfg->limit_down);
        if (o->into) {
                r = fsutil_mkdirs(o->into, 0);
                if (r < 0) {
                        r = err_set(r, "cannot make %s: %s", o->into, strerror(-r));
                        goto out;
                }
                w.dir = realpath(o->into, NULL);
                if (!w.dir) {
                        r = err_set(-errno, "cannot use %s: %s", o->into, strerror(errno));
                        goto out;
                }
                w.t = (struct transfer){.remote = w.rem, .root = w.dir};
        }
        for (size_t i = 0; i < (o->npaths ? o->npaths : 1) && r == 0; i++) {
                if (o->npaths && covered(o, i))
                        continue;
                w.prefix = o->npaths ? o->paths[i] : NULL;
                r = o->into ? walk_pages(&w, into_page) : walk_in_place(&w);
        }
        if (r < 0)
                goto out;
        if (st->listed == 0)
                r = err_set(-ENOENT, "the space held nothing %s%s as of seq %lld",
                            o->npaths ? "under " : "", o->npaths ? o->paths[0] : "",
                            (long long)st->seq);
        else if (st->failed)
                r = err_set(-EIO, "%lld paths could not be restored (see the log above)",
                            (long long)st->failed);
        else if (st->kept)
                r = err_set(-EEXIST,
                            "%lld files already in %s with other content were not overwritten "
                            "(restore into an empty folder, or move them away first)",
                            (long long)st->kept, w.dir);
out:
        for (size_t i = 0; i < w.njobs; i++)
                dl_job_free(&w.jobs[i]);
        free(w.jobs);
        free(w.dir);
        remote_free(w.rem);
        return r;
}
