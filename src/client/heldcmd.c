/* heldcmd: the pieces `ferry push` and `ferry pull` share (see heldcmd.h):
 * each command decides what to override; this takes its operands and runs
 * the round that moves the files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "heldcmd.h"
#include "path.h"

int heldcmd_take_paths(const char *cmd, int argc, char **argv, char ***out)
{
        char **p = calloc((size_t)argc + 1, sizeof(*p));

        *out = p;
        if (!p)
                return cli_fail(cmd, -ENOMEM);
        for (int i = 0; i < argc; i++) {
                size_t n;

                p[i] = strdup(argv[i]);
                if (!p[i])
                        return cli_fail(cmd, -ENOMEM);
                n = strlen(p[i]);
                while (n > 1 && p[i][n - 1] == '/')
                        p[i][--n] = '\0';
                if (path_validate(p[i]) < 0)
                        return cli_usage(cmd, "invalid PATH '%s': %s", argv[i], err_msg(-EINVAL));
        }
        return CLI_OK;
}

void heldcmd_free_paths(char **p)
{
        for (size_t i = 0; p && p[i]; i++)
                free(p[i]);
        free(p);
}

int heldcmd_open_index(const struct config *cfg, struct index **idx)
{
        char *db = config_state_path(cfg, INDEX_FILE);
        int r = db ? index_open(db, idx) : -ENOMEM;

        free(db);
        return r;
}

int heldcmd_at_or_under(const char *path, const char *p)
{
        size_t n = strlen(p);

        return !strncmp(path, p, n) && (path[n] == '\0' || path[n] == '/');
}

int heldcmd_round_waiting(const struct config *cfg, struct sync_stats *st)
{
        struct timespec pause = {0, 200 * 1000000L};
        struct sync_options so = {0};
        int waited = 0, r;

        for (;;) {
                r = sync_run(cfg, &so, st);
                if (r != -EBUSY || waited >= HELDCMD_LOCK_WAIT_MS)
                        return r;
                nanosleep(&pause, NULL);
                waited += 200;
        }
}
