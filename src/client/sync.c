/* sync: one round (see sync.h): lock, sweep, then push and pull passes.
 *
 * Nothing is recorded as synced that is not: the index changes only from
 * the server's answers and after files are on disk, and last_seq and
 * last_sync_ns are written only by a pass that finished. A round that fails
 * half-way (server down, killed, interrupted) leaves the next round to pick
 * up from the last recorded state.
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

struct sync_session {
        const struct config *cfg;
        struct index *idx;
        struct remote *remote;
};

int sync_session_open(const struct config *cfg, struct sync_session **out)
{
        struct sync_session *ss = calloc(1, sizeof(*ss));
        char *db = NULL;
        int r;

        if (!ss)
                return -ENOMEM;
        ss->cfg = cfg;
        db = config_state_path(cfg, INDEX_FILE);
        if (!db) {
                r = -ENOMEM;
                goto out;
        }
        r = index_open(db, &ss->idx);
        if (r == 0)
                r = remote_new(cfg->server, cfg->token, &ss->remote);
        if (r == 0 && (cfg->limit_up > 0 || cfg->limit_down > 0))
                remote_set_limits(ss->remote, cfg->limit_up, cfg->limit_down);
        if (r == 0) {
                *out = ss;
                ss = NULL;
        }
out:
        free(db);
        sync_session_close(ss);
        return r;
}

void sync_session_close(struct sync_session *ss)
{
        if (!ss)
                return;
        remote_free(ss->remote);
        if (ss->idx)
                index_close(ss->idx);
        free(ss);
}

int sync_session_last_seq(struct sync_session *ss, int64_t *seq)
{
        int r = index_state_get(ss->idx, "last_seq", seq);

        if (r == -ENOENT) {
                *seq = 0;
                err_clear();
                r = 0;
        }
        return r;
}

int sync_check_cancel(const struct sync_options *o)
{
        if (o->cancelled && o->cancelled(o->ud))
                return err_set(-EINTR, "interrupted; the round stopped at a safe point");
        return 0;
}

int sync_session_round(struct sync_session *ss, const struct sync_options *o, struct sync_stats *st)
{
        const struct config *cfg = ss->cfg;
        struct sync_ctx s = {.cfg = cfg, .opts = o, .idx = ss->idx, .remote = ss->remote};
        struct remote_stats w0, w1;
        int64_t swept = 0, partials = 0;
        int lock = -1, r;

        memset(st, 0, sizeof(*st));
        remote_stats(ss->remote, &w0);
        remote_set_progress(ss->remote, o->transfer, o->ud);
        r = localfs_lock(cfg->root, &lock);
        if (r < 0)
                goto out;
        s.pending = json_array();
        if (!s.pending) {
                r = -ENOMEM;
                goto out;
        }
        if (!o->no_sweep) {
                r = localfs_sweep_temp(cfg->root, 1, &swept, &partials);
                if (r < 0)
                        goto out;
                if (swept)
                        log_info("removed %lld temporary files left by an interrupted run",
                                 (long long)swept);
        }
        s.xfer.remote = s.remote;
        s.xfer.root = cfg->root;
        s.xfer.idx = s.idx;
        s.xfer.open_moved = NULL;
        s.xfer.ud = &s;
        localfs_trash_stamp(time(NULL), s.stamp);

        for (s.pass = 0; s.pass < SYNC_MAX_PASSES; s.pass++) {
                s.again = 0;
                if ((r = sync_check_cancel(o)) < 0)
                        goto out;
                r = push_run(&s);
                if (r < 0)
                        goto out;
                r = pull_run(&s);
                if (r < 0)
                        goto out;
                if (!s.again)
                        break;
                log_debug("pass %d left local changes to upload; running another", s.pass + 1);
        }
        /* Every download of this round has finished, so a partial kept at
         * the start that none of them resumed (its file was deleted or
         * renamed on the server meanwhile) has no use left. */
        if (partials > 0) {
                r = localfs_sweep_temp(cfg->root, 0, &swept, NULL);
                if (r < 0)
                        goto out;
        }
        r = index_state_set(s.idx, "last_sync_ns", fsutil_now_ns());
        if (r == 0 && s.stats.invalid > 0)
                r = err_set(-EPROTO, "the server refused %lld change(s) as invalid (see above)",
                            (long long)s.stats.invalid);
out:
        remote_set_progress(ss->remote, NULL, NULL);
        remote_stats(ss->remote, &w1);
        s.stats.bytes_up = w1.bytes_up - w0.bytes_up;
        s.stats.bytes_down = w1.bytes_down - w0.bytes_down;
        s.stats.requests = w1.requests - w0.requests;
        *st = s.stats;
        for (size_t i = 0; i < s.nmoved; i++) {
                free(s.moved_from[i]);
                free(s.moved_to[i]);
        }
        free(s.moved_from);
        free(s.moved_to);
        json_decref(s.pending);
        localfs_unlock(lock);
        return r;
}

int sync_run(const struct config *cfg, const struct sync_options *o, struct sync_stats *st)
{
        struct sync_session *ss = NULL;
        int r;

        memset(st, 0, sizeof(*st));
        /* the lock first, so that a busy folder fails before anything opens */
        {
                int lock = -1;

                r = localfs_lock(cfg->root, &lock);
                localfs_unlock(lock);
                if (r < 0)
                        return r;
        }
        r = sync_session_open(cfg, &ss);
        if (r == 0)
                r = sync_session_round(ss, o, st);
        sync_session_close(ss);
        return r;
}
