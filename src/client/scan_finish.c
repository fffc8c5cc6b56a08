/* scan_finish: the scan's second pass (see scan.h), shared by the full and
 * the targeted scan: pairs of "new file" + "vanished file with the same
 * content" become renames, the remaining vanished entries deletes, the
 * changes are put in an order the server can apply, and the stat refreshes
 * of unchanged files are written to the index.
 *
 * Held files (the rules hold them back, scan_options.hold) were not read by
 * the walk, nor were large new files left for the upload to read
 * (scan_options.stream_min). One that may be a synced file moved (same
 * size, mtime and mode as a vanished one) is read here, and when its
 * content matches it becomes a rename, a held one a held rename: the caller
 * then sends neither the delete of the old name nor the new file. Under
 * since-last-sync nothing is deleted or renamed.
 *
 * Ignored entries (scan_options.ignore) that vanished are not deletes: an
 * ignored file never leaves the device, not even as its deletion.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "ignore.h"
#include "path.h"
#include "rules.h"
#include "scan.h"
#include "scan_int.h"

static int cmp_by_hash(const void *a, const void *b)
{
        const struct known *x = *(struct known *const *)a, *y = *(struct known *const *)b;
        int c = memcmp(x->e.hash.b, y->e.hash.b, HASH_LEN);

        return c ? c : strcmp(x->e.path, y->e.path);
}

/* Whether a vanished file may be what the held new file c was moved from:
 * mv keeps size, mtime and mode. */
static int may_be_moved(const struct known *g, const struct local_change *c)
{
        return !g->renamed && g->e.size == c->size && g->e.mtime_ns == c->mtime_ns &&
               g->e.mode == c->mode;
}

/* Reads the unread new files (held, or left for the upload to read,
 * local_change.stream) that may be moved synced files (their content is
 * needed to tell), so find_renames can match them. A held file that cannot
 * be read stays a plain held file; an unread one stays unread. */
static int hash_unread_candidates(struct scan *sc, struct known **gone, size_t ngone)
{
        struct local_change *c;
        struct stat st;
        size_t i, j;
        int dfd, r;

        for (i = 0; i < sc->out->n; i++) {
                c = &sc->out->changes[i];
                if (!(c->held || c->stream) || c->op != CHANGE_PUT || c->kind != KIND_FILE ||
                    scan_find_known(sc, c->path))
                        continue;
                for (j = 0; j < ngone && !may_be_moved(gone[j], c); j++)
                        ;
                if (j == ngone)
                        continue;
                dfd = scan_open_parent(sc->rfd, c->path);
                if (dfd == -ENOMEM)
                        return dfd;
                if (dfd < 0)
                        continue;
                r = scan_hash_file(dfd, path_basename(c->path), c->path, &st, NULL, &c->manifest);
                close(dfd);
                if (r < 0)
                        return r;
                if (r > 0 || (uint64_t)st.st_size != c->size) {
                        manifest_free(&c->manifest);
                        memset(&c->manifest, 0, sizeof(c->manifest));
                } else {
                        c->stream = 0;
                }
        }
        return 0;
}

/* New files whose content, mode and mtime equal those of a vanished file
 * become renames of it (each vanished file used once). mv keeps mtime and
 * mode; a copy that changed either is uploaded as a new version instead,
 * which costs no chunk upload anyway. A held new file is matched only when
 * it was read (hash_unread_candidates). */
static int find_renames(struct scan *sc)
{
        struct known **gone = NULL;
        size_t ngone = 0, i, lo, hi;
        int r = 0;

        for (i = 0; i < sc->nknown; i++)
                if (!sc->known[i].seen && sc->known[i].e.kind == KIND_FILE)
                        ngone++;
        if (ngone == 0)
                return 0;
        gone = malloc(ngone * sizeof(*gone));
        if (gone == NULL)
                return -ENOMEM;
        ngone = 0;
        for (i = 0; i < sc->nknown; i++)
                if (!sc->known[i].seen && sc->known[i].e.kind == KIND_FILE)
                        gone[ngone++] = &sc->known[i];
        qsort(gone, ngone, sizeof(*gone), cmp_by_hash);
        r = hash_unread_candidates(sc, gone, ngone);
        if (r < 0)
                goto out;

        for (i = 0; i < sc->out->n; i++) {
                struct local_change *c = &sc->out->changes[i];

                if (c->op != CHANGE_PUT || c->kind != KIND_FILE || scan_find_known(sc, c->path))
                        continue;
                if ((c->held || c->stream) && hash_is_zero(&c->manifest.file_hash))
                        continue; /* not read */
                lo = 0;
                hi = ngone;
                while (lo < hi) { /* first with hash >= the new file's */
                        size_t mid = lo + (hi - lo) / 2;

                        if (memcmp(gone[mid]->e.hash.b, c->manifest.file_hash.b, HASH_LEN) < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                for (; lo < ngone && hash_equal(&gone[lo]->e.hash, &c->manifest.file_hash); lo++) {
                        struct known *g = gone[lo];

                        if (g->renamed || g->e.mode != c->mode || g->e.mtime_ns != c->mtime_ns)
                                continue;
                        c->from = strdup(g->e.path);
                        if (c->from == NULL) {
                                r = -ENOMEM;
                                goto out;
                        }
                        c->op = CHANGE_RENAME;
                        c->base = g->e.seq;
                        g->renamed = 1;
                        break;
                }
        }
out:
        free(gone);
        return r;
}

/* Whether a vanished entry is one the rules keep on this device only. */
static int kept_local(const struct scan *sc, const struct known *k)
{
        const char *p = k->e.path;
        size_t n = strlen(RULES_BACKUP_PREFIX);

        if (strncmp(p, RULES_BACKUP_PREFIX, n) == 0 && (p[n] == '\0' || p[n] == '/'))
                return 1;
        return sc->opt->ignore && ignore_match(sc->opt->ignore, p, k->e.kind == KIND_DIR);
}

static int add_deletes(struct scan *sc)
{
        struct local_change *c;
        size_t i;

        for (i = 0; i < sc->nknown; i++) {
                struct known *k = &sc->known[i];

                if (k->seen || k->renamed || kept_local(sc, k))
                        continue;
                c = scan_add_change(sc, CHANGE_DELETE, k->e.path);
                if (c == NULL)
                        return -ENOMEM;
                c->kind = k->e.kind;
                c->base = k->e.seq;
                sc->out->deletes++;
        }
        return 0;
}

/* Puts and renames in path order (a parent sorts before its children), then
 * deletes in reverse path order (children before their parent). */
static int cmp_change(const void *a, const void *b)
{
        const struct local_change *x = a, *y = b;
        int xd = x->op == CHANGE_DELETE, yd = y->op == CHANGE_DELETE;

        if (xd != yd)
                return xd - yd;
        return xd ? strcmp(y->path, x->path) : strcmp(x->path, y->path);
}

static int apply_refreshes(struct scan *sc)
{
        size_t i;
        int r;

        if (sc->nrefresh == 0)
                return 0;
        r = index_begin(sc->idx);
        if (r < 0)
                return r;
        for (i = 0; i < sc->nrefresh && r == 0; i++)
                r = index_put(sc->idx, &sc->refresh[i].e, &sc->refresh[i].m);
        if (r < 0) {
                index_rollback(sc->idx);
                return r;
        }
        return index_commit(sc->idx);
}

int scan_finish(struct scan *sc)
{
        int r;

        if (!sc->opt->since && ((r = find_renames(sc)) < 0 || (r = add_deletes(sc)) < 0))
                return r;
        if (sc->out->n > 1)
                qsort(sc->out->changes, sc->out->n, sizeof(*sc->out->changes), cmp_change);
        return apply_refreshes(sc);
}

void scan_cleanup(struct scan *sc, int r)
{
        size_t i;

        for (i = 0; i < sc->nrefresh; i++)
                manifest_free(&sc->refresh[i].m);
        free(sc->refresh);
        for (i = 0; i < sc->nknown; i++)
                index_entry_free(&sc->known[i].e);
        free(sc->known);
        for (i = 0; i < sc->nheld; i++)
                free(sc->held[i].path);
        free(sc->held);
        if (r < 0)
                scan_result_free(sc->out);
}
