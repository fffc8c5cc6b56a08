/* notify: the recursive inotify tree (see notify.h).
 *
 * The watch descriptors map to directory paths in an open-addressing hash
 * table (linear probing, backward-shift deletion), since a folder may have
 * tens of thousands of directories and every event needs its lookup. A
 * directory moved inside the folder arrives as IN_MOVED_FROM then
 * IN_MOVED_TO: the first drops the watches of the old subtree, the second
 * walks the new one (inotify_add_watch), which keeps the map right without
 * pairing cookies, and the caller rescans both paths anyway.
 *
 * .ferry/ itself has one watch outside the map, for rules.json only
 * (written by rename, so IN_MOVED_TO, or in place, IN_CLOSE_WRITE): the
 * many writes of the index there cost one strcmp each.
 */
#include "notify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "ignore.h"
#include "log.h"
#include "path.h"
#include "rules.h"

#define WATCH_MASK                                                                                 \
        (IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE | IN_DELETE_SELF |         \
         IN_MOVED_FROM | IN_MOVED_TO | IN_MOVE_SELF | IN_DONT_FOLLOW | IN_ONLYDIR |                \
         IN_EXCL_UNLINK)
/* .ferry/: only what replaces or rewrites rules.json */
#define STATE_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DONT_FOLLOW | IN_ONLYDIR)

struct slot {
        int wd; /* 0: empty (watch descriptors start at 1) */
        char *path;
};

struct notify {
        int fd;
        char *root;
        int root_wd;
        int state_wd; /* .ferry/, -1 if not watched */
        const struct ignore *ig;
        struct slot *tab;
        size_t cap, n; /* cap is a power of two */
        int limited;
};

static size_t slot_of(const struct notify *n, int wd)
{
        return ((size_t)(unsigned)wd * 2654435761u) & (n->cap - 1);
}

static struct slot *lookup(struct notify *n, int wd)
{
        for (size_t i = slot_of(n, wd);; i = (i + 1) & (n->cap - 1)) {
                if (n->tab[i].wd == wd)
                        return &n->tab[i];
                if (n->tab[i].wd == 0)
                        return NULL;
        }
}

static int map_set(struct notify *n, int wd, const char *path);

static int grow(struct notify *n)
{
        struct slot *old = n->tab;
        size_t oldcap = n->cap, i;

        n->cap = oldcap ? oldcap * 2 : 1024;
        n->tab = calloc(n->cap, sizeof(*n->tab));
        if (!n->tab) {
                n->tab = old;
                n->cap = oldcap;
                return -ENOMEM;
        }
        n->n = 0;
        for (i = 0; i < oldcap; i++) {
                if (old[i].wd) {
                        size_t j = slot_of(n, old[i].wd);

                        while (n->tab[j].wd)
                                j = (j + 1) & (n->cap - 1);
                        n->tab[j] = old[i];
                        n->n++;
                }
        }
        free(old);
        return 0;
}

static int map_set(struct notify *n, int wd, const char *path)
{
        struct slot *s;
        char *copy;
        size_t i;

        if ((n->n + 1) * 2 > n->cap && grow(n) < 0)
                return -ENOMEM;
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        s = lookup(n, wd);
        if (s) {
                free(s->path);
                s->path = copy;
                return 0;
        }
        for (i = slot_of(n, wd); n->tab[i].wd; i = (i + 1) & (n->cap - 1))
                ;
        n->tab[i].wd = wd;
        n->tab[i].path = copy;
        n->n++;
        return 0;
}

static void map_del(struct notify *n, int wd)
{
        size_t i, j, k;

        for (i = slot_of(n, wd); n->tab[i].wd != wd; i = (i + 1) & (n->cap - 1))
                if (n->tab[i].wd == 0)
                        return;
        free(n->tab[i].path);
        n->tab[i].wd = 0;
        n->tab[i].path = NULL;
        n->n--;
        /* backward shift: move later members of the run into the hole */
        for (j = (i + 1) & (n->cap - 1); n->tab[j].wd; j = (j + 1) & (n->cap - 1)) {
                k = slot_of(n, n->tab[j].wd);
                if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
                        n->tab[i] = n->tab[j];
                        n->tab[j].wd = 0;
                        n->tab[j].path = NULL;
                        i = j;
                }
        }
}

/* Names never reported nor watched: .ferry and the backup folder at the
 * root, temporary files. */
static int skipped(const char *dir, const char *name)
{
        if (dir[0] == '\0' &&
            (strcmp(name, PATH_STATE_DIR) == 0 || strcmp(name, RULES_BACKUP_PREFIX) == 0))
                return 1;
        return strncmp(name, PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX)) == 0;
}

static int join(struct buf *b, const char *dir, const char *name)
{
        buf_reset(b);
        return dir[0] ? buf_printf(b, "%s/%s", dir, name) : buf_append_str(b, name);
}

/* Watches one directory (rel, "" for the root). 0, 1 when it is gone or
 * not a directory, or a negative code. */
static int watch_one(struct notify *n, const char *rel)
{
        struct buf full = BUF_INIT;
        int wd, r;

        r = rel[0] ? buf_printf(&full, "%s/%s", n->root, rel) : buf_append_str(&full, n->root);
        if (r < 0)
                return r;
        wd = inotify_add_watch(n->fd, (const char *)full.data, WATCH_MASK);
        if (wd < 0) {
                r = errno;
                buf_free(&full);
                if (r == ENOSPC) {
                        if (!n->limited)
                                log_warn("cannot watch %s: the inotify watch limit is reached "
                                         "(raise it with 'sysctl fs.inotify.max_user_watches=N'); "
                                         "falling back to a full rescan every few seconds",
                                         rel[0] ? rel : "the folder");
                        n->limited = 1;
                        return 1;
                }
                if (r == ENOENT || r == ENOTDIR || r == ELOOP)
                        return 1;
                if (r == EACCES) {
                        log_warn("cannot watch %s: %s", rel, strerror(r));
                        return 1;
                }
                return err_set(-r, "cannot watch %s: %s", rel[0] ? rel : n->root, strerror(r));
        }
        buf_free(&full);
        if (rel[0] == '\0')
                n->root_wd = wd;
        return map_set(n, wd, rel);
}

/* Watches rel and every directory under it (iteratively: a deep tree must
 * not exhaust the stack). A directory that vanishes meanwhile is skipped. */
static int watch_tree(struct notify *n, const char *rel)
{
        char **stack = NULL, *cur = NULL;
        size_t nstack = 0, cap = 0;
        struct buf full = BUF_INIT, child = BUF_INIT;
        struct dirent *de;
        DIR *d;
        int r = 0;

        stack = malloc(sizeof(*stack) * 16);
        if (!stack || !(stack[0] = strdup(rel))) {
                free(stack);
                return -ENOMEM;
        }
        cap = 16;
        nstack = 1;
        while (nstack > 0 && r >= 0) {
                cur = stack[--nstack];
                r = watch_one(n, cur);
                if (r != 0) { /* gone, unwatchable, or an error */
                        r = r > 0 ? 0 : r;
                        free(cur);
                        continue;
                }
                buf_reset(&full);
                r = cur[0] ? buf_printf(&full, "%s/%s", n->root, cur)
                           : buf_append_str(&full, n->root);
                d = r < 0 ? NULL : opendir((const char *)full.data);
                while (d && r >= 0 && (de = readdir(d)) != NULL) {
                        struct stat st;

                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
                            skipped(cur, de->d_name))
                                continue;
                        if (de->d_type == DT_UNKNOWN) {
                                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                                    !S_ISDIR(st.st_mode))
                                        continue;
                        } else if (de->d_type != DT_DIR) {
                                continue;
                        }
                        if ((r = join(&child, cur, de->d_name)) < 0)
                                break;
                        if (n->ig && ignore_match(n->ig, (const char *)child.data, 1))
                                continue;
                        if (nstack == cap) {
                                char **ns = realloc(stack, sizeof(*stack) * cap * 2);

                                if (!ns) {
                                        r = -ENOMEM;
                                        break;
                                }
                                stack = ns;
                                cap *= 2;
                        }
                        if (!(stack[nstack] = strdup((const char *)child.data))) {
                                r = -ENOMEM;
                                break;
                        }
                        nstack++;
                }
                if (d)
                        closedir(d);
                free(cur);
        }
        while (nstack > 0)
                free(stack[--nstack]);
        free(stack);
        buf_free(&full);
        buf_free(&child);
        return r < 0 ? r : 0;
}

/* Drops the watches of rel and everything under it (moved away). */
static int unwatch_tree(struct notify *n, const char *rel)
{
        size_t len = strlen(rel), i, nw = 0;
        int *wds = malloc(sizeof(*wds) * (n->n + 1));

        if (!wds)
                return -ENOMEM;
        for (i = 0; i < n->cap; i++) {
                const char *p = n->tab[i].path;

                if (n->tab[i].wd && n->tab[i].wd != n->root_wd && strncmp(p, rel, len) == 0 &&
                    (p[len] == '\0' || p[len] == '/'))
                        wds[nw++] = n->tab[i].wd;
        }
        for (i = 0; i < nw; i++) {
                inotify_rm_watch(n->fd, wds[i]);
                map_del(n, wds[i]);
        }
        free(wds);
        return 0;
}

/* The watch on .ferry/ for rules.json. Not having it only delays a rules
 * change to the next round, so a failure is logged, not fatal. */
static void watch_state(struct notify *n)
{
        struct buf full = BUF_INIT;

        if (buf_printf(&full, "%s/%s", n->root, PATH_STATE_DIR) == 0)
                n->state_wd = inotify_add_watch(n->fd, (const char *)full.data, STATE_MASK);
        if (n->state_wd < 0)
                log_debug("cannot watch %s: %s", PATH_STATE_DIR, strerror(errno));
        buf_free(&full);
}

int notify_open(const char *root, const struct ignore *ig, struct notify **out)
{
        struct notify *n = calloc(1, sizeof(*n));
        int r;

        if (!n)
                return -ENOMEM;
        n->root_wd = -1;
        n->state_wd = -1;
        n->ig = ig;
        n->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        n->root = strdup(root);
        if (n->fd < 0) {
                r = err_set(-errno, "cannot start inotify: %s", strerror(errno));
                goto out;
        }
        if (!n->root || grow(n) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = watch_tree(n, "");
        if (r == 0 && n->root_wd < 0)
                r = err_set(-ENOENT, "cannot watch the folder %s", root);
        if (r == 0)
                watch_state(n);
out:
        if (r < 0) {
                notify_close(n);
                return r;
        }
        *out = n;
        return 0;
}

void notify_close(struct notify *n)
{
        if (!n)
                return;
        if (n->fd >= 0)
                close(n->fd);
        for (size_t i = 0; i < n->cap; i++)
                free(n->tab[i].path);
        free(n->tab);
        free(n->root);
        free(n);
}

int notify_fd(const struct notify *n)
{
        return n->fd;
}

int notify_limited(const struct notify *n)
{
        return n->limited;
}

size_t notify_count(const struct notify *n)
{
        return n->n;
}

int notify_rewalk(struct notify *n)
{
        return watch_tree(n, "");
}

int notify_set_ignore(struct notify *n, const struct ignore *ig)
{
        size_t i, nw = 0;
        int *wds;

        n->ig = ig; /* first: the old patterns may be gone already */
        wds = malloc(sizeof(*wds) * (n->n + 1));
        if (!wds)
                return -ENOMEM;
        for (i = 0; i < n->cap; i++)
                if (n->tab[i].wd && n->tab[i].wd != n->root_wd && ig &&
                    ignore_match(ig, n->tab[i].path, 1))
                        wds[nw++] = n->tab[i].wd;
        for (i = 0; i < nw; i++) {
                inotify_rm_watch(n->fd, wds[i]);
                map_del(n, wds[i]);
        }
        free(wds);
        return watch_tree(n, "");
}

/* What a new non-directory is: a regular file is being written until it
 * is closed; a link or anything else is complete at once. */
static unsigned created_kind(struct notify *n, const char *rel)
{
        struct buf full = BUF_INIT;
        struct stat st;
        unsigned what = NOTIFY_CHANGED;

        if (buf_printf(&full, "%s/%s", n->root, rel) == 0 &&
            lstat((const char *)full.data, &st) == 0 && S_ISREG(st.st_mode))
                what = NOTIFY_WRITING;
        buf_free(&full);
        return what;
}

static int handle(struct notify *n, const struct inotify_event *ev, struct buf *p, notify_cb cb,
                  void *ud)
{
        struct slot *s;
        const char *dir;
        int r;

        if (ev->mask & IN_Q_OVERFLOW) {
                cb(ud, "", NOTIFY_RESCAN);
                return 0;
        }
        if (ev->wd == n->root_wd && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
                cb(ud, "", NOTIFY_ROOT_GONE);
                return 0;
        }
        if (ev->wd == n->state_wd) {
                if (ev->mask & IN_IGNORED)
                        n->state_wd = -1;
                else if (ev->len > 0 && strcmp(ev->name, RULES_FILE) == 0)
                        cb(ud, "", NOTIFY_RULES);
                return 0;
        }
        s = lookup(n, ev->wd);
        if (!s)
                return 0; /* a watch dropped since (moved away) */
        if (ev->mask & IN_IGNORED) {
                map_del(n, ev->wd);
                return 0;
        }
        if (ev->len == 0 || ev->name[0] == '\0')
                return 0; /* about the directory itself: its parent reports it */
        dir = s->path;
        if (skipped(dir, ev->name))
                return 0;
        if ((r = join(p, dir, ev->name)) < 0)
                return r;
        if (n->ig && ignore_match(n->ig, (const char *)p->data, (ev->mask & IN_ISDIR) != 0))
                return 0; /* never leaves the device: nothing to do */
        {
                const char *path = (const char *)p->data;

                if (ev->mask & IN_ISDIR) {
                        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                                r = watch_tree(n, path);
                                if (r < 0)
                                        return r;
                        } else if (ev->mask & IN_MOVED_FROM) {
                                r = unwatch_tree(n, path);
                                if (r < 0)
                                        return r;
                        }
                        /* the lookup above may be stale after a rehash; path
                         * lives in p, not in the table */
                        if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE))
                                cb(ud, path,
                                   NOTIFY_CHANGED |
                                       (ev->mask & (IN_MOVED_FROM | IN_DELETE) ? NOTIFY_GONE : 0));
                        return 0;
                }
                if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
                        cb(ud, path, NOTIFY_CHANGED | NOTIFY_GONE);
                else if (ev->mask & IN_CLOSE_WRITE)
                        cb(ud, path, NOTIFY_CLOSED);
                else if (ev->mask & IN_MODIFY)
                        cb(ud, path, NOTIFY_WRITING);
                else if (ev->mask & IN_CREATE)
                        cb(ud, path, created_kind(n, path));
                else if (ev->mask & (IN_MOVED_TO | IN_ATTRIB))
                        cb(ud, path, NOTIFY_CHANGED);
        }
        return 0;
}

int notify_read(struct notify *n, notify_cb cb, void *ud)
{
        char ebuf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
        struct buf p = BUF_INIT;
        ssize_t len;
        int r = 0;

        for (;;) {
                len = read(n->fd, ebuf, sizeof(ebuf));
                if (len < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                r = err_set(-errno, "cannot read inotify events: %s",
                                            strerror(errno));
                        break;
                }
                for (char *q = ebuf; q < ebuf + len && r == 0;) {
                        const struct inotify_event *ev = (const struct inotify_event *)q;

                        r = handle(n, ev, &p, cb, ud);
                        q += sizeof(*ev) + ev->len;
                }
                if (r < 0)
                        break;
        }
        buf_free(&p);
        return r;
}
