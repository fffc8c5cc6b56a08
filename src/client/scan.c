/* scan: compares the linked folder with the local index and lists what
 * changed, as changes the server can apply in order.
 *
 * One pass walks the folder (openat/fstatat relative to each directory's
 * descriptor, never following a symlink), matching every name against the
 * index entries loaded up front. Only files whose stat differs from their
 * entry, or whose entry is "racy" (mtime within a second of when the entry
 * was recorded), are opened and hashed. A second pass turns pairs of "new
 * file" + "vanished file with the same content" into renames, and lists the
 * remaining vanished entries as deletes.
 *
 * Under the rules (scan_options, see scan.h) the walk also skips ignored
 * names and the top-level backup folder, and asks the caller about each
 * new or changed entry before reading it: a held one is reported without
 * its content. Held files seen before (the index's held-up rows) are
 * recognised by size and mtime, so nothing held is read round after round.
 * Under since-last-sync with a time, the index is not loaded: only entries
 * changed since (mtime or ctime) and held files are looked up, one by one.
 *
 * Safety rules this module keeps, because a wrong answer here deletes data
 * on every device:
 *   - a root that is missing or unreadable is an error, never "everything
 *     was deleted";
 *   - a subdirectory or file that cannot be read this round is left alone
 *     (its index entries count as seen), never reported deleted;
 *   - a file that changes while it is hashed is hashed once more and
 *     otherwise skipped until the next round, so a change never carries
 *     metadata that does not match its content.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "ignore.h"
#include "localfs.h"
#include "log.h"
#include "path.h"
#include "rules.h"
#include "scan.h"
#include "scan_int.h"

#define NS_PER_SEC 1000000000LL
/* A changed file at least this large (as last recorded) is re-hashed from
 * its recorded chunk list (manifest_update_from_fd: only the changed parts
 * are cut again). Below it the chunker costs a few milliseconds at most,
 * less than loading the chunk list from the index. */
#define UPDATE_MIN_SIZE (8u * 1024u * 1024u)

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
        size_t ncap;
        void *np;

        if (need <= *cap)
                return 0;
        ncap = *cap ? *cap * 2 : 64;
        while (ncap < need)
                ncap *= 2;
        np = realloc(*p, ncap * size);
        if (np == NULL)
                return -ENOMEM;
        *p = np;
        *cap = ncap;
        return 0;
}

int scan_load_known(const struct index_entry *e, void *ud)
{
        struct scan *sc = ud;
        struct known *k;

        if (grow((void **)&sc->known, &sc->capknown, sc->nknown + 1, sizeof(*sc->known)) < 0)
                return -ENOMEM;
        k = &sc->known[sc->nknown];
        memset(k, 0, sizeof(*k));
        k->e = *e;
        k->e.path = strdup(e->path);
        k->e.target = e->target ? strdup(e->target) : NULL;
        if (k->e.path == NULL || (e->target && k->e.target == NULL)) {
                index_entry_free(&k->e);
                return -ENOMEM;
        }
        sc->nknown++;
        return 0;
}

int scan_cmp_known(const void *a, const void *b)
{
        return strcmp(((const struct known *)a)->e.path, ((const struct known *)b)->e.path);
}

struct known *scan_find_known(struct scan *sc, const char *path)
{
        size_t lo = 0, hi = sc->nknown;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(path, sc->known[mid].e.path);

                if (c == 0)
                        return &sc->known[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* Marks prefix and everything under it as seen: a part of the folder we
 * could not read this round (or that is ignored) must not turn into
 * deletes. The paths starting with prefix are one range of the sorted
 * list, found by bisection: ignored directories are common. */
void scan_protect_subtree(struct scan *sc, const char *prefix)
{
        size_t n = strlen(prefix), lo = 0, hi = sc->nknown;

        if (sc->lookup)
                return; /* all seen */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strcmp(sc->known[mid].e.path, prefix) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (; lo < sc->nknown && strncmp(sc->known[lo].e.path, prefix, n) == 0; lo++) {
                const char *p = sc->known[lo].e.path;

                if (p[n] == '\0' || p[n] == '/')
                        sc->known[lo].seen = 1;
        }
}

static int load_held_row(const struct index_held *h, void *ud)
{
        struct scan *sc = ud;
        struct held_seen *x;

        if (grow((void **)&sc->held, &sc->capheld, sc->nheld + 1, sizeof(*sc->held)) < 0)
                return -ENOMEM;
        x = &sc->held[sc->nheld];
        x->path = strdup(h->path);
        if (x->path == NULL)
                return -ENOMEM;
        x->size = h->size;
        x->mtime_ns = h->mtime_ns;
        sc->nheld++;
        return 0;
}

int scan_load_held(struct scan *sc, const char *prefix)
{
        if (!sc->opt->hold)
                return 0;
        return index_held_foreach(sc->idx, RULES_UP, prefix, load_held_row, sc);
}

static int cmp_held(const void *a, const void *b)
{
        return strcmp(((const struct held_seen *)a)->path, ((const struct held_seen *)b)->path);
}

void scan_sort_held(struct scan *sc)
{
        if (sc->nheld > 1)
                qsort(sc->held, sc->nheld, sizeof(*sc->held), cmp_held);
}

static struct held_seen *find_held(struct scan *sc, const char *path)
{
        size_t lo = 0, hi = sc->nheld;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(path, sc->held[mid].path);

                if (c == 0)
                        return &sc->held[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* Appends a zeroed change for path (copied) and returns it, or NULL. */
struct local_change *scan_add_change(struct scan *sc, int op, const char *path)
{
        struct scan_result *o = sc->out;
        struct local_change *c;

        if (grow((void **)&o->changes, &o->cap, o->n + 1, sizeof(*o->changes)) < 0)
                return NULL;
        c = &o->changes[o->n];
        memset(c, 0, sizeof(*c));
        c->op = op;
        c->path = strdup(path);
        if (c->path == NULL)
                return NULL;
        o->n++;
        return c;
}

static void fill_stat(struct local_change *c, const struct stat *st)
{
        c->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
        c->mtime_ns = fsutil_ts_ns(&st->st_mtim);
        c->ctime_ns = fsutil_ts_ns(&st->st_ctim);
        c->ino = (uint64_t)st->st_ino;
}

static uint32_t file_mode(const struct stat *st)
{
        return (st->st_mode & 0111) ? 0755 : 0644;
}

/* 1 when the file's stat equals its entry (mode too) and the entry is not
 * racy: it need not be read again. */
static int entry_fresh(const struct index_entry *e, const struct stat *st)
{
        return localfs_entry_trusted(e, st) && e->mode == file_mode(st);
}

int scan_hash_file(int dfd, const char *name, const char *rel, struct stat *st,
                   const struct manifest *old, struct manifest *m)
{
        struct stat before, after;
        int attempt, fd, r;

        for (attempt = 0; attempt < 2; attempt++) {
                /* O_NONBLOCK: if the file was swapped for a fifo since the
                 * fstatat, opening must not hang */
                fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0) {
                        if (errno != ENOENT)
                                log_warn("cannot read %s: %s; skipping it this round", rel,
                                         strerror(errno));
                        return 1;
                }
                if (fstat(fd, &before) < 0 || !S_ISREG(before.st_mode)) {
                        close(fd);
                        return 1;
                }
                r = old ? manifest_update_from_fd(fd, old, m) : manifest_from_fd(fd, m, NULL, NULL);
                if (r == 0 && fstat(fd, &after) < 0)
                        r = -errno;
                close(fd);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        log_warn("cannot read %s: %s; skipping it this round", rel, err_msg(r));
                        manifest_free(m);
                        return 1;
                }
                if (localfs_same_stat(&before, &after) && m->size == (uint64_t)before.st_size) {
                        *st = before;
                        return 0;
                }
                manifest_free(m);
                memset(m, 0, sizeof(*m));
        }
        log_info("%s is changing while it is read; leaving it for the next round", rel);
        return 1;
}

/* Asks the caller whether the rules hold path back: 1 (why filled), 0, or
 * a negative code. */
static int ask_hold(struct scan *sc, const char *path, int kind, uint64_t size, char *why,
                    size_t whylen)
{
        why[0] = '\0';
        if (!sc->opt->hold)
                return 0;
        return sc->opt->hold(sc->opt->ud, path, kind, size, why, whylen);
}

/* Reports path as held back (why), with its stat and no content. */
static int add_held(struct scan *sc, const char *rel, int kind, const struct known *k,
                    const struct stat *st, const char *why)
{
        struct local_change *c = scan_add_change(sc, CHANGE_PUT, rel);

        if (c == NULL || (c->held = strdup(why[0] ? why : "held by the rules")) == NULL)
                return -ENOMEM;
        c->kind = kind;
        c->base = k ? k->e.seq : 0;
        fill_stat(c, st);
        c->mode = kind == KIND_FILE ? file_mode(st) : 0;
        return 0;
}

/* Reports the new file rel without reading it: the upload will, once, as
 * it sends it (scan_options.stream_min). */
static int add_unread(struct scan *sc, const char *rel, const struct stat *st)
{
        struct local_change *c = scan_add_change(sc, CHANGE_PUT, rel);

        if (c == NULL)
                return -ENOMEM;
        c->kind = KIND_FILE;
        c->stream = 1;
        fill_stat(c, st);
        c->mode = file_mode(st);
        return 0;
}

static int scan_file(struct scan *sc, int dfd, const char *name, const char *rel, struct known *k,
                     struct stat *st)
{
        struct manifest m = MANIFEST_INIT, old = MANIFEST_INIT;
        const struct manifest *pold = NULL;
        struct local_change *c;
        struct held_seen *h;
        struct refresh *f;
        char why[256];
        uint32_t mode;
        int r, held;

        if (k && entry_fresh(&k->e, st))
                return 0;
        held = ask_hold(sc, rel, KIND_FILE, (uint64_t)st->st_size, why, sizeof(why));
        if (held < 0)
                return held;
        if (held) {
                /* A held file is not read, except a synced one whose stat
                 * moved (touch, chmod): when its content is the synced one,
                 * that is no change to hold. A held file seen before with
                 * this size and mtime was read then. */
                h = find_held(sc, rel);
                if (!(k && k->e.kind == KIND_FILE) || (h && h->size == (uint64_t)st->st_size &&
                                                       h->mtime_ns == fsutil_ts_ns(&st->st_mtim)))
                        return add_held(sc, rel, KIND_FILE, k, st, why);
        }
        if (!k && !held && sc->opt->stream_min && (uint64_t)st->st_size >= sc->opt->stream_min)
                return add_unread(sc, rel, st);
        if (k && k->e.kind == KIND_FILE && k->e.size >= UPDATE_MIN_SIZE &&
            index_get_manifest(sc->idx, rel, &old) == 0 && old.n > 0)
                pold = &old;
        r = scan_hash_file(dfd, name, rel, st, pold, &m);
        manifest_free(&old);
        if (r != 0)
                return r < 0 ? r : 0;
        mode = file_mode(st);

        if (k && k->e.kind == KIND_FILE && k->e.mode == mode &&
            hash_equal(&k->e.hash, &m.file_hash)) {
                /* same content: not a change, but remember the new stat so
                 * the file is not hashed again next round */
                r = grow((void **)&sc->refresh, &sc->caprefresh, sc->nrefresh + 1,
                         sizeof(*sc->refresh));
                if (r < 0)
                        goto out;
                f = &sc->refresh[sc->nrefresh];
                memset(f, 0, sizeof(*f));
                f->e = k->e; /* borrows path and target from the known entry */
                f->e.size = (uint64_t)st->st_size;
                f->e.mtime_ns = fsutil_ts_ns(&st->st_mtim);
                f->e.ctime_ns = fsutil_ts_ns(&st->st_ctim);
                f->e.ino = (uint64_t)st->st_ino;
                f->e.recorded_ns = sc->started_ns;
                f->m = m;
                memset(&m, 0, sizeof(m));
                sc->nrefresh++;
                goto out;
        }
        if (held) {
                r = add_held(sc, rel, KIND_FILE, k, st, why);
                goto out;
        }

        c = scan_add_change(sc, CHANGE_PUT, rel);
        if (c == NULL) {
                r = -ENOMEM;
                goto out;
        }
        c->kind = KIND_FILE;
        c->base = k ? k->e.seq : 0;
        fill_stat(c, st);
        c->mode = mode;
        c->manifest = m;
        memset(&m, 0, sizeof(m));
out:
        manifest_free(&m);
        return r;
}

static int scan_symlink(struct scan *sc, int dfd, const char *name, const char *rel,
                        struct known *k, const struct stat *st)
{
        char *target = malloc(PATH_MAX_BYTES + 2);
        struct local_change *c;
        char why[256];
        json_t *probe;
        ssize_t n;
        int r = 0;

        if (target == NULL)
                return -ENOMEM;
        n = readlinkat(dfd, name, target, PATH_MAX_BYTES + 1);
        if (n < 0) {
                if (errno != ENOENT)
                        log_warn("cannot read the link %s: %s; skipping it this round", rel,
                                 strerror(errno));
                goto out;
        }
        target[n] = '\0';
        /* the target travels as a JSON string: it must be UTF-8 */
        probe = json_stringn(target, (size_t)n);
        if (n > PATH_MAX_BYTES || probe == NULL) {
                log_warn("skipping the link %s: its target is too long or not UTF-8", rel);
                json_decref(probe);
                goto out;
        }
        json_decref(probe);
        if (k && k->e.kind == KIND_SYMLINK && k->e.target && strcmp(k->e.target, target) == 0)
                goto out;
        r = ask_hold(sc, rel, KIND_SYMLINK, 0, why, sizeof(why));
        if (r != 0) {
                if (r > 0)
                        r = add_held(sc, rel, KIND_SYMLINK, k, st, why);
                goto out;
        }
        c = scan_add_change(sc, CHANGE_PUT, rel);
        if (c == NULL) {
                r = -ENOMEM;
                goto out;
        }
        c->kind = KIND_SYMLINK;
        c->base = k ? k->e.seq : 0;
        fill_stat(c, st);
        c->target = target;
        target = NULL;
out:
        free(target);
        return r;
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the names in the directory open as dfd (sorted, without "." and
 * ".."). Returns 0 or -errno. */
static int read_names(int dfd, char ***names, size_t *n)
{
        size_t cap = 0;
        struct dirent *de;
        DIR *d = NULL;
        int fd, r = 0;

        *names = NULL;
        *n = 0;
        fd = dup(dfd);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (d == NULL) {
                r = -errno;
                close(fd);
                return r;
        }
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (de == NULL) {
                        r = -errno;
                        break;
                }
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (grow((void **)names, &cap, *n + 1, sizeof(**names)) < 0 ||
                    ((*names)[*n] = strdup(de->d_name)) == NULL) {
                        r = -ENOMEM;
                        break;
                }
                (*n)++;
        }
        closedir(d);
        if (r == 0 && *n > 1)
                qsort(*names, *n, sizeof(**names), cmp_name);
        return r;
}

static int walk(struct scan *sc, int dfd, const char *rel);

/* The index entry of path for the scan, in *k (NULL: not synced). Under
 * since-last-sync with a time, an entry not changed since then and not held
 * is not looked at (*skip): only changed ones are looked up, one by one. */
static int look_up(struct scan *sc, const char *path, const struct stat *st, struct known **k,
                   int *skip)
{
        int64_t t = fsutil_ts_ns(&st->st_mtim) > fsutil_ts_ns(&st->st_ctim)
                        ? fsutil_ts_ns(&st->st_mtim)
                        : fsutil_ts_ns(&st->st_ctim);
        struct index_entry e;
        int r;

        *skip = 0;
        if (!sc->lookup) {
                *k = scan_find_known(sc, path);
                return 0;
        }
        *k = NULL;
        if (t <= sc->opt->since_ns && !find_held(sc, path)) {
                *skip = 1;
                return 0;
        }
        r = index_get(sc->idx, path, &e);
        if (r == -ENOENT) {
                err_clear();
                return 0;
        }
        if (r < 0)
                return r;
        r = scan_load_known(&e, sc);
        index_entry_free(&e);
        if (r < 0)
                return r;
        *k = &sc->known[sc->nknown - 1];
        return 0;
}

/* Whether the entry cp is ignored. Asked only where the answer can change
 * what the scan does: a synced file whose stat matches its entry, or a
 * synced directory, gives no change either way (and a directory's
 * ignored content is caught name by name, since ignore_match looks at the
 * parents too), so a no-op scan of a large folder asks nothing. */
static int ignored(struct scan *sc, const char *cp, int kind, const struct known *k,
                   const struct stat *st, int skip)
{
        if (!sc->opt->ignore)
                return 0;
        if (kind == KIND_DIR ? k && k->e.kind == KIND_DIR
                             : skip || (kind == KIND_FILE && k && entry_fresh(&k->e, st)))
                return 0;
        return ignore_match(sc->opt->ignore, cp, kind == KIND_DIR);
}

/* Handles one name found in the directory rel (open as dfd). */
int scan_name(struct scan *sc, int dfd, const char *rel, const char *name)
{
        struct buf child = BUF_INIT;
        struct local_change *c;
        struct known *k;
        struct stat st;
        const char *cp;
        char why[256];
        int kind, cfd, skip, r = 0;

        if (rel[0] == '\0' && strcmp(name, PATH_STATE_DIR) == 0)
                return 0;
        if (strncmp(name, PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX)) == 0)
                return 0;
        r = rel[0] ? buf_printf(&child, "%s/%s", rel, name) : buf_append_str(&child, name);
        if (r < 0)
                goto out;
        cp = (const char *)child.data;
        if (rel[0] == '\0' && strcmp(name, RULES_BACKUP_PREFIX) == 0) {
                scan_protect_subtree(sc, cp); /* never synced from here */
                goto out;
        }

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT) {
                        log_warn("cannot stat %s: %s; leaving it alone this round", cp,
                                 strerror(errno));
                        scan_protect_subtree(sc, cp);
                }
                goto out;
        }
        if (S_ISREG(st.st_mode))
                kind = KIND_FILE;
        else if (S_ISDIR(st.st_mode))
                kind = KIND_DIR;
        else if (S_ISLNK(st.st_mode))
                kind = KIND_SYMLINK;
        else {
                log_debug("skipping %s: not a file, directory or symlink", cp);
                goto out;
        }
        if (path_validate(cp) < 0) {
                log_warn("skipping %s: %s", cp, err_msg(-EINVAL));
                err_clear();
                goto out;
        }
        r = look_up(sc, cp, &st, &k, &skip);
        if (r < 0)
                goto out;
        if (ignored(sc, cp, kind, k, &st, skip)) {
                /* never leaves the device: not a change, and not a delete
                 * of what was synced before it was ignored */
                scan_protect_subtree(sc, cp);
                goto out;
        }
        sc->out->entries_seen++;
        if (k)
                k->seen = 1;

        if (kind == KIND_FILE) {
                r = skip ? 0 : scan_file(sc, dfd, name, cp, k, &st);
        } else if (kind == KIND_SYMLINK) {
                r = skip ? 0 : scan_symlink(sc, dfd, name, cp, k, &st);
        } else {
                int held = 0;

                if (!skip && !(k && k->e.kind == KIND_DIR)) {
                        held = ask_hold(sc, cp, KIND_DIR, 0, why, sizeof(why));
                        if (held < 0) {
                                r = held;
                                goto out;
                        }
                }
                if (!skip && !(k && k->e.kind == KIND_DIR) && !held) {
                        c = scan_add_change(sc, CHANGE_PUT, cp);
                        if (c == NULL) {
                                r = -ENOMEM;
                                goto out;
                        }
                        c->kind = KIND_DIR;
                        c->base = k ? k->e.seq : 0;
                        fill_stat(c, &st);
                }
                cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (cfd < 0) {
                        if (errno != ENOENT) {
                                log_warn("cannot read the directory %s: %s; leaving it alone "
                                         "this round",
                                         cp, strerror(errno));
                                scan_protect_subtree(sc, cp);
                        }
                        goto out;
                }
                r = walk(sc, cfd, cp);
                close(cfd);
        }
out:
        buf_free(&child);
        return r;
}

static int walk(struct scan *sc, int dfd, const char *rel)
{
        char **names = NULL;
        size_t n = 0, i;
        int r;

        r = read_names(dfd, &names, &n);
        if (r < 0) {
                if (r != -ENOMEM && rel[0] == '\0')
                        r = err_set(r == -EACCES ? -EACCES : -ENOENT,
                                    "the folder %s is missing or unreadable (%s); refusing to "
                                    "sync so nothing is deleted",
                                    sc->root, strerror(-r));
                if (r == -ENOMEM || rel[0] == '\0')
                        goto out;
                log_warn("cannot read the directory %s: %s; leaving it alone this round", rel,
                         strerror(-r));
                scan_protect_subtree(sc, rel);
                r = 0;
                goto out;
        }
        for (i = 0; i < n && r == 0; i++)
                r = scan_name(sc, dfd, rel, names[i]);
out:
        for (i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

static const struct scan_options no_options;

int scan_folder_opts(const char *root, struct index *idx, const struct scan_options *o,
                     struct scan_result *out)
{
        struct scan sc = {.root = root, .idx = idx, .out = out, .rfd = -1};
        int r;

        memset(out, 0, sizeof(*out));
        sc.opt = o ? o : &no_options;
        sc.lookup = sc.opt->since && sc.opt->since_ns > 0;
        sc.started_ns = fsutil_now_ns();
        out->started_ns = sc.started_ns;
        sc.rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sc.rfd < 0) {
                r = errno == EACCES || errno == EPERM ? -EACCES : -ENOENT;
                r = err_set(r,
                            "the folder %s is missing or unreadable (%s); refusing to sync so "
                            "nothing is deleted",
                            root, strerror(errno));
                goto out;
        }
        r = scan_load_held(&sc, NULL);
        if (r < 0)
                goto out;
        scan_sort_held(&sc);
        if (!sc.lookup) {
                r = index_foreach(idx, scan_load_known, &sc);
                if (r < 0)
                        goto out;
                if (sc.nknown > 1)
                        qsort(sc.known, sc.nknown, sizeof(*sc.known), scan_cmp_known);
        }
        r = walk(&sc, sc.rfd, "");
        if (r == 0)
                r = scan_finish(&sc);
out:
        if (sc.rfd >= 0)
                close(sc.rfd);
        scan_cleanup(&sc, r);
        return r;
}

int scan_folder(const char *root, struct index *idx, struct scan_result *out)
{
        return scan_folder_opts(root, idx, NULL, out);
}

void scan_change_free(struct local_change *c)
{
        free(c->path);
        free(c->from);
        free(c->target);
        free(c->held);
        manifest_free(&c->manifest);
}

void scan_result_free(struct scan_result *r)
{
        size_t i;

        if (r == NULL)
                return;
        for (i = 0; i < r->n; i++)
                scan_change_free(&r->changes[i]);
        free(r->changes);
        memset(r, 0, sizeof(*r));
}
