/* rules: per-device upload and download rules (see rules.h; the syntax and
 * the named type groups are documented in docs/cli.md, "Rules").
 *
 * A rule is parsed once, when it is set or loaded, into its conditions (a
 * folder, an expanded lower-case extension list, a size limit, the ask
 * flag) next to its words in normalized text form, which are what
 * rules.json stores (rules_file.c) and `ferry rules show` prints.
 * rules_check is then a few string compares per rule: it runs for every
 * file of every round.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"
#include "ignore.h"
#include "manifest.h"
#include "path.h"
#include "rules.h"

#define RULES_EXT_MAX 32

/* The named type groups (docs/cli.md lists them too). */
static const struct {
        const char *name;
        const char *exts;
} groups[] = {
    {"images", "jpg jpeg png gif heic heif webp avif tiff tif bmp raw cr2 nef arw dng svg"},
    {"documents", "doc docx odt rtf txt md pdf xls xlsx ods ppt pptx odp csv epub mobi azw3 tex"},
    {"video", "mp4 mkv mov avi webm m4v wmv flv mpg mpeg 3gp"},
    {"audio", "mp3 flac ogg opus m4a aac wav wma aiff"},
    {"archives", "zip tar gz tgz bz2 xz zst 7z rar"},
};

struct rule {
        char **words; /* normalized text form */
        size_t nwords;
        int all, ask;
        char *folder; /* NULL: anywhere */
        char *type;   /* the type word, for reasons; NULL: any type */
        char **exts;  /* lower case, no leading dot; may hold dots ("tar.gz") */
        size_t nexts;
        int has_max;
        uint64_t max_size;
        const char *max_word; /* points into words */
};

struct ruleset {
        struct rule *v;
        size_t n;
};

struct rules {
        struct ruleset set[2];
        enum rules_mode mode;
};

static const char *const dir_names[2] = {"up", "down"};

static void rule_free(struct rule *ru)
{
        size_t i;

        for (i = 0; i < ru->nwords; i++)
                free(ru->words[i]);
        for (i = 0; i < ru->nexts; i++)
                free(ru->exts[i]);
        free(ru->words);
        free(ru->exts);
        free(ru->folder);
        free(ru->type);
        memset(ru, 0, sizeof(*ru));
}

static void ruleset_clear(struct ruleset *s)
{
        size_t i;

        for (i = 0; i < s->n; i++)
                rule_free(&s->v[i]);
        free(s->v);
        s->v = NULL;
        s->n = 0;
}

void rules_free(struct rules *r)
{
        if (r == NULL)
                return;
        ruleset_clear(&r->set[RULES_UP]);
        ruleset_clear(&r->set[RULES_DOWN]);
        free(r);
}

static int push_str(char ***v, size_t *n, const char *s, size_t len)
{
        char **nv = realloc(*v, (*n + 1) * sizeof(**v));
        char *copy;

        if (nv == NULL)
                return -ENOMEM;
        *v = nv;
        copy = strndup(s, len);
        if (copy == NULL)
                return -ENOMEM;
        nv[(*n)++] = copy;
        return 0;
}

int rules_parse_size(const char *s, uint64_t *out)
{
        static const char units[] = "BKMGT";
        uint64_t ip = 0, frac = 0, mult = 1, div = 1;
        const char *p = s, *u;
        int digits = 0;

        if (*p < '0' || *p > '9')
                goto bad;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (ip > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                        goto big;
                ip = ip * 10 + (uint64_t)(*p - '0');
        }
        if (*p == '.') {
                for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
                        if (digits == 3)
                                return err_set(-EINVAL, "size %s: at most 3 decimals", s);
                        frac = frac * 10 + (uint64_t)(*p - '0');
                        div *= 10;
                }
                if (digits == 0)
                        goto bad;
        }
        if (*p != '\0') {
                u = strchr(units, toupper((unsigned char)*p));
                if (u == NULL)
                        goto bad;
                mult = 1ULL << (10 * (u - units));
                p++;
                /* 50M, 50MB, 50MiB: all binary */
                if (u != units && (*p == 'i' || *p == 'I') && (p[1] == 'b' || p[1] == 'B'))
                        p += 2;
                else if (u != units && (*p == 'b' || *p == 'B'))
                        p++;
                if (*p != '\0')
                        goto bad;
        }
        if (digits > 0 && mult == 1)
                return err_set(-EINVAL, "size %s: a fraction of a byte", s);
        if (ip > UINT64_MAX / mult || ip * mult > UINT64_MAX - frac * mult / div)
                goto big;
        *out = ip * mult + frac * mult / div;
        return 0;
big:
        return err_set(-EINVAL, "size %s is too large", s);
bad:
        return err_set(-EINVAL,
                       "bad size \"%s\" (expected a number with an optional K, M, G or T "
                       "suffix: 123, 700K, 50M, 1.5G)",
                       s);
}

/* Adds the extensions of a group, or ext itself. ext is lower case. */
static int add_ext(struct rule *ru, const char *ext)
{
        const char *p;
        size_t i, len;
        int r;

        for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
                if (strcmp(ext, groups[i].name) != 0)
                        continue;
                for (p = groups[i].exts; *p; p += len + (p[len] == ' ')) {
                        len = strcspn(p, " ");
                        if ((r = push_str(&ru->exts, &ru->nexts, p, len)) < 0)
                                return r;
                }
                return 0;
        }
        return push_str(&ru->exts, &ru->nexts, ext, strlen(ext));
}

/* "pdf,.DOCX,images" -> the rule's extension list. */
static int parse_type(struct rule *ru, const char *word)
{
        char *copy = strdup(word), *tok, *save = NULL, *e;
        const char *c;
        int r = 0;

        if (copy == NULL)
                return -ENOMEM;
        for (e = copy; *e; e++)
                *e = (char)tolower((unsigned char)*e);
        if (copy[0] == '\0' || copy[0] == ',' || copy[strlen(copy) - 1] == ',' ||
            strstr(copy, ",,")) {
                r = err_set(-EINVAL, "type \"%s\": an empty extension", word);
                goto out;
        }
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                e = tok[0] == '.' ? tok + 1 : tok;
                for (c = e; *c; c++)
                        if (*c == '/' || *c == '\\' || *c == ' ' || *c == '\t' || *c == '*' ||
                            *c == '?' || (unsigned char)*c < 0x20)
                                break;
                if (*e == '\0' || *c != '\0' || e[strlen(e) - 1] == '.' || e[0] == '.' ||
                    strstr(e, "..") || strlen(e) > RULES_EXT_MAX) {
                        r = err_set(-EINVAL, "type \"%s\": \"%s\" is not an extension", word, tok);
                        goto out;
                }
                r = add_ext(ru, e);
                if (r < 0)
                        goto out;
        }
        ru->type = strdup(word);
        if (ru->type == NULL)
                r = -ENOMEM;
out:
        free(copy);
        return r;
}

/* A folder condition's PATH: trailing slashes dropped, then a Ferry path. */
static int parse_folder(struct rule *ru, const char *word)
{
        size_t len = strlen(word);
        char msg[512];
        int r;

        while (len > 1 && word[len - 1] == '/')
                len--;
        ru->folder = strndup(word, len);
        if (ru->folder == NULL)
                return -ENOMEM;
        r = path_validate(ru->folder);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "%s", err_msg(r));
                return err_set(-EINVAL, "folder \"%s\": %s", word, msg);
        }
        return 0;
}

static int dup_condition(const char *w)
{
        return err_set(-EINVAL,
                       "\"%s\" given twice in one rule (a rule's conditions must all "
                       "hold; write two rules for either)",
                       w);
}

/* Parses words[0..n) (one rule) into ru. */
static int rule_parse(struct rule *ru, char *const *words, size_t n)
{
        const char *w, *val;
        size_t i;
        int r = 0;

        memset(ru, 0, sizeof(*ru));
        if (n == 0)
                return err_set(-EINVAL, "an empty rule (nothing before or after \"or\"?)");
        for (i = 0; i < n; i++) {
                w = words[i];
                if (!strcmp(w, "all") || !strcmp(w, "ask")) {
                        int *flag = w[1] == 'l' ? &ru->all : &ru->ask;

                        if (*flag) {
                                r = dup_condition(w);
                                goto out;
                        }
                        *flag = 1;
                        r = push_str(&ru->words, &ru->nwords, w, strlen(w));
                        if (r < 0)
                                goto out;
                        continue;
                }
                if (!strcmp(w, "none")) {
                        r = err_set(-EINVAL, "\"none\" stands alone, and only with set: "
                                             "'ferry rules set up|down none' holds every file");
                        goto out;
                }
                if (strcmp(w, "folder") && strcmp(w, "type") && strcmp(w, "max-size")) {
                        r = err_set(-EINVAL,
                                    "unknown word \"%s\" in a rule (expected all, folder PATH, "
                                    "type EXT[,EXT...], max-size SIZE or ask)",
                                    w);
                        goto out;
                }
                if (i + 1 == n) {
                        r = err_set(-EINVAL, "\"%s\" needs a value", w);
                        goto out;
                }
                val = words[++i];
                if (w[0] == 'f') {
                        r = ru->folder ? dup_condition(w) : parse_folder(ru, val);
                        val = ru->folder;
                } else if (w[0] == 't') {
                        r = ru->type ? dup_condition(w) : parse_type(ru, val);
                } else {
                        r = ru->has_max ? dup_condition(w) : rules_parse_size(val, &ru->max_size);
                        ru->has_max = 1;
                }
                if (r < 0)
                        goto out;
                if ((r = push_str(&ru->words, &ru->nwords, w, strlen(w))) < 0 ||
                    (r = push_str(&ru->words, &ru->nwords, val, strlen(val))) < 0)
                        goto out;
                if (w[0] == 'm')
                        ru->max_word = ru->words[ru->nwords - 1];
        }
        if (ru->all && ru->nwords > 1)
                r = err_set(-EINVAL, "\"all\" stands alone in a rule (it selects every file)");
out:
        if (r < 0)
                rule_free(ru);
        return r;
}

/* Appends the rules in words (separated by "or"; "none" alone is the empty
 * set) to s. */
static int ruleset_parse(struct ruleset *s, char *const *words, size_t n, int allow_none)
{
        struct rule *nv;
        size_t i, start = 0;
        int value_next = 0, r;

        if (allow_none && n == 1 && !strcmp(words[0], "none"))
                return 0;
        for (i = 0; i <= n; i++) {
                /* "or" where a value is due is a value: "folder or" is the
                 * folder named "or" */
                if (i < n && (value_next || strcmp(words[i], "or"))) {
                        value_next = !value_next &&
                                     (!strcmp(words[i], "folder") || !strcmp(words[i], "type") ||
                                      !strcmp(words[i], "max-size"));
                        continue;
                }
                nv = realloc(s->v, (s->n + 1) * sizeof(*nv));
                if (nv == NULL)
                        return -ENOMEM;
                s->v = nv;
                r = rule_parse(&s->v[s->n], words + start, i - start);
                if (r < 0)
                        return r;
                s->n++;
                start = i + 1;
        }
        return 0;
}

int rules_set(struct rules *r, enum rules_dir dir, char *const *words, size_t n)
{
        struct ruleset s = {0};
        int res = ruleset_parse(&s, words, n, 1);

        if (res < 0) {
                ruleset_clear(&s);
                return res;
        }
        ruleset_clear(&r->set[dir]);
        r->set[dir] = s;
        return 0;
}

int rules_add(struct rules *r, enum rules_dir dir, char *const *words, size_t n)
{
        struct ruleset s = {0};
        struct rule *nv;
        size_t i;
        int res = ruleset_parse(&s, words, n, 0);

        if (res < 0)
                goto out;
        nv = realloc(r->set[dir].v, (r->set[dir].n + s.n) * sizeof(*nv));
        if (nv == NULL) {
                res = -ENOMEM;
                goto out;
        }
        r->set[dir].v = nv;
        for (i = 0; i < s.n; i++)
                nv[r->set[dir].n++] = s.v[i];
        s.n = 0;
out:
        ruleset_clear(&s);
        return res;
}

int rules_remove(struct rules *r, enum rules_dir dir, size_t index)
{
        struct ruleset *s = &r->set[dir];

        if (index < 1 || index > s->n)
                return err_set(-ENOENT, "there is no %s rule %zu (there are %zu)", dir_names[dir],
                               index, s->n);
        rule_free(&s->v[index - 1]);
        memmove(&s->v[index - 1], &s->v[index], (s->n - index) * sizeof(*s->v));
        s->n--;
        return 0;
}

size_t rules_count(const struct rules *r, enum rules_dir dir)
{
        return r->set[dir].n;
}

char *rules_text(const struct rules *r, enum rules_dir dir, size_t i)
{
        const struct rule *ru = &r->set[dir].v[i];
        struct buf b = BUF_INIT;
        const char *p;
        size_t k;
        int res = 0;

        for (k = 0; k < ru->nwords && res == 0; k++) {
                p = ru->words[k];
                if (k > 0)
                        res = buf_append_str(&b, " ");
                if (res == 0 && p[strcspn(p, " \t\"\\'")] == '\0') {
                        res = buf_append_str(&b, p);
                        continue;
                }
                /* a folder with spaces: shown as the shell would take it */
                res = res < 0 ? res : buf_append_str(&b, "\"");
                for (; *p && res == 0; p++)
                        res = buf_printf(&b, "%s%c", *p == '"' || *p == '\\' ? "\\" : "", *p);
                res = res < 0 ? res : buf_append_str(&b, "\"");
        }
        if (res == 0)
                res = buf_append(&b, "", 1);
        if (res < 0) {
                buf_free(&b);
                return NULL;
        }
        return (char *)buf_steal(&b, NULL);
}

enum rules_mode rules_mode(const struct rules *r)
{
        return r ? r->mode : RULES_MODE_INDEX;
}

void rules_set_mode(struct rules *r, enum rules_mode mode)
{
        r->mode = mode;
}

const char *rules_mode_name(enum rules_mode mode)
{
        return mode == RULES_MODE_SINCE ? "since-last-sync" : "index";
}

int rules_mode_parse(const char *s)
{
        if (!strcmp(s, "index"))
                return RULES_MODE_INDEX;
        if (!strcmp(s, "since-last-sync"))
                return RULES_MODE_SINCE;
        return err_set(-EINVAL, "unknown mode \"%s\" (expected index or since-last-sync)", s);
}

/* 1 if path is folder or under folder/; with above, also if path is a
 * parent of folder (a directory on the way down to it). */
static int under(const char *path, const char *folder, int above)
{
        size_t fl = strlen(folder), pl = strlen(path);

        if (!strncmp(path, folder, fl) && (path[fl] == '\0' || path[fl] == '/'))
                return 1;
        return above && pl < fl && !strncmp(folder, path, pl) && folder[pl] == '/';
}

/* The name's last extension (after its last dot, not a leading one), or
 * NULL. */
static const char *last_ext(const char *name)
{
        const char *dot = strrchr(name, '.');

        return dot == NULL || dot == name || dot[1] == '\0' ? NULL : dot + 1;
}

static int type_matches(const struct rule *ru, const char *name)
{
        const char *ext = last_ext(name);
        size_t i, el, nl = strlen(name);

        for (i = 0; i < ru->nexts; i++) {
                el = strlen(ru->exts[i]);
                /* "tar.gz": a suffix of the name, after at least one char */
                if (strchr(ru->exts[i], '.')) {
                        if (nl > el + 1 && name[nl - el - 1] == '.' &&
                            !strncasecmp(name + nl - el, ru->exts[i], el))
                                return 1;
                } else if (ext && strlen(ext) == el && !strncasecmp(ext, ru->exts[i], el)) {
                        return 1;
                }
        }
        return 0;
}

/* 1 when the rule selects the entry; else 0 and why gets the reason. */
static int rule_selects(const struct rule *ru, const char *path, int kind, uint64_t size, char *why,
                        size_t whylen)
{
        const char *ext;

        if (ru->all)
                return 1;
        if (ru->folder && !under(path, ru->folder, kind == KIND_DIR)) {
                snprintf(why, whylen, "not under %s", ru->folder);
                return 0;
        }
        if (kind == KIND_DIR)
                return 1;
        if (ru->type && !type_matches(ru, path_basename(path))) {
                ext = last_ext(path_basename(path));
                if (ext)
                        snprintf(why, whylen, "type .%s not selected", ext);
                else
                        snprintf(why, whylen, "no file extension (type %s)", ru->type);
                return 0;
        }
        if (ru->has_max && size > ru->max_size) {
                snprintf(why, whylen, "over %s", ru->max_word);
                return 0;
        }
        return 1;
}

/* Whether reasons ("a; b; c") has one already: each distinct reason is
 * given once ("not under Work; over 50M"). */
static int has_reason(const struct buf *reasons, const char *one)
{
        const char *p = reasons->len ? (const char *)reasons->data : "", *end;
        size_t n = strlen(one);

        for (; *p; p = *end ? end + 2 : end) {
                end = strstr(p, "; ");
                if (end == NULL)
                        end = p + strlen(p);
                if ((size_t)(end - p) == n && !strncmp(p, one, n))
                        return 1;
        }
        return 0;
}

enum rules_verdict rules_check(const struct rules *r, enum rules_dir dir, const char *path,
                               int kind, uint64_t size, char *why, size_t whylen)
{
        const struct ruleset *s;
        struct buf reasons = BUF_INIT;
        enum rules_verdict v = RULES_HOLD;
        char one[PATH_MAX_BYTES + 64];
        size_t i;

        /* The top-level .ferryignore is shared by every device whatever its
         * rules: a device that held it back would ignore other names than
         * its peers. */
        if (r == NULL || strcmp(path, IGNORE_FILE) == 0)
                return RULES_SYNC;
        s = &r->set[dir];
        for (i = 0; i < s->n; i++) {
                one[0] = '\0';
                if (!rule_selects(&s->v[i], path, kind, size, one, sizeof(one))) {
                        if (why && !has_reason(&reasons, one) &&
                            buf_printf(&reasons, "%s%s", reasons.len ? "; " : "", one) < 0)
                                buf_reset(&reasons);
                        continue;
                }
                /* directories hold no content to choose: never asked */
                if (!s->v[i].ask || kind == KIND_DIR) {
                        v = RULES_SYNC;
                        break;
                }
                v = RULES_ASK;
        }
        if (why && whylen > 0) {
                if (v == RULES_ASK)
                        snprintf(why, whylen, "ask");
                else if (v == RULES_HOLD && s->n == 0)
                        snprintf(why, whylen, "no %s rules", dir_names[dir]);
                else if (v == RULES_HOLD)
                        snprintf(why, whylen, "%s",
                                 reasons.len ? (const char *)reasons.data : "not selected");
                else
                        why[0] = '\0';
        }
        buf_free(&reasons);
        return v;
}

int rules_default(struct rules **out)
{
        struct rules *r = calloc(1, sizeof(*r));
        char *all = "all";
        int res;

        if (r == NULL)
                return -ENOMEM;
        if ((res = ruleset_parse(&r->set[RULES_UP], &all, 1, 0)) < 0 ||
            (res = ruleset_parse(&r->set[RULES_DOWN], &all, 1, 0)) < 0) {
                rules_free(r);
                return res;
        }
        *out = r;
        return 0;
}

size_t rules_words(const struct rules *r, enum rules_dir dir, size_t i, char *const **words)
{
        *words = r->set[dir].v[i].words;
        return r->set[dir].v[i].nwords;
}

const char *rules_group_of(const char *path)
{
        const char *ext = last_ext(path_basename(path)), *p;
        size_t i, el;

        if (ext == NULL)
                return NULL;
        el = strlen(ext);
        for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
                for (p = groups[i].exts; *p; p += strcspn(p, " "), p += *p == ' ') {
                        if (strcspn(p, " ") == el && !strncasecmp(ext, p, el))
                                return groups[i].name;
                }
        }
        return NULL;
}
