/* ignore: .ferryignore patterns and the built-in defaults (see ignore.h;
 * docs/cli.md, "Rules", lists the syntax and the defaults).
 *
 * The semantics are git's (gitignore(5)), so that a user can copy a
 * .gitignore: a pattern without a slash (except a trailing one) matches a
 * name at any depth; with one it is anchored at the root and matched
 * component by component, where "**" stands for any number of components
 * (at least one at the end: "a/" then "**" is everything inside a, not a
 * itself). Each component is an fnmatch(3) glob without flags: "*" and "?"
 * never cross a '/' (the path is already split there), "[a-z]" classes
 * work, a backslash escapes the next character, and "*" matches a leading
 * dot, as in git.
 * Matching is case-sensitive.
 *
 * ignore_match walks the path from the root: a directory on the way that is
 * ignored hides everything under it, so a negation cannot re-include a file
 * whose parent directory is excluded (git's rule, and the reason a scan
 * may skip an ignored directory without reading it). For one path the last
 * matching pattern wins, and the defaults come before the file's lines, so
 * "!*.tmp" in .ferryignore brings *.tmp files back.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fsutil.h"
#include "ignore.h"
#include "log.h"
#include "path.h"

#define IGNORE_MAX_BYTES (1024 * 1024)

static const char *const defaults[] = {
    "*.swp",     "*.swo",       "*~",         ".#*",   "#*#",       ".DS_Store",
    "Thumbs.db", "desktop.ini", ".directory", "*.tmp", ".~lock.*#",
};

struct pattern {
        char **comps; /* anchored: the '/'-separated components; else one: the name glob */
        size_t n;
        int anchored, negate, dir_only;
};

struct ignore {
        struct pattern *v;
        size_t n;
};

static void pattern_free(struct pattern *p)
{
        size_t i;

        for (i = 0; i < p->n; i++)
                free(p->comps[i]);
        free(p->comps);
}

void ignore_free(struct ignore *ig)
{
        size_t i;

        if (ig == NULL)
                return;
        for (i = 0; i < ig->n; i++)
                pattern_free(&ig->v[i]);
        free(ig->v);
        free(ig);
}

/* Parses one line into p. 1: a pattern; 0: blank or a comment; -EINVAL:
 * not a valid pattern (why gets the reason); -ENOMEM. */
static int parse_line(const char *line, size_t len, struct pattern *p, const char **why)
{
        char *s = NULL, *c, *slash, **nv;
        size_t n;
        int r = 1;

        memset(p, 0, sizeof(*p));
        if (len > 0 && line[len - 1] == '\r')
                len--;
        if (len == 0 || line[0] == '#')
                return 0;
        /* trailing spaces go, unless escaped ("a\ ") */
        while (len > 0 && line[len - 1] == ' ' && !(len > 1 && line[len - 2] == '\\'))
                len--;
        if (len == 0)
                return 0;
        if (line[0] == '!') {
                p->negate = 1;
                line++;
                len--;
        }
        s = strndup(line, len);
        if (s == NULL)
                return -ENOMEM;
        n = strlen(s);
        if (n < len) {
                *why = "a NUL byte";
                r = -EINVAL;
                goto out;
        }
        while (n > 0 && s[n - 1] == '/') {
                p->dir_only = 1;
                s[--n] = '\0';
        }
        /* a lone trailing backslash escapes nothing: git never matches it */
        for (c = s; *c; c++)
                if (*c == '\\' && *++c == '\0') {
                        *why = "a trailing backslash";
                        r = -EINVAL;
                        goto out;
                }
        p->anchored = strchr(s, '/') != NULL;
        c = s + (s[0] == '/');
        if (*c == '\0') {
                *why = "an empty pattern";
                r = -EINVAL;
                goto out;
        }
        for (;;) {
                slash = p->anchored ? strchr(c, '/') : NULL;
                if (slash)
                        *slash = '\0';
                if (*c == '\0' || !strcmp(c, ".") || !strcmp(c, "..")) {
                        *why = "an empty, \".\" or \"..\" component";
                        r = -EINVAL;
                        goto out;
                }
                /* "**" twice in a row means what one does */
                if (!(strcmp(c, "**") == 0 && p->n > 0 && strcmp(p->comps[p->n - 1], "**") == 0)) {
                        nv = realloc(p->comps, (p->n + 1) * sizeof(*nv));
                        if (nv == NULL || (nv[p->n] = strdup(c)) == NULL) {
                                if (nv)
                                        p->comps = nv;
                                r = -ENOMEM;
                                goto out;
                        }
                        p->comps = nv;
                        p->n++;
                }
                if (slash == NULL)
                        break;
                c = slash + 1;
        }
out:
        free(s);
        if (r < 0)
                pattern_free(p);
        return r;
}

static int add_line(struct ignore *ig, const char *line, size_t len, const char *file, int lineno)
{
        struct pattern p, *nv;
        const char *why = NULL;
        int r = parse_line(line, len, &p, &why);

        if (r == -EINVAL) {
                log_warn("%s:%d: skipping \"%.*s\": %s", file, lineno, (int)len, line, why);
                return 0;
        }
        if (r <= 0)
                return r;
        nv = realloc(ig->v, (ig->n + 1) * sizeof(*nv));
        if (nv == NULL) {
                pattern_free(&p);
                return -ENOMEM;
        }
        ig->v = nv;
        ig->v[ig->n++] = p;
        return 1;
}

int ignore_from_text(const char *text, size_t len, const char *name, struct ignore **out)
{
        struct ignore *ig = calloc(1, sizeof(*ig));
        const char *p, *end = text + len, *nl;
        char esc[32];
        size_t i;
        int r = 0, lineno = 0;

        if (ig == NULL)
                return -ENOMEM;
        for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
                /* "#*#" is a pattern here, not a comment: escaped as a
                 * .ferryignore would have to write it */
                snprintf(esc, sizeof(esc), "%s%s", defaults[i][0] == '#' ? "\\" : "", defaults[i]);
                r = add_line(ig, esc, strlen(esc), "defaults", (int)i + 1);
                if (r < 0)
                        goto out;
        }
        /* a UTF-8 byte order mark is not part of the first pattern */
        p = len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3) ? text + 3 : text;
        for (; p < end; p = nl + 1) {
                nl = memchr(p, '\n', (size_t)(end - p));
                if (nl == NULL)
                        nl = end;
                r = add_line(ig, p, (size_t)(nl - p), name, ++lineno);
                if (r < 0)
                        goto out;
        }
        r = 0;
        *out = ig;
        ig = NULL;
out:
        ignore_free(ig);
        return r;
}

int ignore_load(const char *root, struct ignore **out)
{
        char *file = path_join(root, IGNORE_FILE), *text = NULL;
        size_t len = 0;
        int r;

        if (file == NULL)
                return -ENOMEM;
        r = fsutil_read_all(file, IGNORE_MAX_BYTES, &text, &len);
        if (r == -ENOENT) {
                len = 0;
                r = 0;
        } else if (r < 0) {
                /* not silently "nothing ignored": that could upload what
                 * the user meant to keep on this device */
                err_set(r, "cannot read %s: %s", file, strerror(-r));
                goto out;
        }
        r = ignore_from_text(text ? text : "", len, file, out);
out:
        free(text);
        free(file);
        return r;
}

/* Matches pattern components p[0..np) against path components s[0..ns). */
static int match_comps(char *const *p, size_t np, char *const *s, size_t ns)
{
        size_t k;

        for (; np > 0; p++, np--, s++, ns--) {
                if (strcmp(p[0], "**") == 0) {
                        if (np == 1)
                                return ns >= 1;
                        for (k = 0; k <= ns; k++)
                                if (match_comps(p + 1, np - 1, s + k, ns - k))
                                        return 1;
                        return 0;
                }
                if (ns == 0 || fnmatch(p[0], s[0], 0) != 0)
                        return 0;
        }
        return ns == 0;
}

/* The verdict for the path made of s[0..ns): 1 ignored, 0 not. */
static int match_one(const struct ignore *ig, char *const *s, size_t ns, int is_dir)
{
        const struct pattern *p;
        size_t i;

        for (i = ig->n; i-- > 0;) {
                p = &ig->v[i];
                if (p->dir_only && !is_dir)
                        continue;
                if (p->anchored ? match_comps(p->comps, p->n, s, ns)
                                : fnmatch(p->comps[0], s[ns - 1], 0) == 0)
                        return !p->negate;
        }
        return 0;
}

int ignore_match(const struct ignore *ig, const char *path, int is_dir)
{
        char *copy = NULL, **comps = NULL, *c;
        size_t n = 1, i;
        int r = 0;

        if (ig == NULL || path[0] == '\0' || strcmp(path, IGNORE_FILE) == 0)
                return 0;
        for (c = (char *)path; *c; c++)
                n += *c == '/';
        copy = strdup(path);
        comps = malloc(n * sizeof(*comps));
        if (copy == NULL || comps == NULL) {
                /* cannot decide: hold it back rather than upload it */
                r = 1;
                goto out;
        }
        comps[0] = copy;
        for (c = copy, i = 1; *c; c++)
                if (*c == '/') {
                        *c = '\0';
                        comps[i++] = c + 1;
                }
        /* an ignored directory on the way hides everything under it */
        for (i = 1; i < n && r == 0; i++)
                r = match_one(ig, comps, i, 1);
        if (r == 0)
                r = match_one(ig, comps, n, is_dir);
out:
        free(comps);
        free(copy);
        return r;
}

const char *const *ignore_defaults(size_t *n)
{
        *n = sizeof(defaults) / sizeof(defaults[0]);
        return defaults;
}
