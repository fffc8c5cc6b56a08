/* wstatus: the watch's status files (see wstatus.h). watch.json is written
 * without fsync: it describes a running process and is worthless after a
 * crash, while its writes must stay cheap because they happen on every
 * transfer. */
#include "wstatus.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "path.h"

static int state_path(struct buf *b, const char *root, const char *name)
{
        buf_reset(b);
        return buf_printf(b, "%s/%s/%s", root, PATH_STATE_DIR, name);
}

int wstatus_lock(const char *root, int *fd)
{
        struct buf p = BUF_INIT;
        int f = -1, r, tries;

        r = state_path(&p, root, WSTATUS_LOCK);
        if (r < 0)
                goto out;
        f = open((const char *)p.data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f < 0) {
                r = err_set(-errno, "cannot open %s: %s", (const char *)p.data, strerror(errno));
                goto out;
        }
        /* `ferry status` takes it shared for an instant: retry briefly */
        for (tries = 0; tries < 20; tries++) {
                if (flock(f, LOCK_EX | LOCK_NB) == 0)
                        break;
                if (errno != EWOULDBLOCK) {
                        r = err_set(-errno, "cannot lock %s: %s", (const char *)p.data,
                                    strerror(errno));
                        goto out;
                }
                usleep(10000);
        }
        if (tries == 20) {
                r = err_set(-EBUSY, "another 'ferry watch' is already running on %s", root);
                goto out;
        }
        *fd = f;
        f = -1;
out:
        if (f >= 0)
                close(f);
        buf_free(&p);
        return r;
}

int wstatus_write(const char *root, const struct wstatus *w)
{
        struct buf p = BUF_INIT, tmp = BUF_INIT;
        json_t *j;
        char *text = NULL;
        FILE *f = NULL;
        int r;

        j = json_pack("{s:I, s:s, s:o, s:I, s:o, s:o, s:o, s:I, s:o}", "pid", (json_int_t)getpid(),
                      "state", w->state, "detail",
                      w->have_detail ? json_pack("{s:I, s:I}", "files", (json_int_t)w->files,
                                                 "bytes", (json_int_t)w->bytes)
                                     : json_null(),
                      "since", (json_int_t)w->since, "offline_since",
                      w->offline_since ? json_integer(w->offline_since) : json_null(), "last_error",
                      w->last_error[0] ? json_string(w->last_error) : json_null(), "last_round_ns",
                      w->last_round_ns ? json_integer(w->last_round_ns) : json_null(),
                      "last_round_ms", (json_int_t)w->last_round_ms, "waiting",
                      w->have_waiting ? json_integer(w->waiting) : json_null());
        text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (!text) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = state_path(&p, root, WSTATUS_FILE)) < 0 ||
            (r = buf_printf(&tmp, "%s.%ld.tmp", (const char *)p.data, (long)getpid())) < 0)
                goto out;
        f = fopen((const char *)tmp.data, "we");
        if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0) {
                r = err_set(-EIO, "cannot write %s: %s", (const char *)tmp.data, strerror(errno));
                goto out;
        }
        r = fclose(f);
        f = NULL;
        if (r != 0 || rename((const char *)tmp.data, (const char *)p.data) < 0) {
                r = err_set(-EIO, "cannot write %s: %s", (const char *)p.data, strerror(errno));
                unlink((const char *)tmp.data);
                goto out;
        }
        r = 0;
out:
        if (f) {
                fclose(f);
                unlink((const char *)tmp.data);
        }
        free(text);
        json_decref(j);
        buf_free(&p);
        buf_free(&tmp);
        return r;
}

void wstatus_remove(const char *root)
{
        struct buf p = BUF_INIT;

        if (state_path(&p, root, WSTATUS_FILE) == 0)
                unlink((const char *)p.data);
        buf_free(&p);
}

/* 1 when a process holds root's watch lock. */
static int watch_running(const char *root)
{
        struct buf p = BUF_INIT;
        int f, busy = 0;

        if (state_path(&p, root, WSTATUS_LOCK) == 0) {
                f = open((const char *)p.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (f >= 0) {
                        busy = flock(f, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
                        close(f);
                }
        }
        buf_free(&p);
        return busy;
}

int wstatus_read(const char *root, json_t **out)
{
        struct buf p = BUF_INIT;
        json_t *j = NULL, *pid;
        int r = 0;

        *out = NULL;
        if (!watch_running(root))
                goto out;
        if ((r = state_path(&p, root, WSTATUS_FILE)) < 0)
                goto out;
        j = json_load_file((const char *)p.data, 0, NULL);
        pid = json_object_get(j, "pid");
        if (json_is_integer(pid) && json_integer_value(pid) > 0 &&
            (kill((pid_t)json_integer_value(pid), 0) == 0 || errno == EPERM)) {
                *out = j;
                j = NULL;
        }
out:
        json_decref(j);
        buf_free(&p);
        return r;
}

static void human_bytes(int64_t n, char *out, size_t len)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double)n;
        int u = 0;

        while (v >= 1024 && u < 4) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(out, len, "%lld B", (long long)n);
        else
                snprintf(out, len, "%.1f %s", v, units[u]);
}

void wstatus_describe(const json_t *w, char *out, size_t len)
{
        const char *state = json_string_value(json_object_get(w, "state"));
        const json_t *d = json_object_get(w, "detail");
        json_t *off = json_object_get(w, "offline_since");
        int64_t waiting = json_integer_value(json_object_get(w, "waiting"));
        char size[32], when[32];
        size_t n;
        time_t t;
        struct tm tm;

        if (!state)
                state = "unknown";
        if (json_is_integer(off)) {
                t = (time_t)json_integer_value(off);
                localtime_r(&t, &tm);
                strftime(when, sizeof(when), "%H:%M:%S", &tm);
        }
        if (!strcmp(state, "offline") && json_is_integer(off)) {
                snprintf(out, len, "offline since %s (retrying)", when);
        } else if ((!strcmp(state, "uploading") || !strcmp(state, "downloading")) &&
                   json_is_object(d)) {
                int64_t files = json_integer_value(json_object_get(d, "files"));

                human_bytes(json_integer_value(json_object_get(d, "bytes")), size, sizeof(size));
                snprintf(out, len, "%s %lld file%s (%s)", state, (long long)files,
                         files == 1 ? "" : "s", size);
        } else {
                snprintf(out, len, "%s", state);
        }
        n = strlen(out);
        if (waiting > 0 && n < len)
                snprintf(out + n, len - n, ", waiting for %lld file%s", (long long)waiting,
                         waiting == 1 ? "" : "s");
}
