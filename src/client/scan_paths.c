/* scan_paths: the targeted scan of the watch daemon (see scan.h): instead
 * of walking the whole folder for every inotify event, it loads only the
 * index entries under the dirty paths (one range query each), opens each
 * path's parent directory component by component without following links,
 * and scans the path with the full scan's own code (scan_int.h). So a
 * change costs a few stat calls and index lookups, whatever the size of the
 * folder, and gives exactly the answer a full scan would give for those
 * paths, under the same options (ignored names skipped, held files held;
 * under since-last-sync the given paths are compared with the index, and
 * nothing is deleted). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "path.h"
#include "rules.h"
#include "scan.h"
#include "scan_int.h"

int scan_open_parent(int rfd, const char *path)
{
        char comp[NAME_MAX_BYTES + 1];
        const char *p = path, *slash;
        int dfd = dup(rfd), nfd;

        if (dfd < 0)
                return -errno;
        while ((slash = strchr(p, '/')) != NULL) {
                size_t len = (size_t)(slash - p);

                if (len == 0 || len > NAME_MAX_BYTES) {
                        close(dfd);
                        return -ENOENT;
                }
                memcpy(comp, p, len);
                comp[len] = '\0';
                nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(dfd);
                if (nfd < 0)
                        return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
                dfd = nfd;
                p = slash + 1;
        }
        return dfd;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int top_is(const char *path, const char *dir)
{
        size_t n = strlen(dir);

        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Whether path is under .ferry/ or the backup folder, or names a temporary
 * file anywhere. */
static int ignored(const char *path)
{
        const char *c;

        if (top_is(path, PATH_STATE_DIR) || top_is(path, RULES_BACKUP_PREFIX))
                return 1;
        for (c = path; c; c = strchr(c, '/')) {
                if (*c == '/')
                        c++;
                if (strncmp(c, PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX)) == 0)
                        return 1;
        }
        return 0;
}

/* The path to scan for a dirty path p (malloc'd): p itself, or its highest
 * ancestor the index does not know as a directory, so that a new directory
 * is always scanned (and put) with what it holds. */
static char *scan_root_of(struct index *idx, const char *p)
{
        struct index_entry e;
        char *q = strdup(p), *slash;
        int known;

        for (slash = q ? strchr(q, '/') : NULL; slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                known = index_get(idx, q, &e) == 0;
                if (known) {
                        known = e.kind == KIND_DIR;
                        index_entry_free(&e);
                }
                if (!known)
                        return q; /* cut at the unknown ancestor */
                *slash = '/';
        }
        err_clear();
        return q;
}

static const struct scan_options no_options;

int scan_paths_opts(const char *root, struct index *idx, const struct scan_options *o,
                    const char *const *paths, size_t n, struct scan_result *out)
{
        struct scan sc = {.root = root, .idx = idx, .out = out, .rfd = -1};
        char **set = NULL, *parent = NULL;
        size_t nset = 0, i, kept;
        int rfd = -1, dfd, r = 0;

        for (i = 0; i < n; i++)
                if (paths[i][0] == '\0')
                        return scan_folder_opts(root, idx, o, out);
        memset(out, 0, sizeof(*out));
        sc.opt = o ? o : &no_options;
        sc.started_ns = fsutil_now_ns();
        out->started_ns = sc.started_ns;
        rfd = sc.rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0) {
                r = err_set(errno == EACCES || errno == EPERM ? -EACCES : -ENOENT,
                            "the folder %s is missing or unreadable (%s); refusing to sync so "
                            "nothing is deleted",
                            root, strerror(errno));
                goto out;
        }
        set = calloc(n ? n : 1, sizeof(*set));
        if (set == NULL) {
                r = -ENOMEM;
                goto out;
        }
        for (i = 0; i < n; i++) {
                if (ignored(paths[i]))
                        continue;
                if ((set[nset] = scan_root_of(idx, paths[i])) == NULL) {
                        r = -ENOMEM;
                        goto out;
                }
                nset++;
        }
        /* sorted, a path's descendants follow it: keep only the outermost */
        qsort(set, nset, sizeof(*set), cmp_str);
        for (i = 0, kept = 0; i < nset; i++) {
                size_t len = kept ? strlen(set[kept - 1]) : 0;

                if (kept && strncmp(set[i], set[kept - 1], len) == 0 &&
                    (set[i][len] == '\0' || set[i][len] == '/')) {
                        free(set[i]);
                        continue;
                }
                set[kept++] = set[i];
        }
        nset = kept;
        for (i = 0; i < nset && r == 0; i++)
                r = index_foreach_under(idx, set[i], scan_load_known, &sc);
        for (i = 0; i < nset && r == 0; i++)
                r = scan_load_held(&sc, set[i]);
        if (r < 0)
                goto out;
        if (sc.nknown > 1)
                qsort(sc.known, sc.nknown, sizeof(*sc.known), scan_cmp_known);
        scan_sort_held(&sc);

        for (i = 0; i < nset && r == 0; i++) {
                free(parent);
                parent = path_dirname(set[i]);
                if (parent == NULL) {
                        r = -ENOMEM;
                        break;
                }
                dfd = scan_open_parent(rfd, set[i]);
                if (dfd == -ENOENT)
                        continue; /* gone with its parent: its entries become deletes */
                if (dfd < 0) {
                        log_warn("cannot read the directory of %s: %s; leaving it alone this "
                                 "round",
                                 set[i], strerror(-dfd));
                        scan_protect_subtree(&sc, set[i]);
                        continue;
                }
                r = scan_name(&sc, dfd, parent, path_basename(set[i]));
                close(dfd);
        }
        if (r == 0)
                r = scan_finish(&sc);
out:
        if (rfd >= 0)
                close(rfd);
        for (i = 0; i < nset; i++)
                free(set[i]);
        free(set);
        free(parent);
        scan_cleanup(&sc, r);
        return r;
}

int scan_paths(const char *root, struct index *idx, const char *const *paths, size_t n,
               struct scan_result *out)
{
        return scan_paths_opts(root, idx, NULL, paths, n, out);
}
