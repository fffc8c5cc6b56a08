/* config: a linked folder's client state, kept in DIR/.ferry/config.json
 * (mode 0600, since it holds the device token): which server, which user,
 * which device, and the per-device settings. Finding the linked folder works
 * like git: the given directory, or the nearest parent holding .ferry/.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdint.h>

#define CONFIG_FILE "config.json"
#define CONFIG_DEFAULT_MASS_DELETE_COUNT 50
#define CONFIG_DEFAULT_MASS_DELETE_PERCENT 25

/* What this device does with files another device announced but has not
 * finished uploading (docs/cli.md "config"): skip them until they are
 * complete (the default), or wait: list them as waiting and have the server
 * keep download records for them. */
enum config_dl_policy { CONFIG_DL_SKIP = 0, CONFIG_DL_WAIT = 1 };

struct config {
        char *root;   /* absolute path of the linked folder */
        char *server; /* base URL without trailing '/', e.g. http://127.0.0.1:8700 */
        char *user;
        char *device_id; /* 32 hex */
        char *device_name;
        char *token; /* 64 hex */
        /* the mass-delete guard trips when one round would delete more than
         * mass_delete_count files AND more than mass_delete_percent % of the
         * folder */
        int64_t mass_delete_count;
        int mass_delete_percent;
        /* download_incomplete: enum config_dl_policy; the server learns it
         * through POST /api/v1/device (sync.c sends it when it changed) */
        int dl_policy;
        /* bandwidth limits of this run's transfers in bytes/s (0: none),
         * from --limit-up / --limit-down; not stored in config.json.
         * sync_session_open applies them to its connection. */
        int64_t limit_up, limit_down;
};

/* From start (a directory), walks up to the nearest directory holding
 * .ferry/config.json; *root gets its absolute path (malloc'd). -ENOENT with
 * a message when there is none. */
int config_find_root(const char *start, char **root);

/* Loads root/.ferry/config.json into c (zeroed by the caller). Missing
 * settings get their defaults. Returns 0 or -errno with a message. */
int config_load(const char *root, struct config *c);

/* Creates root/.ferry/ (0700) if needed and writes config.json atomically
 * with mode 0600. */
int config_save(const struct config *c);

void config_free(struct config *c);

/* "skip" or "wait"; the policy named s (-EINVAL for anything else). */
const char *config_dl_policy_name(int policy);
int config_dl_policy_parse(const char *s);

/* root/.ferry/<name>, malloc'd. */
char *config_state_path(const struct config *c, const char *name);

#endif
