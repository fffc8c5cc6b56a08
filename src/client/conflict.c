/* conflict: builds the name of the copy Ferry keeps when two devices changed
 * the same file, "dir/stem (conflict from DEVICE YYYY-MM-DD HHMMSS).ext",
 * reads such names back and finds them in a folder (see conflict.h).
 *
 * The result must itself be a valid Ferry path (it is uploaded like any other
 * file), so the device name is sanitized (no '/', backslash, control
 * characters or broken UTF-8 in it) and the stem is shortened, on a UTF-8
 * character boundary, until the last component fits NAME_MAX_BYTES and the
 * whole path fits PATH_MAX_BYTES.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "conflict.h"
#include "err.h"
#include "path.h"

/* Longest device name kept in a conflict name; the server allows 64
 * characters, so this only bites for locally configured oddities. */
#define DEVICE_MAX_BYTES 64

/* Length of the valid UTF-8 sequence starting at p (at most n bytes
 * available), or 0 when the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
        unsigned char c = p[0];
        size_t len, i;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                len = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                cp = c & 0x07;
        } else {
                return 0;
        }
        if (len > n)
                return 0;
        for (i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/* Copies the device name into out, replacing whatever could not appear in a
 * path component by '_', and cutting it at DEVICE_MAX_BYTES. */
static int sanitize_device(const char *name, struct buf *out)
{
        const unsigned char *p = (const unsigned char *)(name ? name : "");
        size_t n = strlen((const char *)p), i = 0, len;
        int r;

        while (i < n && out->len < DEVICE_MAX_BYTES) {
                len = utf8_seq_len(p + i, n - i);
                if (len == 0 ||
                    (len == 1 && (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/' || p[i] == '\\'))) {
                        r = buf_append(out, "_", 1);
                        i += len ? len : 1;
                } else {
                        if (out->len + len > DEVICE_MAX_BYTES)
                                break;
                        r = buf_append(out, p + i, len);
                        i += len;
                }
                if (r < 0)
                        return r;
        }
        if (out->len == 0)
                return buf_append_str(out, "unknown");
        return 0;
}

/* The largest k <= want such that s[0..k) does not end inside a UTF-8
 * sequence. */
static size_t utf8_cut(const char *s, size_t want)
{
        size_t k = want;

        while (k > 0 && (((unsigned char)s[k]) & 0xc0) == 0x80)
                k--;
        return k;
}

char *conflict_name(const char *path, const char *device_name, time_t when)
{
        struct buf dev = BUF_INIT, out = BUF_INIT;
        const char *base = path_basename(path);
        size_t dir_len = (size_t)(base - path); /* includes the '/' */
        size_t base_len = strlen(base), stem_len, ext_len, budget;
        const char *dot = strrchr(base, '.');
        char suffix[160], stamp[32];
        char *result = NULL;
        struct tm tm;
        int n;

        /* ".bashrc" has no extension, and neither has "name." */
        if (dot == NULL || dot == base || dot[1] == '\0')
                dot = base + base_len;
        stem_len = (size_t)(dot - base);
        ext_len = base_len - stem_len;

        if (localtime_r(&when, &tm) == NULL ||
            strftime(stamp, sizeof(stamp), "%Y-%m-%d %H%M%S", &tm) == 0)
                snprintf(stamp, sizeof(stamp), "%lld", (long long)when);
        if (sanitize_device(device_name, &dev) < 0)
                goto out;
        n = snprintf(suffix, sizeof(suffix), " (conflict from %s %s)", (const char *)dev.data,
                     stamp);
        if (n < 0 || (size_t)n >= sizeof(suffix))
                goto out;

        budget = NAME_MAX_BYTES;
        if (dir_len < PATH_MAX_BYTES && PATH_MAX_BYTES - dir_len < budget)
                budget = PATH_MAX_BYTES - dir_len;
        /* An extension too long to keep next to the suffix and one stem byte
         * is treated as part of the stem, which gets shortened. */
        if ((size_t)n + ext_len + 1 > budget) {
                stem_len = base_len;
                ext_len = 0;
        }
        if (stem_len + (size_t)n + ext_len > budget) {
                size_t room = budget > (size_t)n + ext_len ? budget - (size_t)n - ext_len : 0;
                stem_len = utf8_cut(base, room);
        }

        if (buf_append(&out, path, dir_len) < 0 || buf_append(&out, base, stem_len) < 0 ||
            buf_append(&out, suffix, (size_t)n) < 0 ||
            buf_append(&out, base + base_len - ext_len, ext_len) < 0)
                goto out;
        result = (char *)buf_steal(&out, NULL);
out:
        buf_free(&dev);
        buf_free(&out);
        return result;
}

#define MARK " (conflict from "
#define MARK_LEN (sizeof(MARK) - 1)
/* " YYYY-MM-DD HHMMSS" before the closing parenthesis */
#define STAMP_LEN 18

/* The two digits at p as a number in [lo, hi], or -1. */
static int two_digits(const char *p, int lo, int hi)
{
        int v;

        if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
                return -1;
        v = (p[0] - '0') * 10 + (p[1] - '0');
        return v >= lo && v <= hi ? v : -1;
}

/* Whether s[0..STAMP_LEN) is " YYYY-MM-DD HHMMSS"; fills stamp with
 * "YYYY-MM-DD HH:MM:SS". */
static int read_stamp(const char *s, char stamp[20])
{
        if (s[0] != ' ' || s[5] != '-' || s[8] != '-' || s[11] != ' ')
                return 0;
        for (int i = 1; i < 5; i++)
                if (s[i] < '0' || s[i] > '9')
                        return 0;
        if (two_digits(s + 6, 1, 12) < 0 || two_digits(s + 9, 1, 31) < 0 ||
            two_digits(s + 12, 0, 23) < 0 || two_digits(s + 14, 0, 59) < 0 ||
            two_digits(s + 16, 0, 60) < 0)
                return 0;
        snprintf(stamp, 20, "%.10s %.2s:%.2s:%.2s", s + 1, s + 12, s + 14, s + 16);
        return 1;
}

/* What conflict_name puts after the parenthesis: nothing, or the original
 * extension: a dot, then at least one byte, no other dot. */
static int is_extension(const char *s)
{
        if (*s == '\0')
                return 1;
        return s[0] == '.' && s[1] != '\0' && strchr(s + 1, '.') == NULL;
}

/* Finds the marker at m in base that makes base a conflict copy name: the
 * closing parenthesis (after the device name and the stamp) followed by an
 * extension. Returns its offset in base, or 0. */
static size_t match_at(const char *base, const char *m, char stamp[20])
{
        const char *dev = m + MARK_LEN, *c;

        for (c = strchr(dev, ')'); c; c = strchr(c + 1, ')')) {
                if ((size_t)(c - dev) < STAMP_LEN + 1)
                        continue; /* no room for a device name and the stamp */
                if (read_stamp(c - STAMP_LEN, stamp) && is_extension(c + 1))
                        return (size_t)(c - base);
        }
        return 0;
}

int conflict_parse(const char *path, struct conflict_info *out)
{
        const char *base = path_basename(path), *m, *last = NULL;
        size_t dir_len = (size_t)(base - path), close = 0, dev_len;
        struct buf orig = BUF_INIT;
        char stamp[20];
        int r = 0;

        memset(out, 0, sizeof(*out));
        if (*base == '\0')
                return 0;
        /* The last marker that matches: in a copy of a copy, the outer one.
         * The stem must not be empty (conflict_name keeps at least a byte). */
        for (m = strstr(base + 1, MARK); m; m = strstr(m + 1, MARK)) {
                size_t c = match_at(base, m, stamp);

                if (c) {
                        last = m;
                        close = c;
                        memcpy(out->stamp, stamp, sizeof(stamp));
                }
        }
        if (!last)
                return 0;
        dev_len = close - STAMP_LEN - (size_t)(last - base) - MARK_LEN;
        out->device = strndup(last + MARK_LEN, dev_len);
        if (!out->device || buf_append(&orig, path, dir_len) < 0 ||
            buf_append(&orig, base, (size_t)(last - base)) < 0 ||
            buf_append_str(&orig, base + close + 1) < 0) {
                r = -ENOMEM;
                goto out;
        }
        out->original = (char *)buf_steal(&orig, NULL);
        r = 1;
out:
        buf_free(&orig);
        if (r < 0)
                conflict_info_free(out);
        return r;
}

void conflict_info_free(struct conflict_info *ci)
{
        free(ci->original);
        free(ci->device);
        memset(ci, 0, sizeof(*ci));
}

/* Adds rel to list when it names a conflict copy. */
static int add_if_copy(const char *rel, json_t *list)
{
        struct conflict_info ci;
        json_t *o;
        int r;

        if (path_validate(rel) < 0) {
                err_clear();
                return 0; /* never synced, so not a copy Ferry made */
        }
        r = conflict_parse(rel, &ci);
        if (r <= 0)
                return r;
        o = json_pack("{s:s, s:s, s:s, s:s}", "path", rel, "original", ci.original, "device",
                      ci.device, "stamp", ci.stamp);
        conflict_info_free(&ci);
        if (!o || json_array_append_new(list, o) < 0)
                return -ENOMEM;
        return 0;
}

/* One directory level: names are read and the directory closed before
 * descending, so that a deep tree holds one directory open at a time. */
static int walk(const char *root, struct buf *rel, json_t *list)
{
        char **subdirs = NULL;
        size_t nsub = 0, cap = 0, keep = rel->len;
        struct dirent *de;
        char *abs = NULL;
        DIR *d = NULL;
        int r = 0;

        abs = rel->len ? path_join(root, (const char *)rel->data) : strdup(root);
        if (!abs)
                return -ENOMEM;
        d = opendir(abs);
        if (!d)
                goto out; /* unreadable: nothing Ferry could have synced there */
        while ((de = readdir(d)) != NULL) {
                struct stat st;
                char *full;

                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
                    (keep == 0 && !strcmp(de->d_name, PATH_STATE_DIR)))
                        continue;
                rel->len = keep;
                if ((keep && buf_append(rel, "/", 1) < 0) ||
                    buf_append(rel, de->d_name, strlen(de->d_name) + 1) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                r = add_if_copy((const char *)rel->data, list);
                if (r < 0)
                        goto out;
                if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;
                full = path_join(root, (const char *)rel->data);
                if (!full) {
                        r = -ENOMEM;
                        goto out;
                }
                r = lstat(full, &st);
                free(full);
                if (r < 0 || !S_ISDIR(st.st_mode)) {
                        r = 0;
                        continue;
                }
                if (nsub == cap) {
                        char **n = realloc(subdirs, (cap ? cap * 2 : 16) * sizeof(*n));

                        if (!n) {
                                r = -ENOMEM;
                                goto out;
                        }
                        subdirs = n;
                        cap = cap ? cap * 2 : 16;
                }
                subdirs[nsub] = strdup(de->d_name);
                if (!subdirs[nsub++]) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        closedir(d);
        d = NULL;
        for (size_t i = 0; i < nsub && r == 0; i++) {
                rel->len = keep;
                if ((keep && buf_append(rel, "/", 1) < 0) ||
                    buf_append(rel, subdirs[i], strlen(subdirs[i]) + 1) < 0) {
                        r = -ENOMEM;
                        break;
                }
                rel->len--; /* without the NUL, for the level below */
                r = walk(root, rel, list);
        }
out:
        if (d)
                closedir(d);
        for (size_t i = 0; i < nsub; i++)
                free(subdirs[i]);
        free(subdirs);
        free(abs);
        rel->len = keep;
        return r;
}

static int by_path(const void *a, const void *b)
{
        const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

        return strcmp(json_string_value(json_object_get(x, "path")),
                      json_string_value(json_object_get(y, "path")));
}

int conflict_find(const char *root, json_t **out)
{
        struct buf rel = BUF_INIT;
        json_t *list = json_array(), *sorted = NULL, **items = NULL;
        size_t n, i;
        struct stat st;
        int r;

        *out = NULL;
        if (!list)
                return -ENOMEM;
        if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
                r = err_set(-ENOENT, "cannot read the folder %s", root);
                goto out;
        }
        r = walk(root, &rel, list);
        if (r < 0)
                goto out;
        /* readdir order is the file system's: sort for a stable listing */
        n = json_array_size(list);
        items = calloc(n ? n : 1, sizeof(*items));
        sorted = json_array();
        if (!items || !sorted) {
                r = -ENOMEM;
                goto out;
        }
        for (i = 0; i < n; i++)
                items[i] = json_array_get(list, i);
        qsort(items, n, sizeof(*items), by_path);
        for (i = 0; i < n; i++)
                if (json_array_append(sorted, items[i]) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        *out = sorted;
        sorted = NULL;
out:
        buf_free(&rel);
        free(items);
        json_decref(sorted);
        json_decref(list);
        return r;
}

int conflict_status_json(const char *root, json_t *status)
{
        json_t *list;
        int r;

        r = conflict_find(root, &list);
        if (r < 0)
                return r;
        return json_object_set_new(status, "conflicts", list) < 0 ? -ENOMEM : 0;
}

/* Longest list `ferry status` prints; ls --conflicts has them all. */
#define STATUS_MAX_LINES 20

int conflict_status_print(const char *root, FILE *f)
{
        json_t *list, *c;
        size_t i, n;
        int r;

        r = conflict_find(root, &list);
        if (r < 0) {
                fprintf(f, "conflicts: unknown (%s)\n", err_msg(r));
                return r;
        }
        n = json_array_size(list);
        if (n == 0)
                fprintf(f, "conflicts: none\n");
        else
                fprintf(f, "conflicts: %zu (delete or rename a copy once resolved)\n", n);
        json_array_foreach(list, i, c)
        {
                if (i == STATUS_MAX_LINES) {
                        fprintf(f, "  ... and %zu more ('ferry ls --conflicts' lists them all)\n",
                                n - i);
                        break;
                }
                fprintf(f, "  %s  (of %s)\n", json_string_value(json_object_get(c, "path")),
                        json_string_value(json_object_get(c, "original")));
        }
        json_decref(list);
        return 0;
}
