/* backup_scan: a session on one backup set (its lock, its index, the
 * ignore patterns) and the scans of its sources against that index, which
 * are all a check does and what a backup starts with (see backup.h).
 *
 * Each source is scanned as the one path "<basename>" under its parent
 * directory (scan_paths_opts), so the index's paths are exactly the paths
 * inside the set, a source that is a single file needs nothing special,
 * and a scan of one source never mistakes another source's entries for
 * deletes. A source that is not there at all is reported missing and left
 * alone rather than turned into the deletion of everything it held: a
 * disk that is not mounted, a folder renamed by mistake, must not empty
 * the backup.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "backup_int.h"
#include "err.h"
#include "ignore.h"

/* Every folder named .ferry is a linked folder's state (its token, its
 * index): never part of a backup. The built-in defaults come with it. */
static const char backup_ignore[] = ".ferry/\n";

static int take_lock(const struct config *cfg, const char *name, int *fd)
{
        char *file = bk_state_file(cfg, name, ".lock");
        int f = -1, r = 0;

        if (!file)
                return -ENOMEM;
        f = open(file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f < 0) {
                r = err_set(-errno, "cannot open the lock %s: %s", file, strerror(errno));
                goto out;
        }
        if (flock(f, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        r = err_set(-EBUSY,
                                    "a backup or a check of the set %s is already running (it "
                                    "holds %s); try again when it is done",
                                    name, file);
                else
                        r = err_set(-errno, "cannot lock %s: %s", file, strerror(errno));
                goto out;
        }
        *fd = f;
        f = -1;
out:
        if (f >= 0)
                close(f);
        free(file);
        return r;
}

int bk_open(const struct config *cfg, const struct backup_set *set, struct bk_session *s)
{
        char *db = NULL;
        int r;

        memset(s, 0, sizeof(*s));
        s->cfg = cfg;
        s->set = set;
        s->lock_fd = -1;
        r = take_lock(cfg, set->name, &s->lock_fd);
        if (r < 0)
                return r;
        db = bk_state_file(cfg, set->name, ".db");
        if (!db)
                return -ENOMEM;
        r = index_open(db, &s->idx);
        free(db);
        if (r == 0)
                r = ignore_from_text(backup_ignore, strlen(backup_ignore), "backup", &s->ig);
        if (r < 0)
                return r;
        s->src = calloc(set->nsources ? set->nsources : 1, sizeof(*s->src));
        if (!s->src)
                return -ENOMEM;
        for (size_t i = 0; i < set->nsources; i++) {
                struct bk_source *src = &s->src[i];
                const char *slash = strrchr(set->sources[i], '/');

                if (!slash || !slash[1])
                        return err_set(-EINVAL, "the backup set %s has an invalid source '%s'",
                                       set->name, set->sources[i]);
                src->abs = set->sources[i];
                src->base = slash + 1;
                src->parent =
                    slash == src->abs ? strdup("/") : strndup(src->abs, (size_t)(slash - src->abs));
                if (!src->parent)
                        return -ENOMEM;
                s->nsrc++;
        }
        return 0;
}

void bk_close(struct bk_session *s)
{
        for (size_t i = 0; i < s->nsrc; i++) {
                free(s->src[i].parent);
                scan_result_free(&s->src[i].sr);
        }
        free(s->src);
        ignore_free(s->ig);
        if (s->idx)
                index_close(s->idx);
        if (s->lock_fd >= 0)
                close(s->lock_fd); /* releases the flock */
        memset(s, 0, sizeof(*s));
        s->lock_fd = -1;
}

static int selected(const char *abs, const char *const *only, size_t nonly)
{
        if (nonly == 0)
                return 1;
        for (size_t i = 0; i < nonly; i++)
                if (!strcmp(only[i], abs))
                        return 1;
        return 0;
}

static int add_missing(struct backup_report *rep, const char *abs)
{
        char **p = realloc(rep->missing, (rep->nmissing + 1) * sizeof(*p));

        if (!p)
                return -ENOMEM;
        rep->missing = p;
        if (!(p[rep->nmissing] = strdup(abs)))
                return -ENOMEM;
        rep->nmissing++;
        return 0;
}

int bk_scan(struct bk_session *s, const char *const *only, size_t nonly, struct backup_report *rep)
{
        struct scan_options so = {.ignore = s->ig};
        struct stat st;
        int r;

        r = index_state_get(s->idx, BK_STATE_LAST_NS, &rep->last_ns);
        if (r == 0)
                r = index_state_get(s->idx, BK_STATE_LAST_SEQ, &rep->last_seq);
        if (r == -ENOENT) {
                err_clear();
                r = 0;
        }
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->nsrc; i++) {
                struct bk_source *src = &s->src[i];
                const char *one = src->base;

                if (!selected(src->abs, only, nonly))
                        continue;
                src->selected = 1;
                if (lstat(src->abs, &st) < 0) {
                        if (errno != ENOENT && errno != ENOTDIR)
                                return err_set(-errno, "cannot read %s: %s", src->abs,
                                               strerror(errno));
                        src->missing = 1;
                        if ((r = add_missing(rep, src->abs)) < 0)
                                return r;
                        continue;
                }
                r = scan_paths_opts(src->parent, s->idx, &so, &one, 1, &src->sr);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < src->sr.n; k++)
                        if ((r = bk_report_add(rep, &src->sr.changes[k])) < 0)
                                return r;
        }
        return 0;
}

int backup_check(const struct config *cfg, const struct backup_set *set, struct backup_report *rep)
{
        struct bk_session s;
        int r;

        r = bk_open(cfg, set, &s);
        if (r == 0)
                r = bk_scan(&s, NULL, 0, rep);
        bk_close(&s);
        return r;
}

int backup_last(const struct config *cfg, const char *name, int64_t *last_ns)
{
        char *db = bk_state_file(cfg, name, ".db");
        struct index *idx = NULL;
        int r;

        *last_ns = 0;
        if (!db)
                return -ENOMEM;
        if (access(db, F_OK) < 0) { /* never ran: do not make an empty index */
                free(db);
                return 0;
        }
        r = index_open(db, &idx);
        if (r == 0)
                r = index_state_get(idx, BK_STATE_LAST_NS, last_ns);
        if (r == -ENOENT) {
                err_clear();
                r = 0;
        }
        if (idx)
                index_close(idx);
        free(db);
        return r;
}
