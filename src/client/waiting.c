/* waiting: the summary of other devices' unfinished uploads (see
 * waiting.h). */
#include "waiting.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "path.h"

/* waiting.json is a few hundred bytes a device. */
#define WAITING_MAX_BYTES (4 * 1024 * 1024)

static int open_status(const char *st)
{
        return st && (!strcmp(st, "pending") || !strcmp(st, "uploading") || !strcmp(st, "failed"));
}

/* The summary object of device id in devs, created (from the answer's
 * device list) when missing. */
static json_t *dev_of(json_t *devs, const json_t *known, const char *id, const char *name)
{
        json_t *d, *k, *found = NULL;
        size_t i;

        json_array_foreach(devs, i, d)
        {
                if (!strcmp(json_string_value(json_object_get(d, "device")), id))
                        return d;
        }
        json_array_foreach(known, i, k)
        {
                const char *kid = json_string_value(json_object_get(k, "id"));

                if (kid && !strcmp(kid, id))
                        found = k;
        }
        d = json_pack(
            "{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:n}", "device", id, "name",
            json_string_value(json_object_get(found, "name"))
                ? json_string_value(json_object_get(found, "name"))
                : (name ? name : ""),
            "online", json_is_true(json_object_get(found, "online")), "last_seen",
            (json_int_t)json_integer_value(json_object_get(found, "last_seen")), "files",
            (json_int_t)0, "pending", (json_int_t)0, "uploading", (json_int_t)0, "failed",
            (json_int_t)0, "bytes_total", (json_int_t)0, "bytes_done", (json_int_t)0, "reason");
        if (!d || json_array_append_new(devs, d) < 0)
                return NULL;
        return d;
}

static void add_int(json_t *o, const char *key, json_int_t v)
{
        json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + v));
}

int waiting_from_transfers(const json_t *transfers, const char *self_id, int64_t now, json_t **out)
{
        const json_t *known = json_object_get(transfers, "devices");
        json_t *w = NULL, *devs = json_array(), *b, *rec;
        size_t i, k;
        int r = -ENOMEM;

        if (!devs)
                goto out;
        json_array_foreach(json_object_get(transfers, "batches"), i, b)
        {
                const char *id = json_string_value(json_object_get(b, "device"));
                json_t *d = NULL;

                if (!id || (self_id && !strcmp(id, self_id)))
                        continue;
                json_array_foreach(json_object_get(b, "records"), k, rec)
                {
                        const char *st = json_string_value(json_object_get(rec, "status"));
                        const char *why = json_string_value(json_object_get(rec, "reason"));

                        if (!open_status(st))
                                continue;
                        if (!d) {
                                d = dev_of(devs, known, id,
                                           json_string_value(json_object_get(b, "device_name")));
                                if (!d)
                                        goto out;
                        }
                        add_int(d, "files", 1);
                        add_int(d, st, 1);
                        add_int(d, "bytes_total", json_integer_value(json_object_get(rec, "size")));
                        add_int(d, "bytes_done",
                                json_integer_value(json_object_get(rec, "bytes_done")));
                        if (!strcmp(st, "failed") && why && *why &&
                            json_is_null(json_object_get(d, "reason")))
                                json_object_set_new(d, "reason", json_string(why));
                }
        }
        w = json_pack("{s:I, s:O}", "time", (json_int_t)now, "devices", devs);
        if (w)
                r = 0;
out:
        json_decref(devs);
        *out = w;
        return r;
}

int waiting_fetch(struct remote *rem, const char *self_id, json_t **out)
{
        json_t *resp = NULL;
        int r;

        *out = NULL;
        r = remote_get_json(rem, "/api/v1/transfers?status=incomplete", &resp);
        if (r == 0 && !json_is_array(json_object_get(resp, "batches")))
                r = err_set(-EPROTO, "the server's transfers answer has no \"batches\" list");
        if (r == 0)
                r = waiting_from_transfers(resp, self_id, time(NULL), out);
        json_decref(resp);
        return r;
}

int64_t waiting_files(const json_t *w)
{
        const json_t *d;
        int64_t n = 0;
        size_t i;

        json_array_foreach(json_object_get(w, "devices"), i, d) n +=
            json_integer_value(json_object_get(d, "files"));
        return n;
}

static int file_path(struct buf *b, const char *root)
{
        return buf_printf(b, "%s/%s/%s", root, PATH_STATE_DIR, WAITING_FILE);
}

int waiting_save(const char *root, const json_t *w)
{
        struct buf p = BUF_INIT, tmp = BUF_INIT;
        char *text = NULL;
        FILE *f = NULL;
        int r;

        if ((r = file_path(&p, root)) < 0)
                goto out;
        if (!w) {
                if (unlink((const char *)p.data) < 0 && errno != ENOENT)
                        r = err_set(-errno, "cannot remove %s: %s", (const char *)p.data,
                                    strerror(errno));
                goto out;
        }
        text = json_dumps(w, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = buf_printf(&tmp, "%s.%ld.tmp", (const char *)p.data, (long)getpid())) < 0)
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
        buf_free(&p);
        buf_free(&tmp);
        return r;
}

int waiting_load(const char *root, json_t **out)
{
        struct buf p = BUF_INIT;
        char *text = NULL;
        size_t len = 0;
        json_t *j;
        int r;

        *out = NULL;
        if ((r = file_path(&p, root)) < 0)
                goto out;
        r = fsutil_read_all((const char *)p.data, WAITING_MAX_BYTES, &text, &len);
        if (r < 0) {
                /* none yet, or unreadable: nothing known */
                err_clear();
                r = 0;
                goto out;
        }
        j = json_loadb(text, len, 0, NULL);
        if (json_is_object(j) && json_is_array(json_object_get(j, "devices")))
                *out = j;
        else
                json_decref(j);
out:
        free(text);
        buf_free(&p);
        return r;
}

static void fmt_time(int64_t secs, char *out, size_t len)
{
        time_t t = (time_t)secs;
        struct tm tm;

        localtime_r(&t, &tm);
        if (strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(out, len, "%lld", (long long)secs);
}

void waiting_describe(const json_t *dev, char *out, size_t len)
{
        static const char *const states[] = {"pending", "uploading", "failed"};
        const char *name = json_string_value(json_object_get(dev, "name"));
        const char *why = json_string_value(json_object_get(dev, "reason"));
        int64_t files = json_integer_value(json_object_get(dev, "files"));
        struct buf b = BUF_INIT;
        char when[64];
        int first = 1;

        buf_printf(&b, "%lld file%s from %s (", (long long)files, files == 1 ? "" : "s",
                   name && *name ? name : "another device");
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
                int64_t k = json_integer_value(json_object_get(dev, states[i]));

                if (k == 0)
                        continue;
                buf_printf(&b, "%s%lld %s", first ? "" : ", ", (long long)k, states[i]);
                if (!strcmp(states[i], "failed") && why)
                        buf_printf(&b, ": %s", why);
                first = 0;
        }
        if (json_is_true(json_object_get(dev, "online"))) {
                buf_printf(&b, "; online)");
        } else {
                fmt_time(json_integer_value(json_object_get(dev, "last_seen")), when, sizeof(when));
                buf_printf(&b, "; offline since %s)", when);
        }
        snprintf(out, len, "%s", b.data ? (const char *)b.data : "");
        buf_free(&b);
}
