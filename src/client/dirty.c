/* dirty: the set of dirty paths (see dirty.h): an array of entries with an
 * open-addressing hash index on the path, rebuilt whenever entries are
 * taken out (once per round), so that a burst of a hundred thousand events
 * costs one lookup each. */
#include "dirty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"
#include "watch.h"

#define MS 1000000LL

struct entry {
        char *path;
        int64_t first_ns; /* first event since it became dirty */
        int64_t last_ns;  /* last event */
        int writing;
};

struct dirty_set {
        struct entry *e;
        size_t n, cap;
        size_t *slot;          /* index + 1 into e; 0 empty */
        size_t nslot;          /* power of two, > 2 n */
        int64_t last_event_ns; /* newest event that was not a write */
};

static uint64_t hash_str(const char *s)
{
        uint64_t h = 1469598103934665603ULL;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static int rebuild(struct dirty_set *d, size_t want)
{
        size_t ns = 64, i, j;
        size_t *slot;

        while (ns < want * 2 + 2)
                ns *= 2;
        slot = calloc(ns, sizeof(*slot));
        if (!slot)
                return -ENOMEM;
        for (i = 0; i < d->n; i++) {
                for (j = hash_str(d->e[i].path) & (ns - 1); slot[j]; j = (j + 1) & (ns - 1))
                        ;
                slot[j] = i + 1;
        }
        free(d->slot);
        d->slot = slot;
        d->nslot = ns;
        return 0;
}

int dirty_new(struct dirty_set **out)
{
        struct dirty_set *d = calloc(1, sizeof(*d));

        if (!d || rebuild(d, 0) < 0) {
                free(d);
                return -ENOMEM;
        }
        *out = d;
        return 0;
}

void dirty_free(struct dirty_set *d)
{
        if (!d)
                return;
        for (size_t i = 0; i < d->n; i++)
                free(d->e[i].path);
        free(d->e);
        free(d->slot);
        free(d);
}

static struct entry *find_or_add(struct dirty_set *d, const char *path, int64_t now)
{
        size_t j;
        struct entry *e;

        for (j = hash_str(path) & (d->nslot - 1); d->slot[j]; j = (j + 1) & (d->nslot - 1))
                if (!strcmp(d->e[d->slot[j] - 1].path, path))
                        return &d->e[d->slot[j] - 1];
        if (d->n == d->cap) {
                size_t ncap = d->cap ? d->cap * 2 : 64;
                struct entry *ne = realloc(d->e, ncap * sizeof(*ne));

                if (!ne)
                        return NULL;
                d->e = ne;
                d->cap = ncap;
        }
        e = &d->e[d->n];
        memset(e, 0, sizeof(*e));
        e->path = strdup(path);
        if (!e->path)
                return NULL;
        e->first_ns = now;
        d->n++;
        if (d->n * 2 + 2 <= d->nslot) {
                d->slot[j] = d->n; /* the empty slot the probe ended on */
        } else if (rebuild(d, d->n) < 0) {
                free(e->path);
                d->n--;
                return NULL;
        }
        return e;
}

int dirty_mark(struct dirty_set *d, const char *path, unsigned what, int64_t now)
{
        struct entry *e = find_or_add(d, path, now);

        if (!e)
                return -ENOMEM;
        e->last_ns = now;
        if (what & (NOTIFY_CLOSED | NOTIFY_GONE))
                e->writing = 0;
        else if (what & NOTIFY_WRITING)
                e->writing = 1;
        if (!(what & NOTIFY_WRITING) || (what & (NOTIFY_CLOSED | NOTIFY_GONE)))
                d->last_event_ns = now;
        return 0;
}

static int under(const char *p, const char *dir)
{
        size_t n = strlen(dir);

        return n == 0 || (strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/'));
}

/* The entries being written (indices into d->e), malloc'd; *nw of them. */
static size_t *writing_list(const struct dirty_set *d, size_t *nw)
{
        size_t *w = malloc((d->n ? d->n : 1) * sizeof(*w));

        *nw = 0;
        for (size_t i = 0; w && i < d->n; i++)
                if (d->e[i].writing)
                        w[(*nw)++] = i;
        return w;
}

/* When entry i may go: its own settle time, and not before the files being
 * written under it are done. */
static int64_t ready_at(const struct dirty_set *d, size_t i, const size_t *w, size_t nw)
{
        const struct entry *e = &d->e[i];
        int64_t t = e->last_ns + (e->writing ? WATCH_WRITE_QUIET_MS : WATCH_SETTLE_MS) * MS;

        for (size_t k = 0; k < nw; k++) {
                const struct entry *x = &d->e[w[k]];

                if (w[k] != i && under(x->path, e->path) &&
                    x->last_ns + WATCH_WRITE_QUIET_MS * MS > t)
                        t = x->last_ns + WATCH_WRITE_QUIET_MS * MS;
        }
        return t;
}

int64_t dirty_due(const struct dirty_set *d)
{
        int64_t first = DIRTY_NEVER, due = DIRTY_NEVER, t;
        size_t nw, i, *w = writing_list(d, &nw);

        if (!w)
                return 0; /* out of memory: let the caller try a round now */
        for (i = 0; i < d->n; i++) {
                t = ready_at(d, i, w, nw);
                if (t < due)
                        due = t;
                if (!d->e[i].writing && d->e[i].first_ns < first)
                        first = d->e[i].first_ns;
        }
        free(w);
        if (due == DIRTY_NEVER)
                return due;
        /* batch a burst: wait for the events to pause, within limits */
        t = d->last_event_ns + WATCH_SETTLE_MS * MS;
        if (first != DIRTY_NEVER && first + WATCH_MAX_DELAY_MS * MS < t)
                t = first + WATCH_MAX_DELAY_MS * MS;
        return t > due ? t : due;
}

int dirty_take(struct dirty_set *d, int64_t now, char ***paths, size_t *n)
{
        char **out = malloc((d->n ? d->n : 1) * sizeof(*out));
        int64_t *when = malloc((d->n ? d->n : 1) * sizeof(*when));
        size_t i, kept = 0, nw, *w = writing_list(d, &nw);

        *paths = NULL;
        *n = 0;
        if (!out || !when || !w) {
                free(out);
                free(when);
                free(w);
                return -ENOMEM;
        }
        /* decide for all entries first: ready_at looks at the others */
        for (i = 0; i < d->n; i++)
                when[i] = ready_at(d, i, w, nw);
        free(w);
        for (i = 0; i < d->n; i++) {
                if (when[i] <= now)
                        out[(*n)++] = d->e[i].path;
                else
                        d->e[kept++] = d->e[i];
        }
        free(when);
        d->n = kept;
        if (rebuild(d, d->n) < 0) {
                /* the index is lost: put the taken ones back is not possible
                 * either; the caller treats this as fatal */
                dirty_paths_free(out, *n);
                *n = 0;
                return -ENOMEM;
        }
        *paths = out;
        return 0;
}

int dirty_put_back(struct dirty_set *d, char **paths, size_t n, int64_t now)
{
        int r = 0;

        for (size_t i = 0; i < n; i++) {
                if (r == 0)
                        r = dirty_mark(d, paths[i], NOTIFY_CHANGED, now - WATCH_SETTLE_MS * MS);
                free(paths[i]);
        }
        free(paths);
        return r;
}

int dirty_writing(const struct dirty_set *d, int64_t now)
{
        for (size_t i = 0; i < d->n; i++)
                if (d->e[i].writing && d->e[i].last_ns + WATCH_WRITE_QUIET_MS * MS > now)
                        return 1;
        return 0;
}

size_t dirty_count(const struct dirty_set *d)
{
        return d->n;
}

void dirty_paths_free(char **paths, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
}
