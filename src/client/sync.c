/* sync: one round (see sync.h): lock, sweep, then push and pull passes.
 *
 * Nothing is recorded as synced that is not: the index changes only from
 * the server's answers and after files are on disk, and last_seq and
 * last_sync_ns are written only by a pass that finished. A round that fails
 * half-way (server down, killed, interrupted) leaves the next round to pick
 * up from the last recorded state.
 *
 * The download report (applied_seq) is sent when the index's last_seq moved
 * past the last one reported ("reported_seq" in the index's state), so a
 * round that changed nothing costs no request, and a report lost to a crash
 * goes with the next round. The policy sent to the server is kept there too
 * ("dl_policy_sent"), so it is sent once per change.
 *
 * The rules and ignore patterns are loaded by the session, so a `ferry
 * sync` reads them once per round and a watch only when one of the two
 * files changed (a stat each per round): a 100,000-file no-op round pays
 * for neither. A rules.json that does not parse fails the round rather
 * than sync with rules the user did not write.
 *
 * The LAN peer of a round is looked for only when a download first needs
 * chunks from elsewhere (struct transfer's peer_fetch, set to lan_fetch
 * below), so that rounds that download nothing, or only what local files
 * hold, cost no request and no connection; a round that finds no peer
 * removes the hook for the rest of the round.
 */
#include "sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ask.h"
#include "err.h"
#include "fsutil.h"
#include "ignore.h"
#include "lanclient.h"
#include "localfs.h"
#include "log.h"
#include "path.h"
#include "peers.h"
#include "pull.h"
#include "push.h"
#include "rules.h"
#include "waiting.h"
#include "xferlog.h"

struct sync_session {
        const struct config *cfg;
        struct index *idx;
        struct remote *remote;
        /* download_incomplete as config.json says now: `ferry config` may
         * change it under a running watch */
        int policy;
        struct stat cfg_st; /* config.json when the policy was read */
        int policy_changed; /* not yet acted on by a listing */
        int64_t waiting;    /* files of the last listing, -1 if none */
        /* the rules and ignore patterns, and the stat of their files
         * when read (zeroed: the file was missing) */
        struct rules *rules;
        struct ignore *ignore;
        struct stat rules_st, ignore_st;
        int loaded;
        unsigned rules_gen;
};

static int same_stat(const struct stat *a, const struct stat *b)
{
        return a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* stat of file, zeroed when it is missing. */
static void stat_or_zero(const char *file, struct stat *st)
{
        if (!file || stat(file, st) < 0)
                memset(st, 0, sizeof(*st));
}

int sync_session_load_rules(struct sync_session *ss)
{
        char *rfile = rules_path(ss->cfg->root);
        char *ifile = path_join(ss->cfg->root, IGNORE_FILE);
        struct rules *rules = NULL;
        struct ignore *ig = NULL;
        struct stat rst, ist;
        int r = 0;

        if (!rfile || !ifile) {
                r = -ENOMEM;
                goto out;
        }
        stat_or_zero(rfile, &rst);
        stat_or_zero(ifile, &ist);
        if (!ss->loaded || !same_stat(&rst, &ss->rules_st)) {
                r = rules_load(ss->cfg->root, &rules);
                if (r < 0)
                        goto out;
        }
        if (!ss->loaded || !same_stat(&ist, &ss->ignore_st)) {
                r = ignore_load(ss->cfg->root, &ig);
                if (r < 0)
                        goto out;
        }
        if (ss->loaded && (rules || ig)) {
                log_info("%s changed; using it from now on",
                         rules && ig ? "the rules and .ferryignore"
                         : rules     ? "the rules (.ferry/rules.json)"
                                     : ".ferryignore");
                ss->rules_gen++;
        }
        if (rules) {
                rules_free(ss->rules);
                ss->rules = rules;
                ss->rules_st = rst;
                rules = NULL;
        }
        if (ig) {
                ignore_free(ss->ignore);
                ss->ignore = ig;
                ss->ignore_st = ist;
                ig = NULL;
        }
        ss->loaded = 1;
out:
        rules_free(rules);
        ignore_free(ig);
        free(rfile);
        free(ifile);
        return r;
}

const struct ignore *sync_session_ignore(const struct sync_session *ss)
{
        return ss->ignore;
}

unsigned sync_session_rules_gen(const struct sync_session *ss)
{
        return ss->rules_gen;
}

/* Reads the policy again when config.json changed (a stat per round). */
static void reload_policy(struct sync_session *ss)
{
        char *file = config_state_path(ss->cfg, CONFIG_FILE);
        struct config c = {0};
        struct stat st;

        if (!file)
                return;
        if (stat(file, &st) == 0 && !same_stat(&st, &ss->cfg_st)) {
                ss->cfg_st = st;
                if (config_load(ss->cfg->root, &c) == 0 && c.dl_policy != ss->policy) {
                        log_info("download-incomplete is now '%s'",
                                 config_dl_policy_name(c.dl_policy));
                        ss->policy = c.dl_policy;
                        ss->policy_changed = 1;
                }
                err_clear();
                config_free(&c);
        }
        free(file);
}

/* A refused report is worth a warning; an unreachable server fails the
 * round, as its next request would. */
static int report_failed(const char *what, int r)
{
        if (r == -ECONNREFUSED || r == -ENOMEM)
                return r;
        log_warn("the server refused %s: %s; syncing goes on", what, err_msg(r));
        err_clear();
        return 0;
}

/* A 4xx refusal will not change by asking again (a server without
 * transfer records, say): the report counts as made, so that rounds do not
 * repeat it (and its warning) when nothing changed. A 5xx is retried. */
static int settled(int r)
{
        return r >= 0 || (r != -EIO && r != -ECONNREFUSED && r != -ENOMEM);
}

/* Tells the server the policy when it is not the one last told (a new
 * device starts with the server's default, skip). */
static int send_policy(struct sync_session *ss)
{
        int64_t sent = CONFIG_DL_SKIP;
        int r;

        r = index_state_get(ss->idx, "dl_policy_sent", &sent);
        if (r < 0 && r != -ENOENT)
                return r;
        err_clear();
        if (sent == ss->policy)
                return 0;
        r = xferlog_send_policy(ss->remote, ss->policy);
        if (r < 0 && !settled(r))
                return report_failed("the download policy", r);
        if (r < 0)
                report_failed("the download policy", r);
        return index_state_set(ss->idx, "dl_policy_sent", ss->policy);
}

static int state_or(struct index *idx, const char *key, int64_t dflt, int64_t *v)
{
        int r = index_state_get(idx, key, v);

        if (r == -ENOENT) {
                *v = dflt;
                err_clear();
                r = 0;
        }
        return r;
}

/* POST /api/v1/downloads when last_seq moved past the last report, or
 * there are downloads to report failed or done. */
static int report_downloads(struct sync_ctx *s)
{
        int64_t last, reported;
        int r;

        if ((r = state_or(s->idx, "last_seq", 0, &last)) < 0 ||
            (r = state_or(s->idx, "reported_seq", 0, &reported)) < 0)
                return r;
        if (last <= reported && json_array_size(s->dl_failed) == 0 &&
            json_array_size(s->dl_done) == 0)
                return 0;
        r = xferlog_report_downloads(s->remote, last, s->dl_failed, s->dl_done);
        json_array_clear(s->dl_failed);
        json_array_clear(s->dl_done);
        if (r < 0 && !settled(r))
                return report_failed("the download report", r);
        if (r < 0)
                report_failed("the download report", r);
        return last > reported ? index_state_set(s->idx, "reported_seq", last) : 0;
}

/* The failed downloads of a round that stopped, when the server can still
 * hear of them; the round's own error message is kept. */
static void report_on_failure(struct sync_ctx *s, int r)
{
        char msg[512];

        if (json_array_size(s->dl_failed) == 0 || r == -ECONNREFUSED || r == -EINTR)
                return;
        snprintf(msg, sizeof(msg), "%s", err_msg(r));
        if (xferlog_report_downloads(s->remote, -1, s->dl_failed, NULL) < 0)
                log_debug("could not report the failed downloads");
        err_set(r, "%s", msg);
}

int64_t sync_session_waiting(const struct sync_session *ss)
{
        return ss->waiting;
}

int sync_session_refresh_waiting(struct sync_session *ss, int64_t *files)
{
        json_t *w = NULL;
        int r;

        *files = 0;
        reload_policy(ss);
        if (ss->policy != CONFIG_DL_WAIT) {
                r = ss->policy_changed ? waiting_save(ss->cfg->root, NULL) : 0;
                ss->policy_changed = 0;
                ss->waiting = -1;
                return r;
        }
        r = waiting_fetch(ss->remote, ss->cfg->device_id, &w);
        if (r < 0)
                return report_failed("the list of transfers", r);
        ss->policy_changed = 0;
        *files = ss->waiting = waiting_files(w);
        r = waiting_save(ss->cfg->root, w);
        json_decref(w);
        return r;
}

int sync_session_open(const struct config *cfg, struct sync_session **out)
{
        struct sync_session *ss = calloc(1, sizeof(*ss));
        char *db = NULL;
        int r;

        if (!ss)
                return -ENOMEM;
        ss->cfg = cfg;
        ss->policy = cfg->dl_policy;
        /* a first listing under "wait"; a stale list goes under "skip" */
        ss->policy_changed = 1;
        ss->waiting = -1;
        db = config_state_path(cfg, CONFIG_FILE);
        if (db && stat(db, &ss->cfg_st) < 0)
                memset(&ss->cfg_st, 0, sizeof(ss->cfg_st));
        free(db);
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
        rules_free(ss->rules);
        ignore_free(ss->ignore);
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

/* The LAN peer of one round, found when a download first asks. */
struct lan_lazy {
        struct sync_session *ss;
        const struct sync_options *o;
        struct transfer *xfer;
        struct lanclient *lc;
};

/* Picks an online device on this LAN and connects; ll->lc stays NULL when
 * there is none or it does not answer (the server has every chunk). */
static void lan_find(struct lan_lazy *ll)
{
        const struct config *cfg = ll->ss->cfg;
        const struct peers *list = ll->o->lan_peers;
        struct peers own = {0};
        const struct peer *q;
        struct peer me;
        uint8_t key[LANPROTO_KEY_LEN];
        int64_t version;
        int r;

        if (!list) {
                r = peers_fetch(ll->ss->remote, &own);
                if (r < 0)
                        goto out;
                list = &own;
        }
        r = peers_me(list, cfg->device_id, cfg->server, &me);
        q = r == 0 ? peers_lan_peer(list, &me) : NULL;
        if (!q)
                goto out;
        if (ll->o->lan_key)
                memcpy(key, ll->o->lan_key, sizeof(key));
        else if ((r = peers_fetch_key(ll->ss->remote, key, &version)) < 0)
                goto out;
        r = lanclient_connect(q->lan_addr, (uint16_t)q->lan_port, cfg->device_id, key, q->id,
                              LANCLIENT_CONNECT_MS, &ll->lc);
        memset(key, 0, sizeof(key));
        if (r < 0)
                log_info("%s on this LAN does not answer (%s); downloading from the server",
                         q->name, err_msg(r));
        else
                log_info("taking chunks from %s over the LAN (%s:%d) first", q->name, q->lan_addr,
                         q->lan_port);
out:
        if (r < 0)
                log_debug("no LAN peer: %s", err_msg(r));
        err_clear();
        peers_free(&own);
}

static int lan_fetch(void *ud, const struct hash *hashes, size_t n, struct buf *frames)
{
        struct lan_lazy *ll = ud;
        int r;

        if (!ll->lc)
                lan_find(ll);
        if (!ll->lc) {
                ll->xfer->peer_fetch = NULL; /* for the rest of the round */
                return 0;
        }
        r = lanclient_fetch(ll->lc, hashes, n, frames);
        if (r < 0)
                ll->xfer->peer_fetch = NULL; /* broken: the server it is */
        return r;
}

int sync_check_cancel(const struct sync_options *o)
{
        if (o->cancelled && o->cancelled(o->ud))
                return err_set(-EINTR, "interrupted; the round stopped at a safe point");
        return 0;
}

/* The passes of a round. When they brought a new .ferryignore (or the
 * rules changed meanwhile), they run once more under it, from a first
 * pass, so that the files it now lets through move in this round rather
 * than the next: a device syncing for the first time gets the shared
 * patterns' files at once. */
static int run_passes(struct sync_session *ss, struct sync_ctx *s)
{
        unsigned gen = ss->rules_gen;
        int r;

        for (int rerun = 0;; rerun++) {
                for (s->pass = 0; s->pass < SYNC_MAX_PASSES; s->pass++) {
                        s->again = 0;
                        if ((r = sync_check_cancel(s->opts)) < 0)
                                return r;
                        r = push_run(s);
                        if (r < 0)
                                return r;
                        r = pull_run(s);
                        if (r < 0)
                                return r;
                        if (!s->again)
                                break;
                        log_debug("pass %d left local changes to upload; running another",
                                  s->pass + 1);
                }
                if (rerun > 0 || (r = sync_session_load_rules(ss)) < 0 || ss->rules_gen == gen)
                        return r;
                s->rules = ss->rules;
                s->ignore = ss->ignore;
        }
}

int sync_session_round(struct sync_session *ss, const struct sync_options *o, struct sync_stats *st)
{
        const struct config *cfg = ss->cfg;
        struct sync_ctx s = {.cfg = cfg, .opts = o, .idx = ss->idx, .remote = ss->remote};
        struct lan_lazy lan = {.ss = ss, .o = o, .xfer = &s.xfer};
        struct remote_stats w0, w1;
        int64_t swept = 0, partials = 0, waiting;
        int lock = -1, r;

        memset(st, 0, sizeof(*st));
        remote_stats(ss->remote, &w0);
        remote_set_progress(ss->remote, o->transfer, o->ud);
        r = localfs_lock(cfg->root, &lock);
        if (r < 0)
                goto out;
        s.pending = json_array();
        s.dl_failed = json_array();
        s.dl_done = json_array();
        if (!s.pending || !s.dl_failed || !s.dl_done) {
                r = -ENOMEM;
                goto out;
        }
        r = sync_session_load_rules(ss);
        if (r < 0)
                goto out;
        s.rules = ss->rules;
        s.ignore = ss->ignore;
        reload_policy(ss);
        r = send_policy(ss);
        if (r < 0)
                goto out;
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
        if (!o->no_lan) {
                s.xfer.peer_fetch = lan_fetch;
                s.xfer.peer_ud = &lan;
        }
        localfs_trash_stamp(time(NULL), s.stamp);

        r = run_passes(ss, &s);
        if (r < 0)
                goto out;
        /* Every download of this round has finished, so a partial kept at
         * the start that none of them resumed (its file was deleted or
         * renamed on the server meanwhile) has no use left. */
        if (partials > 0) {
                r = localfs_sweep_temp(cfg->root, 0, &swept, NULL);
                if (r < 0)
                        goto out;
        }
        r = report_downloads(&s);
        if (r == 0 && (!o->no_waiting || ss->policy_changed))
                r = sync_session_refresh_waiting(ss, &waiting);
        if (r == 0)
                r = index_state_set(s.idx, "last_sync_ns", fsutil_now_ns());
        if (r == 0)
                r = index_held_count(s.idx, RULES_UP, &s.stats.held_up);
        if (r == 0)
                r = index_held_count(s.idx, RULES_DOWN, &s.stats.held_down);
        if (r == 0 && s.stats.invalid > 0)
                r = err_set(-EPROTO, "the server refused %lld change(s) as invalid (see above)",
                            (long long)s.stats.invalid);
out:
        if (r < 0)
                report_on_failure(&s, r);
        remote_set_progress(ss->remote, NULL, NULL);
        remote_stats(ss->remote, &w1);
        s.stats.bytes_up = w1.bytes_up - w0.bytes_up;
        s.stats.bytes_down = w1.bytes_down - w0.bytes_down;
        s.stats.requests = w1.requests - w0.requests;
        s.stats.bytes_lan = (int64_t)s.xfer.bytes_lan;
        lanclient_close(lan.lc);
        *st = s.stats;
        for (size_t i = 0; i < s.nmoved; i++) {
                free(s.moved_from[i]);
                free(s.moved_to[i]);
        }
        free(s.moved_from);
        free(s.moved_to);
        json_decref(s.pending);
        free(s.own_seqs);
        json_decref(s.dl_failed);
        json_decref(s.dl_done);
        localfs_unlock(lock);
        return r;
}

static void add_stats(struct sync_stats *a, const struct sync_stats *b)
{
        a->uploaded += b->uploaded;
        a->downloaded += b->downloaded;
        a->deleted += b->deleted;
        a->conflicts += b->conflicts;
        a->invalid += b->invalid;
        a->refused += b->refused;
        a->bytes_up += b->bytes_up;
        a->bytes_down += b->bytes_down;
        a->requests += b->requests;
        a->bytes_lan += b->bytes_lan;
        a->held_up = b->held_up; /* as the last round left them */
        a->held_down = b->held_down;
}

/* The question about the files the ask rule holds, and the round that
 * moves those chosen. */
static int ask_and_move(struct sync_session *ss, const struct sync_options *o,
                        struct sync_stats *st)
{
        struct sync_stats more;
        size_t chosen = 0;
        int r;

        if (o->asking)
                o->asking(o->ud);
        r = ask_run(ss->idx, o->ask_in, o->ask_out, &chosen);
        if (r < 0 || chosen == 0)
                return r;
        r = sync_session_round(ss, o, &more);
        add_stats(st, &more);
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
        if (r == 0 && !o->no_ask && o->ask_in && o->ask_out)
                r = ask_and_move(ss, o, st);
        sync_session_close(ss);
        return r;
}
