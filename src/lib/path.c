/* path: the rules a Ferry path must pass before anything touches the file
 * system with it (see path.h). Paths come from the network and from other
 * devices, so this is the line of defence against escaping the synced
 * folder ("../x", "/etc/passwd"), against names another OS cannot store,
 * and against clobbering Ferry's own state and temporary files. */
#include "path.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 when
 * it is invalid: truncated, a stray continuation byte, an overlong form, a
 * surrogate or past U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
        unsigned char c = s[0];
        unsigned char lo = 0x80, hi = 0xbf;
        size_t n;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef)
                n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
                n = 4;
        else
                return 0;
        if (n > avail)
                return 0;
        /* The second byte's range excludes overlongs, surrogates and
         * code points over U+10FFFF. */
        if (c == 0xe0)
                lo = 0xa0;
        else if (c == 0xed)
                hi = 0x9f;
        else if (c == 0xf0)
                lo = 0x90;
        else if (c == 0xf4)
                hi = 0x8f;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return n;
}

static int check_component(const unsigned char *c, size_t len, int first)
{
        if (len == 0)
                return err_set(-EINVAL, "invalid path: empty component (leading, trailing "
                                        "or double '/')");
        if (len > NAME_MAX_BYTES)
                return err_set(-EINVAL, "invalid path: a component is longer than %d bytes",
                               NAME_MAX_BYTES);
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
                return err_set(-EINVAL, "invalid path: '.' or '..' component");
        if (first && len == strlen(PATH_STATE_DIR) && memcmp(c, PATH_STATE_DIR, len) == 0)
                return err_set(-EINVAL, "invalid path: inside the reserved %s folder",
                               PATH_STATE_DIR);
        if (len >= strlen(PATH_TEMP_PREFIX) &&
            memcmp(c, PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX)) == 0)
                return err_set(-EINVAL, "invalid path: a Ferry temporary file name");
        for (size_t i = 0; i < len;) {
                size_t n;

                if (c[i] < 0x20 || c[i] == 0x7f)
                        return err_set(-EINVAL, "invalid path: control character 0x%02x", c[i]);
                if (c[i] == '\\')
                        return err_set(-EINVAL, "invalid path: backslash");
                n = utf8_seq(c + i, len - i);
                if (n == 0)
                        return err_set(-EINVAL, "invalid path: not valid UTF-8");
                i += n;
        }
        return 0;
}

int path_validate(const char *p)
{
        const unsigned char *s = (const unsigned char *)p;
        size_t len;
        int r;

        if (!p || !*p)
                return err_set(-EINVAL, "invalid path: empty");
        len = strnlen(p, PATH_MAX_BYTES + 1);
        if (len > PATH_MAX_BYTES)
                return err_set(-EINVAL, "invalid path: longer than %d bytes", PATH_MAX_BYTES);
        if (s[0] == '/')
                return err_set(-EINVAL, "invalid path: absolute (leading '/')");
        for (size_t start = 0, first = 1;; first = 0) {
                const unsigned char *slash = memchr(s + start, '/', len - start);
                size_t end = slash ? (size_t)(slash - s) : len;

                r = check_component(s + start, end - start, (int)first);
                if (r < 0)
                        return r;
                if (!slash)
                        break;
                start = end + 1;
        }
        return 0;
}

int path_is_temp(const char *p)
{
        return strncmp(path_basename(p), PATH_TEMP_PREFIX, strlen(PATH_TEMP_PREFIX)) == 0;
}

char *path_join(const char *root, const char *rel)
{
        size_t rl = strlen(root);
        size_t n;
        char *out;

        /* Exactly one '/' between the parts, whatever either side brings. */
        while (rl > 1 && root[rl - 1] == '/')
                rl--;
        while (*rel == '/')
                rel++;
        if (rl == 0)
                return strdup(rel);
        if (*rel == '\0')
                return strndup(root, rl);
        n = rl + 1 + strlen(rel) + 1;
        out = malloc(n);
        if (!out)
                return NULL;
        memcpy(out, root, rl);
        if (root[rl - 1] == '/')
                rl--; /* root is "/" */
        out[rl] = '/';
        memcpy(out + rl + 1, rel, strlen(rel) + 1);
        return out;
}

char *path_dirname(const char *p)
{
        const char *slash = strrchr(p, '/');

        if (!slash)
                return strdup("");
        return strndup(p, (size_t)(slash - p));
}

const char *path_basename(const char *p)
{
        const char *slash = strrchr(p, '/');

        return slash ? slash + 1 : p;
}
