/* ask: the question of the `ask` rule (see ask.h).
 *
 * The list comes from the held store, not from the round's own findings,
 * so that files held by earlier rounds (a `ferry sync --no-ask`, the
 * watch, a sync without a terminal) are asked about too, and so that both
 * directions are in one list. The question is asked once per `ferry sync`:
 * whatever is not chosen stays held and is asked about again next time.
 */
#include "ask.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "manifest.h"
#include "path.h"
#include "progress.h"
#include "rules.h"

static int collect_one(const struct index_held *h, void *ud)
{
        struct ask_list *l = ud;
        struct ask_item *it;

        if (!h->reason || strcmp(h->reason, ASK_REASON) != 0)
                return 0;
        if (l->n == l->cap) {
                size_t ncap = l->cap ? l->cap * 2 : 16;
                struct ask_item *nv = realloc(l->v, ncap * sizeof(*nv));

                if (!nv)
                        return -ENOMEM;
                l->v = nv;
                l->cap = ncap;
        }
        it = &l->v[l->n];
        it->path = strdup(h->path);
        if (!it->path)
                return -ENOMEM;
        it->dir = h->dir;
        it->kind = h->kind;
        it->size = h->size;
        l->n++;
        return 0;
}

int ask_collect(struct index *idx, struct ask_list *out)
{
        int r;

        memset(out, 0, sizeof(*out));
        r = index_held_foreach(idx, RULES_UP, NULL, collect_one, out);
        if (r == 0)
                r = index_held_foreach(idx, RULES_DOWN, NULL, collect_one, out);
        if (r < 0)
                ask_list_free(out);
        return r;
}

void ask_list_free(struct ask_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].path);
        free(l->v);
        memset(l, 0, sizeof(*l));
}

/* What a file is, for the list: its type group (images, ...), else its
 * extension, or its kind. */
static void type_of(const struct ask_item *it, char *out, size_t len)
{
        const char *base = path_basename(it->path), *dot = strrchr(base, '.');
        const char *group = rules_group_of(it->path);
        size_t i;

        if (it->kind != KIND_FILE) {
                snprintf(out, len, "%s", it->kind == KIND_SYMLINK ? "link" : kind_name(it->kind));
                return;
        }
        if (group) {
                snprintf(out, len, "%s", group);
                return;
        }
        if (!dot || dot == base || dot[1] == '\0') {
                snprintf(out, len, "file");
                return;
        }
        snprintf(out, len, "%s", dot + 1);
        for (i = 0; out[i]; i++)
                out[i] = (char)tolower((unsigned char)out[i]);
}

void ask_print(FILE *out, const struct ask_list *l)
{
        int width = 4, num = 1;
        char size[32], type[32];

        for (size_t i = 0; i < l->n; i++) {
                int w = (int)strlen(l->v[i].path);

                if (w > width)
                        width = w > 60 ? 60 : w;
        }
        for (size_t k = l->n; k >= 10; k /= 10)
                num++;
        fprintf(out, "%zu file%s held by an 'ask' rule:\n", l->n, l->n == 1 ? "" : "s");
        for (size_t i = 0; i < l->n; i++) {
                const struct ask_item *it = &l->v[i];

                progress_human((int64_t)it->size, size, sizeof(size));
                type_of(it, type, sizeof(type));
                fprintf(out, "  %*zu  %-4s  %-*s  %10s  %s\n", num, i + 1,
                        it->dir == RULES_UP ? "up" : "down", width, it->path,
                        it->kind == KIND_FILE ? size : "-", type);
        }
}

static int blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses "1,3-5" (commas or blanks between items) into chosen. */
static int parse_numbers(const char *s, size_t n, unsigned char *chosen)
{
        const char *p = s;
        char *end;

        while (*p) {
                unsigned long a, b;

                while (blank(*p) || *p == ',')
                        p++;
                if (!*p)
                        break;
                if (!isdigit((unsigned char)*p))
                        return err_set(-EINVAL, "'%s': expected a number at '%s'", s, p);
                a = strtoul(p, &end, 10);
                p = end;
                while (blank(*p))
                        p++;
                b = a;
                if (*p == '-') {
                        p++;
                        while (blank(*p))
                                p++;
                        if (!isdigit((unsigned char)*p))
                                return err_set(-EINVAL, "'%s': a range needs an end, as in 3-5", s);
                        b = strtoul(p, &end, 10);
                        p = end;
                }
                if (a < 1 || b < 1 || a > n || b > n)
                        return err_set(-EINVAL, "'%s': the files are numbered 1 to %zu", s, n);
                if (b < a)
                        return err_set(-EINVAL, "'%s': the range %lu-%lu goes backwards", s, a, b);
                for (unsigned long i = a; i <= b; i++)
                        chosen[i - 1] = 1;
        }
        return 0;
}

int ask_parse(const char *answer, const char *const *paths, size_t n, unsigned char *chosen)
{
        char *s = NULL;
        size_t len, i;
        int r = 0, numbers = 1;

        memset(chosen, 0, n);
        while (blank(*answer))
                answer++;
        len = strlen(answer);
        while (len > 0 && blank(answer[len - 1]))
                len--;
        s = strndup(answer, len);
        if (!s)
                return -ENOMEM;
        if (len == 0 || !strcasecmp(s, "n") || !strcasecmp(s, "none"))
                goto out;
        if (!strcasecmp(s, "a") || !strcasecmp(s, "all")) {
                memset(chosen, 1, n);
                r = (int)n;
                goto out;
        }
        for (i = 0; i < len; i++)
                if (!isdigit((unsigned char)s[i]) && s[i] != ',' && s[i] != '-' && !blank(s[i]))
                        numbers = 0;
        if (numbers) {
                r = parse_numbers(s, n, chosen);
        } else {
                for (i = 0; i < n; i++)
                        chosen[i] = fnmatch(s, paths[i], 0) == 0 ||
                                    fnmatch(s, path_basename(paths[i]), 0) == 0;
        }
        if (r < 0)
                goto out;
        for (i = 0; i < n; i++)
                r += chosen[i];
        if (r == 0 && !numbers)
                r = err_set(-ENOENT, "no file matches '%s'", s);
out:
        if (r < 0)
                memset(chosen, 0, n);
        free(s);
        return r;
}

/* Reads one line from in into *line (getline); -1 at the end of input. */
static ssize_t read_answer(FILE *in, char **line, size_t *cap)
{
        ssize_t n = getline(line, cap, in);

        if (n < 0)
                clearerr(in);
        return n;
}

int ask_run(struct index *idx, FILE *in, FILE *out, size_t *chosen)
{
        struct ask_list l = {0};
        const char **paths = NULL;
        unsigned char *pick = NULL;
        char *line = NULL;
        size_t cap = 0, up = 0, down = 0;
        int r;

        *chosen = 0;
        r = ask_collect(idx, &l);
        if (r < 0 || l.n == 0)
                goto out;
        paths = malloc(l.n * sizeof(*paths));
        pick = malloc(l.n);
        if (!paths || !pick) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < l.n; i++)
                paths[i] = l.v[i].path;
        ask_print(out, &l);
        for (;;) {
                fprintf(out, "Sync which? [a]ll, [n]one, numbers (1,3-5) or a pattern (*.pdf): ");
                fflush(out);
                if (read_answer(in, &line, &cap) < 0) {
                        fputc('\n', out);
                        r = 0;
                        memset(pick, 0, l.n);
                        break;
                }
                r = ask_parse(line, paths, l.n, pick);
                if (r >= 0)
                        break;
                if (r == -ENOMEM)
                        goto out;
                fprintf(out, "  %s\n", err_msg(r));
                err_clear();
        }
        r = index_begin(idx);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < l.n && r == 0; i++) {
                if (!pick[i])
                        continue;
                r = index_override_add(idx, l.v[i].path);
                if (l.v[i].dir == RULES_UP)
                        up++;
                else
                        down++;
        }
        if (r < 0) {
                index_rollback(idx);
                goto out;
        }
        r = index_commit(idx);
        if (r < 0)
                goto out;
        *chosen = up + down;
        if (*chosen == 0)
                fprintf(out, "Nothing chosen; the files stay held (see 'ferry held').\n");
        else
                fprintf(out, "Syncing %zu file%s now (%zu up, %zu down).\n", *chosen,
                        *chosen == 1 ? "" : "s", up, down);
        fflush(out);
out:
        free(line);
        free(paths);
        free(pick);
        ask_list_free(&l);
        return r;
}
