/* rules_file: DIR/.ferry/rules.json, the stored form of a device's rules
 * (rules.h; the rules themselves are in rules.c, which this file uses only
 * through rules.h):
 *   {"mode": "index", "up": [["all"]], "down": [["folder", "Work"]]}
 * a rule being the JSON array of its words.
 *
 * The file is written like config.json: 0600, atomically (temporary file,
 * fsync, rename), so a crash leaves the old or the new rules. It is read
 * strictly: anything but the format above (not JSON, an unknown key, a rule
 * that does not parse) is refused with a message naming the file and the
 * rule, because a silently dropped rule would upload or download what the
 * user meant to keep back.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"
#include "path.h"
#include "rules.h"

#define RULES_MAX_BYTES (1024 * 1024)

static const char *const dir_names[2] = {"up", "down"};

char *rules_path(const char *root)
{
        struct buf b = BUF_INIT;

        if (buf_printf(&b, "%s/%s/%s", root, PATH_STATE_DIR, RULES_FILE) < 0) {
                buf_free(&b);
                return NULL;
        }
        return (char *)buf_steal(&b, NULL);
}

/* Reads one rule set ("up" or "down") from the parsed file. */
static int load_set(struct rules *r, enum rules_dir dir, json_t *j, const char *file)
{
        json_t *a = json_object_get(j, dir_names[dir]), *rule, *w;
        char **words = NULL, msg[600], *none = "none";
        size_t i, k, n;
        int res = 0;

        if (a == NULL)
                return 0;
        if (!json_is_array(a))
                return err_set(-EINVAL, "%s: \"%s\" must be an array of rules", file,
                               dir_names[dir]);
        res = rules_set(r, dir, &none, 1);
        if (res < 0)
                return res;
        json_array_foreach(a, i, rule)
        {
                n = json_array_size(rule);
                if (!json_is_array(rule) || n == 0) {
                        res = err_set(-EINVAL, "%s: %s rule %zu must be an array of words", file,
                                      dir_names[dir], i + 1);
                        goto out;
                }
                words = calloc(n, sizeof(*words));
                if (words == NULL) {
                        res = -ENOMEM;
                        goto out;
                }
                json_array_foreach(rule, k, w)
                {
                        if (!json_is_string(w)) {
                                res = err_set(-EINVAL, "%s: %s rule %zu: a word is not a string",
                                              file, dir_names[dir], i + 1);
                                goto out;
                        }
                        words[k] = (char *)json_string_value(w);
                }
                res = rules_add(r, dir, words, n);
                if (res == 0 && rules_count(r, dir) != i + 1)
                        res = err_set(-EINVAL, "\"or\" inside one rule");
                if (res < 0) {
                        snprintf(msg, sizeof(msg), "%s", err_msg(res));
                        res = err_set(-EINVAL, "%s: %s rule %zu: %s", file, dir_names[dir], i + 1,
                                      msg);
                        goto out;
                }
                free(words);
                words = NULL;
        }
out:
        free(words);
        return res;
}

int rules_load(const char *root, struct rules **out)
{
        struct rules *r = NULL;
        char *file = rules_path(root), *text = NULL;
        const char *key;
        json_t *j = NULL, *v;
        json_error_t jerr;
        size_t len = 0;
        int res;

        if (file == NULL) {
                res = -ENOMEM;
                goto out;
        }
        if ((res = rules_default(&r)) < 0)
                goto out;
        res = fsutil_read_all(file, RULES_MAX_BYTES, &text, &len);
        if (res == -ENOENT) {
                res = 0;
                goto done;
        }
        if (res < 0) {
                err_set(res, "cannot read %s: %s", file, strerror(-res));
                goto out;
        }
        j = json_loadb(text, len, 0, &jerr);
        if (j == NULL || !json_is_object(j)) {
                res = err_set(-EINVAL, "%s: not a JSON object (%s, line %d)", file,
                              j ? "wrong type" : jerr.text, jerr.line);
                goto out;
        }
        json_object_foreach(j, key, v)
        {
                if (strcmp(key, "mode") && strcmp(key, "up") && strcmp(key, "down")) {
                        res = err_set(-EINVAL, "%s: unknown key \"%s\" (expected mode, up, down)",
                                      file, key);
                        goto out;
                }
        }
        v = json_object_get(j, "mode");
        if (v) {
                res = json_is_string(v) ? rules_mode_parse(json_string_value(v)) : -EINVAL;
                if (res < 0) {
                        res = err_set(
                            -EINVAL, "%s: \"mode\" must be \"index\" or \"since-last-sync\"", file);
                        goto out;
                }
                rules_set_mode(r, (enum rules_mode)res);
        }
        if ((res = load_set(r, RULES_UP, j, file)) < 0 ||
            (res = load_set(r, RULES_DOWN, j, file)) < 0)
                goto out;
done:
        *out = r;
        r = NULL;
out:
        rules_free(r);
        json_decref(j);
        free(text);
        free(file);
        return res;
}

static json_t *set_to_json(const struct rules *r, enum rules_dir dir)
{
        json_t *a = json_array(), *rule;
        char *const *words;
        size_t i, k, n;

        for (i = 0; a && i < rules_count(r, dir); i++) {
                rule = json_array();
                n = rules_words(r, dir, i, &words);
                for (k = 0; rule && k < n; k++) {
                        if (json_array_append_new(rule, json_string(words[k])) < 0) {
                                json_decref(rule);
                                rule = NULL;
                        }
                }
                /* a NULL rule fails the append: never a partial rules.json */
                if (json_array_append_new(a, rule) < 0) {
                        json_decref(a);
                        a = NULL;
                }
        }
        return a;
}

int rules_save(const struct rules *r, const char *root)
{
        char *dir = path_join(root, PATH_STATE_DIR), *file = rules_path(root), *text = NULL;
        json_t *j = json_object();
        int res;

        if (j == NULL || dir == NULL || file == NULL ||
            json_object_set_new(j, "mode", json_string(rules_mode_name(rules_mode(r)))) < 0 ||
            json_object_set_new(j, "up", set_to_json(r, RULES_UP)) < 0 ||
            json_object_set_new(j, "down", set_to_json(r, RULES_DOWN)) < 0 ||
            (text = json_dumps(j, JSON_INDENT(2))) == NULL) {
                res = -ENOMEM;
                goto out;
        }
        res = fsutil_mkdirs(dir, 1);
        if (res < 0) {
                err_set(res, "cannot create %s: %s", dir, strerror(-res));
                goto out;
        }
        res = fsutil_write_atomic(file, text, strlen(text), 0600);
        if (res < 0)
                err_set(res, "cannot write %s: %s", file, strerror(-res));
out:
        json_decref(j);
        free(text);
        free(dir);
        free(file);
        return res;
}
