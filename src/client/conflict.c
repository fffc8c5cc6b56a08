/* conflict: builds the name of the copy Ferry keeps when two devices changed
 * the same file, "dir/stem (conflict from DEVICE YYYY-MM-DD HHMMSS).ext".
 *
 * The result must itself be a valid Ferry path (it is uploaded like any other
 * file), so the device name is sanitized (no '/', backslash, control
 * characters or broken UTF-8 in it) and the stem is shortened, on a UTF-8
 * character boundary, until the last component fits NAME_MAX_BYTES and the
 * whole path fits PATH_MAX_BYTES.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "conflict.h"
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
