/* progress: the progress line of `ferry sync` (see progress.h).
 *
 * The rate is measured over a sliding window of recent samples (about
 * three seconds) rather than since the start, so that it follows a link
 * that speeds up or slows down, and a pause between requests (the server
 * committing, the next batch being read) does not make it jump. The ETA
 * divides what the phase still has to move by that rate; the planned bytes
 * are file sizes, so when compression or deduplication sends less the ETA
 * errs long and the round simply ends early. It is left out when there is
 * no plan or nothing to divide by.
 *
 * Redrawing is "\r" + line + "erase to end of line", cut to the terminal's
 * width so that it never wraps (a wrapped line cannot be redrawn in place).
 */
#include "progress.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* the rate window: RING samples taken at least SAMPLE_NS apart */
#define RING 16
#define SAMPLE_NS 200000000LL
#define LINE_MAX_LEN 512

struct sample {
        int64_t t, up, down;
};

struct progress {
        pthread_mutex_t mu;
        FILE *out;
        int width;
        int started, drawn;
        int64_t t0, last_draw;
        int64_t up, down; /* the latest counters */
        /* the current phase's plan */
        int have_dir;
        enum progress_dir dir;
        int64_t files, total;
        int64_t base; /* the direction's counter when the phase began */
        struct sample ring[RING];
        int nring, head; /* head: the oldest sample */
};

void progress_human(int64_t bytes, char *out, size_t len)
{
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
        double v;
        int u = 0;

        if (bytes < 1024) {
                snprintf(out, len, "%lld B", (long long)(bytes < 0 ? 0 : bytes));
                return;
        }
        v = (double)bytes / 1024.0;
        /* 1023.96 KiB would print as "1024.0 KiB" */
        while (v >= 1023.95 && u < 3) {
                v /= 1024.0;
                u++;
        }
        snprintf(out, len, "%.1f %s", v, units[u]);
}

void progress_eta(int64_t secs, char *out, size_t len)
{
        long long s = secs < 0 ? 0 : (long long)secs;

        if (s >= 3600)
                snprintf(out, len, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
        else
                snprintf(out, len, "%lld:%02lld", s / 60, s % 60);
}

void progress_format(const struct progress_view *v, int width, char *out, size_t len)
{
        char line[LINE_MAX_LEN], a[32], b[32], rate[32], eta[32];
        size_t n = 0, max;

        progress_human((int64_t)v->rate, rate, sizeof(rate));
        if (v->have_dir && (v->files > 0 || v->total > 0)) {
                /* the phase's own direction against its plan */
                progress_human(v->moved, a, sizeof(a));
                progress_human(v->total, b, sizeof(b));
                n = (size_t)snprintf(line, sizeof(line), "%s %lld file%s, %s of %s, %s/s",
                                     v->dir == PROGRESS_UP ? "uploading" : "downloading",
                                     (long long)v->files, v->files == 1 ? "" : "s", a, b, rate);
                if (v->total > v->moved && v->rate >= 1.0) {
                        progress_eta((int64_t)((double)(v->total - v->moved) / v->rate + 0.5), eta,
                                     sizeof(eta));
                        snprintf(line + n, sizeof(line) - n, ", ETA %s", eta);
                }
        } else {
                progress_human(v->up, a, sizeof(a));
                progress_human(v->down, b, sizeof(b));
                snprintf(line, sizeof(line), "syncing: sent %s, received %s, %s/s", a, b, rate);
        }
        max = width > 1 ? (size_t)width - 1 : 0;
        if (max >= len)
                max = len - 1;
        snprintf(out, max + 1, "%s", line);
}

int progress_new(FILE *out, int width, struct progress **pp)
{
        struct progress *p = calloc(1, sizeof(*p));
        struct winsize ws;

        if (!p)
                return -ENOMEM;
        if (width <= 0) {
                width = 80;
                if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                        width = ws.ws_col;
        }
        pthread_mutex_init(&p->mu, NULL);
        p->out = out;
        p->width = width;
        *pp = p;
        return 0;
}

void progress_free(struct progress *p)
{
        if (!p)
                return;
        if (p->drawn) {
                fputs("\r\033[K", p->out);
                fflush(p->out);
        }
        pthread_mutex_destroy(&p->mu);
        free(p);
}

void progress_plan(struct progress *p, enum progress_dir dir, int64_t files, int64_t bytes)
{
        pthread_mutex_lock(&p->mu);
        if (!p->have_dir || p->dir != dir) {
                p->have_dir = 1;
                p->dir = dir;
                p->files = 0;
                p->total = 0;
                p->base = dir == PROGRESS_UP ? p->up : p->down;
        }
        p->files += files;
        p->total += bytes;
        pthread_mutex_unlock(&p->mu);
}

/* Rate of one direction (dir < 0: both) over the window, bytes/s. */
static double window_rate(const struct progress *p, int64_t now, int dir)
{
        const struct sample *o = &p->ring[p->head];
        int64_t moved;

        if (p->nring == 0 || now <= o->t)
                return 0.0;
        if (dir == PROGRESS_UP)
                moved = p->up - o->up;
        else if (dir == PROGRESS_DOWN)
                moved = p->down - o->down;
        else
                moved = p->up + p->down - o->up - o->down;
        return (double)moved * 1e9 / (double)(now - o->t);
}

static void add_sample(struct progress *p, int64_t now)
{
        int newest = (p->head + p->nring - 1) % RING;

        if (p->nring > 0 && now - p->ring[newest].t < SAMPLE_NS)
                return;
        if (p->nring == RING) {
                p->ring[p->head] = (struct sample){now, p->up, p->down};
                p->head = (p->head + 1) % RING;
        } else {
                p->ring[(p->head + p->nring) % RING] = (struct sample){now, p->up, p->down};
                p->nring++;
        }
}

int progress_update(struct progress *p, int64_t now_ns, int64_t up, int64_t down)
{
        struct progress_view v = {0};
        char line[LINE_MAX_LEN];
        int drew = 0;

        pthread_mutex_lock(&p->mu);
        p->up = up;
        p->down = down;
        if (!p->started) {
                p->started = 1;
                p->t0 = now_ns;
        }
        add_sample(p, now_ns);
        if (now_ns - p->t0 < PROGRESS_DELAY_NS ||
            (p->drawn && now_ns - p->last_draw < PROGRESS_INTERVAL_NS))
                goto out;
        v.have_dir = p->have_dir;
        v.dir = p->dir;
        v.files = p->files;
        v.total = p->total;
        v.moved = (p->dir == PROGRESS_UP ? up : down) - p->base;
        v.up = up;
        v.down = down;
        v.rate = window_rate(p, now_ns, p->have_dir ? (int)p->dir : -1);
        progress_format(&v, p->width, line, sizeof(line));
        fprintf(p->out, "\r%s\033[K", line);
        fflush(p->out);
        p->drawn = 1;
        p->last_draw = now_ns;
        drew = 1;
out:
        pthread_mutex_unlock(&p->mu);
        return drew;
}
