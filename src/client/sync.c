/* sync: one round (see sync.h): lock, sweep, then push and pull passes.
 *
 * Nothing is recorded as synced that is not: the index changes only from
 * the server's answers and after files are on disk, and last_seq and
 * last_sync_ns are written only by a pass that finished. A round that fails
 * half-way (server down, killed) leaves the next round to pick up from the
 * last recorded state.
 */
#include "sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "fsutil.h"
#include "localfs.h"
#include "log.h"
#include "path.h"
#include "pull.h"
#include "push.h"

int sync_run(const struct config *cfg, const struct sync_options *o, struct sync_stats *st)
{
        struct sync_ctx s = {.cfg = cfg, .opts = o};
        char *db = NULL;
        int64_t swept = 0;
        int lock = -1, r;

        memset(st, 0, sizeof(*st));
        r = localfs_lock(cfg->root, &lock);
        if (r < 0)
                goto out;
        db = config_state_path(cfg, INDEX_FILE);
        s.pending = json_array();
        if (!db || !s.pending) {
                r = -ENOMEM;
                goto out;
        }
        r = index_open(db, &s.idx);
        if (r < 0)
                goto out;
        r = localfs_sweep_temp(cfg->root, &swept);
        if (r < 0)
                goto out;
        if (swept)
                log_info("removed %lld temporary files left by an interrupted run",
                         (long long)swept);
        r = remote_new(cfg->server, cfg->token, &s.remote);
        if (r < 0)
                goto out;
        s.xfer.remote = s.remote;
        s.xfer.root = cfg->root;
        s.xfer.idx = s.idx;
        s.xfer.open_moved = NULL;
        s.xfer.ud = &s;
        localfs_trash_stamp(time(NULL), s.stamp);

        for (int pass = 0; pass < SYNC_MAX_PASSES; pass++) {
                s.again = 0;
                r = push_run(&s);
                if (r < 0)
                        goto out;
                r = pull_run(&s);
                if (r < 0)
                        goto out;
                if (!s.again)
                        break;
                log_debug("pass %d left local changes to upload; running another", pass + 1);
        }
        r = index_state_set(s.idx, "last_sync_ns", fsutil_now_ns());
        if (r == 0 && s.stats.invalid > 0)
                r = err_set(-EPROTO, "the server refused %lld change(s) as invalid (see above)",
                            (long long)s.stats.invalid);
out:
        *st = s.stats;
        for (size_t i = 0; i < s.nmoved; i++) {
                free(s.moved_from[i]);
                free(s.moved_to[i]);
        }
        free(s.moved_from);
        free(s.moved_to);
        json_decref(s.pending);
        remote_free(s.remote);
        if (s.idx)
                index_close(s.idx);
        free(db);
        localfs_unlock(lock);
        return r;
}
