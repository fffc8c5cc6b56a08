/* config: reads and writes a linked folder's DIR/.ferry/config.json, and
 * finds the linked folder from a working directory the way git finds .git.
 *
 * The file holds the device token, so it is written 0600 inside a 0700
 * folder, and always atomically (temporary file, fsync, rename): a crash
 * while saving leaves the old or the new config, never half of one.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "fsutil.h"
#include "path.h"

/* config.json is a few hundred bytes; anything huge is not ours. */
#define CONFIG_MAX_BYTES (1024 * 1024)

char *config_state_path(const struct config *c, const char *name)
{
        struct buf b = BUF_INIT;

        if (buf_printf(&b, "%s/%s/%s", c->root, PATH_STATE_DIR, name) < 0) {
                buf_free(&b);
                return NULL;
        }
        return (char *)buf_steal(&b, NULL);
}

/* 1 when dir/.ferry/config.json is a regular file. */
static int has_config(const char *dir)
{
        struct buf b = BUF_INIT;
        struct stat st;
        int found = 0;

        if (buf_printf(&b, "%s%s%s/%s", dir, strcmp(dir, "/") == 0 ? "" : "/", PATH_STATE_DIR,
                       CONFIG_FILE) < 0)
                return -ENOMEM;
        if (stat((const char *)b.data, &st) == 0 && S_ISREG(st.st_mode))
                found = 1;
        buf_free(&b);
        return found;
}

int config_find_root(const char *start, char **root)
{
        char *dir = NULL, *slash;
        int r;

        dir = realpath(start, NULL);
        if (dir == NULL) {
                r = err_set(-errno, "cannot open %s: %s", start, strerror(errno));
                goto out;
        }
        for (;;) {
                r = has_config(dir);
                if (r < 0)
                        goto out;
                if (r == 1) {
                        *root = dir;
                        dir = NULL;
                        r = 0;
                        goto out;
                }
                if (strcmp(dir, "/") == 0)
                        break;
                slash = strrchr(dir, '/');
                if (slash == dir)
                        slash[1] = '\0';
                else
                        *slash = '\0';
        }
        r = err_set(-ENOENT,
                    "%s is not inside a linked Ferry folder (no .ferry/ found; run "
                    "'ferry init' first)",
                    start);
out:
        free(dir);
        return r;
}

const char *config_dl_policy_name(int policy)
{
        return policy == CONFIG_DL_WAIT ? "wait" : "skip";
}

int config_dl_policy_parse(const char *s)
{
        if (!strcmp(s, "skip"))
                return CONFIG_DL_SKIP;
        if (!strcmp(s, "wait"))
                return CONFIG_DL_WAIT;
        return -EINVAL;
}

/* Copies an optional string member; a present member of another type is an
 * error. */
static int get_str(const json_t *o, const char *key, const char *file, char **out)
{
        json_t *v = json_object_get(o, key);

        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return err_set(-EINVAL, "%s: \"%s\" must be a string", file, key);
        *out = strdup(json_string_value(v));
        return *out ? 0 : -ENOMEM;
}

static int get_int(const json_t *o, const char *key, const char *file, int64_t min, int64_t max,
                   int64_t *out)
{
        json_t *v = json_object_get(o, key);
        json_int_t i;

        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_integer(v))
                return err_set(-EINVAL, "%s: \"%s\" must be an integer", file, key);
        i = json_integer_value(v);
        if (i < min || i > max)
                return err_set(-EINVAL, "%s: \"%s\" must be between %lld and %lld", file, key,
                               (long long)min, (long long)max);
        *out = i;
        return 0;
}

int config_load(const char *root, struct config *c)
{
        struct config tmp = {0};
        char *file = NULL;
        json_t *j = NULL;
        json_error_t jerr;
        char *text = NULL, *policy = NULL;
        size_t len = 0;
        int64_t pct = CONFIG_DEFAULT_MASS_DELETE_PERCENT;
        int r;

        tmp.root = realpath(root, NULL);
        if (tmp.root == NULL)
                tmp.root = strdup(root);
        if (tmp.root == NULL) {
                r = -ENOMEM;
                goto out;
        }
        tmp.mass_delete_count = CONFIG_DEFAULT_MASS_DELETE_COUNT;

        file = config_state_path(&tmp, CONFIG_FILE);
        if (file == NULL) {
                r = -ENOMEM;
                goto out;
        }
        r = fsutil_read_all(file, CONFIG_MAX_BYTES, &text, &len);
        if (r < 0) {
                err_set(r, "cannot read %s: %s", file, strerror(-r));
                goto out;
        }
        j = json_loadb(text, len, 0, &jerr);
        if (j == NULL || !json_is_object(j)) {
                r = err_set(-EINVAL, "%s: not a JSON object (%s, line %d)", file,
                            j ? "wrong type" : jerr.text, jerr.line);
                goto out;
        }
        if ((r = get_str(j, "server", file, &tmp.server)) < 0 ||
            (r = get_str(j, "user", file, &tmp.user)) < 0 ||
            (r = get_str(j, "device_id", file, &tmp.device_id)) < 0 ||
            (r = get_str(j, "device_name", file, &tmp.device_name)) < 0 ||
            (r = get_str(j, "token", file, &tmp.token)) < 0 ||
            (r = get_int(j, "mass_delete_count", file, 0, INT64_MAX, &tmp.mass_delete_count)) < 0 ||
            (r = get_int(j, "mass_delete_percent", file, 0, 100, &pct)) < 0 ||
            (r = get_str(j, "download_incomplete", file, &policy)) < 0)
                goto out;
        tmp.mass_delete_percent = (int)pct;
        if (policy) {
                tmp.dl_policy = config_dl_policy_parse(policy);
                if (tmp.dl_policy < 0) {
                        r = err_set(-EINVAL,
                                    "%s: \"download_incomplete\" must be \"skip\" or \"wait\"",
                                    file);
                        goto out;
                }
        }
        *c = tmp;
        memset(&tmp, 0, sizeof(tmp));
out:
        free(file);
        free(policy);
        config_free(&tmp);
        json_decref(j);
        free(text);
        return r;
}

/* Sets key to s, or leaves it out when s is NULL. */
static int set_str(json_t *o, const char *key, const char *s)
{
        if (s == NULL)
                return 0;
        return json_object_set_new(o, key, json_string(s)) == 0 ? 0 : -ENOMEM;
}

int config_save(const struct config *c)
{
        char *dir = NULL, *file = NULL, *text = NULL;
        json_t *j = json_object();
        int r;

        if (j == NULL) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = set_str(j, "server", c->server)) < 0 || (r = set_str(j, "user", c->user)) < 0 ||
            (r = set_str(j, "device_id", c->device_id)) < 0 ||
            (r = set_str(j, "device_name", c->device_name)) < 0 ||
            (r = set_str(j, "token", c->token)) < 0)
                goto out;
        if (json_object_set_new(j, "mass_delete_count", json_integer(c->mass_delete_count)) < 0 ||
            json_object_set_new(j, "mass_delete_percent", json_integer(c->mass_delete_percent)) <
                0 ||
            json_object_set_new(j, "download_incomplete",
                                json_string(config_dl_policy_name(c->dl_policy))) < 0) {
                r = -ENOMEM;
                goto out;
        }
        text = json_dumps(j, JSON_INDENT(2));
        dir = path_join(c->root, PATH_STATE_DIR);
        file = config_state_path(c, CONFIG_FILE);
        if (text == NULL || dir == NULL || file == NULL) {
                r = -ENOMEM;
                goto out;
        }
        r = fsutil_mkdirs(dir, 1);
        if (r < 0) {
                err_set(r, "cannot create %s: %s", dir, strerror(-r));
                goto out;
        }
        r = fsutil_write_atomic(file, text, strlen(text), 0600);
        if (r < 0)
                err_set(r, "cannot write %s: %s", file, strerror(-r));
out:
        json_decref(j);
        free(text);
        free(dir);
        free(file);
        return r;
}

void config_free(struct config *c)
{
        if (c == NULL)
                return;
        free(c->root);
        free(c->server);
        free(c->user);
        free(c->device_id);
        free(c->device_name);
        free(c->token);
        memset(c, 0, sizeof(*c));
}
