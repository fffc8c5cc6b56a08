/* backup: the backup sets of a linked folder (see backup.h): their names,
 * their sources in .ferry/backup-NAME.json, the report of what a check
 * found or a backup moved, and the two small helpers of the periodic check
 * (the interval, notify-send).
 *
 * A source is kept as the absolute path realpath() gave when it was added,
 * so that the set means the same folders whatever directory a later
 * `ferry backup` runs from. Two sources with the same name would land in
 * the same top folder of the set, so that is refused when the second is
 * added.
 */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backup_int.h"
#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "path.h"
#include "progress.h"
#include "scan.h"

/* A set file is a list of paths: anything much larger is not ours. */
#define SET_FILE_MAX (4u << 20)
/* How long notify-send may take before it is given up on. */
#define NOTIFY_WAIT_MS 5000

extern char **environ;

int backup_name_check(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > BACKUP_NAME_MAX)
                return err_set(-EINVAL, "a backup set name has 1 to %d bytes, not %zu",
                               BACKUP_NAME_MAX, n);
        if (strchr(name, '/') || path_validate(name) < 0)
                return err_set(-EINVAL,
                               "'%s' cannot name a backup set: it must be one folder name (no "
                               "'/', no control characters)",
                               name);
        if (name[0] == '.')
                return err_set(-EINVAL, "'%s' cannot name a backup set: it starts with '.'", name);
        return 0;
}

char *bk_state_file(const struct config *cfg, const char *name, const char *suffix)
{
        struct buf b = BUF_INIT;

        if (buf_printf(&b, "%s/%s/backup-%s%s", cfg->root, PATH_STATE_DIR, name, suffix) < 0) {
                buf_free(&b);
                return NULL;
        }
        return (char *)buf_steal(&b, NULL);
}

void backup_set_free(struct backup_set *set)
{
        for (size_t i = 0; i < set->nsources; i++)
                free(set->sources[i]);
        free(set->sources);
        free(set->name);
        memset(set, 0, sizeof(*set));
}

static int set_push(struct backup_set *set, const char *abs)
{
        char **p = realloc(set->sources, (set->nsources + 1) * sizeof(*p));

        if (!p)
                return -ENOMEM;
        set->sources = p;
        if (!(p[set->nsources] = strdup(abs)))
                return -ENOMEM;
        set->nsources++;
        return 0;
}

int backup_set_load(const struct config *cfg, const char *name, struct backup_set *set)
{
        char *file = NULL, *text = NULL;
        json_t *j = NULL, *v;
        json_error_t je;
        size_t i;
        int r;

        r = backup_name_check(name);
        if (r < 0)
                return r;
        set->name = strdup(name);
        file = bk_state_file(cfg, name, ".json");
        if (!set->name || !file) {
                r = -ENOMEM;
                goto out;
        }
        r = fsutil_read_all(file, SET_FILE_MAX, &text, NULL);
        if (r == -ENOENT) {
                r = 0;
                goto out;
        }
        if (r < 0) {
                r = err_set(r, "cannot read %s: %s", file, strerror(-r));
                goto out;
        }
        j = json_loads(text, 0, &je);
        if (!json_is_array(json_object_get(j, "sources"))) {
                r = err_set(-EINVAL, "%s is not a backup set file (%s)", file,
                            j ? "no sources list" : je.text);
                goto out;
        }
        json_array_foreach(json_object_get(j, "sources"), i, v)
        {
                const char *s = json_string_value(v);

                if (!s || s[0] != '/') {
                        r = err_set(-EINVAL, "%s: source %zu is not an absolute path", file, i);
                        goto out;
                }
                if ((r = set_push(set, s)) < 0)
                        goto out;
        }
        set->exists = 1;
out:
        if (r < 0)
                backup_set_free(set);
        json_decref(j);
        free(text);
        free(file);
        return r;
}

int backup_set_save(const struct config *cfg, const struct backup_set *set)
{
        json_t *j = json_pack("{s:s, s:[]}", "name", set->name, "sources"), *arr;
        char *file = bk_state_file(cfg, set->name, ".json"), *text = NULL;
        int r = 0;

        if (!j || !file) {
                r = -ENOMEM;
                goto out;
        }
        arr = json_object_get(j, "sources");
        for (size_t i = 0; i < set->nsources && r == 0; i++)
                if (json_array_append_new(arr, json_string(set->sources[i])) < 0)
                        r = -ENOMEM;
        if (r == 0 && !(text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
                r = -ENOMEM;
        if (r == 0 && (r = fsutil_write_atomic(file, text, strlen(text), 0600)) < 0)
                r = err_set(r, "cannot write %s: %s", file, strerror(-r));
out:
        json_decref(j);
        free(text);
        free(file);
        return r;
}

/* 0 when abs (absolute, resolved) can be a source, else -EINVAL with why. */
static int source_check(const char *abs)
{
        const char *base = strrchr(abs, '/') + 1;

        if (!*base)
                return err_set(-EINVAL, "/ cannot be backed up as a whole; name its folders");
        if (strncmp(base, PATH_STATE_DIR, strlen(PATH_STATE_DIR)) == 0)
                return err_set(-EINVAL,
                               "%s cannot be backed up: names starting with '.ferry' are "
                               "Ferry's own",
                               abs);
        if (path_validate(base) < 0)
                return err_set(-EINVAL,
                               "%s cannot be backed up: its name is not a valid Ferry "
                               "path (%s)",
                               abs, err_msg(-EINVAL));
        if (strstr(abs, "/" PATH_STATE_DIR "/"))
                return err_set(-EINVAL, "%s is inside a linked folder's .ferry/ state", abs);
        return 0;
}

int backup_set_add(struct backup_set *set, const char *path, char **abs)
{
        char *real = realpath(path, NULL);
        const char *base;
        int r = 0;

        if (abs)
                *abs = NULL;
        if (!real) {
                int e = errno;

                return err_set(e == ENOMEM ? -ENOMEM : -ENOENT, "cannot back up %s: %s", path,
                               strerror(e));
        }
        r = source_check(real);
        if (r < 0)
                goto out;
        base = strrchr(real, '/') + 1;
        for (size_t i = 0; i < set->nsources; i++) {
                const char *other = strrchr(set->sources[i], '/') + 1;

                if (!strcmp(set->sources[i], real))
                        goto done;
                if (!strcmp(other, base)) {
                        r = err_set(-EEXIST,
                                    "the backup set %s already holds %s as %s/; %s would land "
                                    "in the same folder: back it up into another set (--to NAME)",
                                    set->name, set->sources[i], base, real);
                        goto out;
                }
        }
        r = set_push(set, real);
done:
        if (r == 0 && abs) {
                *abs = real;
                real = NULL;
        }
out:
        free(real);
        return r;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int backup_sets_local(const struct config *cfg, char ***names, size_t *n)
{
        char *dir = config_state_path(cfg, "");
        char **v = NULL, **nv;
        struct dirent *de;
        size_t cnt = 0;
        DIR *d = NULL;
        int r = 0;

        *names = NULL;
        *n = 0;
        if (!dir)
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                r = err_set(-errno, "cannot read %s: %s", dir, strerror(errno));
                goto out;
        }
        while ((de = readdir(d)) != NULL) {
                size_t len = strlen(de->d_name);
                char name[BACKUP_NAME_MAX + 1];

                /* backup-NAME.json */
                if (len <= 12 || len - 12 > BACKUP_NAME_MAX ||
                    strncmp(de->d_name, "backup-", 7) != 0 || strcmp(de->d_name + len - 5, ".json"))
                        continue;
                snprintf(name, sizeof(name), "%.*s", (int)(len - 12), de->d_name + 7);
                if (backup_name_check(name) < 0) {
                        err_clear();
                        continue;
                }
                nv = realloc(v, (cnt + 1) * sizeof(*v));
                if (!nv || !(nv[cnt] = strdup(name))) {
                        v = nv ? nv : v;
                        r = -ENOMEM;
                        goto out;
                }
                v = nv;
                cnt++;
        }
        if (cnt > 1)
                qsort(v, cnt, sizeof(*v), cmp_str);
        *names = v;
        *n = cnt;
        v = NULL;
        cnt = 0;
out:
        for (size_t i = 0; i < cnt; i++)
                free(v[i]);
        free(v);
        if (d)
                closedir(d);
        free(dir);
        return r;
}

void bk_report_reset(struct backup_report *rep)
{
        for (size_t i = 0; i < rep->n; i++) {
                free(rep->items[i].path);
                free(rep->items[i].from);
        }
        rep->n = 0;
        memset(rep->count, 0, sizeof(rep->count));
        rep->bytes = 0;
}

void backup_report_free(struct backup_report *rep)
{
        bk_report_reset(rep);
        free(rep->items);
        for (size_t i = 0; i < rep->nmissing; i++)
                free(rep->missing[i]);
        free(rep->missing);
        memset(rep, 0, sizeof(*rep));
}

int bk_report_add(struct backup_report *rep, const struct local_change *c)
{
        struct backup_item *it;
        int what;

        if (rep->n == rep->cap) {
                size_t ncap = rep->cap ? rep->cap * 2 : 32;
                struct backup_item *p = realloc(rep->items, ncap * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                rep->items = p;
                rep->cap = ncap;
        }
        if (c->op == CHANGE_DELETE)
                what = BACKUP_DELETED;
        else if (c->op == CHANGE_RENAME)
                what = BACKUP_RENAMED;
        else
                what = c->base > 0 ? BACKUP_MODIFIED : BACKUP_NEW;
        it = &rep->items[rep->n];
        memset(it, 0, sizeof(*it));
        it->what = what;
        it->kind = c->kind;
        it->size = c->op == CHANGE_DELETE ? 0 : c->size;
        it->path = strdup(c->path);
        it->from = c->from ? strdup(c->from) : NULL;
        if (!it->path || (c->from && !it->from)) {
                free(it->path);
                free(it->from);
                return -ENOMEM;
        }
        rep->n++;
        rep->count[what]++;
        if ((what == BACKUP_NEW || what == BACKUP_MODIFIED) && c->kind == KIND_FILE)
                rep->bytes += c->size;
        return 0;
}

void backup_report_counts(const struct backup_report *rep, char *out, size_t len)
{
        char size[32];

        progress_human((int64_t)rep->bytes, size, sizeof(size));
        snprintf(out, len, "%lld new, %lld modified, %lld deleted, %lld renamed, %s",
                 (long long)rep->count[BACKUP_NEW], (long long)rep->count[BACKUP_MODIFIED],
                 (long long)rep->count[BACKUP_DELETED], (long long)rep->count[BACKUP_RENAMED],
                 size);
}

/* 1 when an executable named prog is in a directory of $PATH (an empty
 * entry is the current directory). */
static int on_path(const char *prog)
{
        const char *p = getenv("PATH"), *end;
        char full[PATH_MAX];

        for (; p; p = *end ? end + 1 : NULL) {
                end = strchrnul(p, ':');
                if (end == p)
                        snprintf(full, sizeof(full), "./%s", prog);
                else
                        snprintf(full, sizeof(full), "%.*s/%s", (int)(end - p), p, prog);
                if (access(full, X_OK) == 0)
                        return 1;
        }
        return 0;
}

int backup_notify(const char *summary, const char *body)
{
        char *argv[] = {"notify-send", "--app-name=ferry", (char *)summary, (char *)body, NULL};
        struct timespec pause = {0, 50 * 1000000L};
        int status = 0, waited = 0, r;
        pid_t pid, w;

        if (!on_path("notify-send"))
                return 0;
        r = posix_spawnp(&pid, "notify-send", NULL, NULL, argv, environ);
        if (r != 0)
                return err_set(-r, "cannot run notify-send: %s", strerror(r));
        /* a desktop bus that does not answer must not hold the caller */
        while ((w = waitpid(pid, &status, WNOHANG)) == 0 && waited < NOTIFY_WAIT_MS) {
                nanosleep(&pause, NULL);
                waited += 50;
        }
        if (w == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                return err_set(-ETIMEDOUT, "notify-send did not finish within %d s",
                               NOTIFY_WAIT_MS / 1000);
        }
        if (w < 0)
                return err_set(-errno, "notify-send: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return err_set(-EIO, "notify-send failed (status %d)", status);
        return 1;
}

int backup_parse_interval(const char *s, int64_t *secs)
{
        const int64_t max = 366LL * 86400;
        int64_t v = 0, mult = 1;
        const char *p = s;

        for (; *p >= '0' && *p <= '9'; p++) {
                v = v * 10 + (*p - '0');
                if (v > max)
                        break;
        }
        if (p != s && p[0] && !p[1]) {
                mult = p[0] == 's'   ? 1
                       : p[0] == 'm' ? 60
                       : p[0] == 'h' ? 3600
                       : p[0] == 'd' ? 86400
                                     : 0;
                p++;
        }
        if (p == s || *p || mult == 0 || v < 1 || v > max / mult)
                return err_set(-EINVAL,
                               "'%s' is not an interval: give seconds, or a number with s, m, h "
                               "or d (90, 15m, 2h, 1d), from 1 second to 366 days",
                               s);
        *secs = v * mult;
        return 0;
}
