/* watch: the daemon's main loop (see watch.h).
 *
 * Everything that touches the folder, the index or the status file happens
 * on this thread, one round at a time; the event-stream thread only records
 * the server's newest seq and pokes us. A round is decided by run_due():
 * a full round when one is owed (start-up, overflow, reconnect, period),
 * else a targeted round when dirty paths have settled or the server is
 * ahead of the index. A failed round puts its paths back and is retried
 * with the same capped, jittered backoff as the stream.
 *
 * Under the download policy "wait", the files other devices are still
 * uploading are listed by full rounds and again when the stream says the
 * account's transfer records changed (at most every WATCH_WAITING_MIN_MS:
 * an upload elsewhere changes them with each chunk body); the commit that
 * completes such a file announces a new seq like any other, so the file
 * downloads without anyone asking.
 *
 * Rules and ignore patterns: the session reads .ferry/rules.json and
 * .ferryignore again when they change (sync.h). A change of either (seen
 * after a round, or at once for rules.json through its inotify event)
 * makes the next round a full one, since files held or ignored until now
 * may go up now, and hands the new patterns to the inotify tree, which
 * watches the directories no longer ignored and drops the others. Ignored
 * paths raise no event at all (notify.c). The `ask` rule never asks here:
 * its files stay held, listed by `ferry held`.
 *
 * Upload requests (watch_req.h) come from the LAN listener's eventfd and
 * from the server (on hello and "requests" events); the control list and
 * LAN key are refreshed on hello and "devices" events. A queued request
 * goes before anything else due, as full rounds with overrides for what
 * it asks; while it runs, the status file names it.
 */
#include "watch.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "dirty.h"
#include "err.h"
#include "evstream.h"
#include "fsutil.h"
#include "log.h"
#include "notify.h"
#include "sync.h"
#include "wstatus.h"

#define MS 1000000LL
/* The longest a full round waits for files being written to be closed. */
#define WATCH_FULL_WAIT_S 10
#define SEC 1000000000LL
/* The shortest time between two listings of the files waited for. */
#define WATCH_WAITING_MIN_MS 1000

struct watch {
        const struct config *cfg;
        struct sync_session *ss;
        struct notify *nt;
        struct dirty_set *dirty;
        struct evstream *es;
        int sigfd, timerfd, evfd, epfd;
        int stopping, root_gone, mem_failed;
        /* rounds */
        int need_full;
        int64_t full_wait_ns; /* since when a full round waits for writers, 0 if not */
        const char *full_why;
        int64_t next_full_ns;   /* the periodic rescan (monotonic) */
        int64_t retry_ns;       /* no round before this (backoff), 0 none */
        unsigned failures;      /* consecutive failed rounds */
        int64_t applied_seq;    /* last_seq in the index after the last round */
        int64_t pulled_seq;     /* the newest announced seq a round has pulled for */
        uint64_t seen_connects; /* evstream connects already handled */
        uint64_t seen_transfer_events;
        uint64_t seen_device_events, seen_request_events;
        struct watch_req *wr;
        int lanfd;             /* the LAN listener's eventfd, -1 if none */
        const char *req_label; /* "upload request N from X" while one runs */
        char req_state[256];   /* the status text then */
        int64_t waiting_due;   /* list the files waited for then (monotonic), 0 if not */
        int64_t waiting_last;  /* the last listing */
        unsigned rules_gen;    /* sync_session_rules_gen when last acted on */
        int rules_event;       /* rules.json was written: load it now */
        int online;
        struct wstatus st;
};

static void set_state(struct watch *w, const char *state)
{
        if (w->st.state && !strcmp(w->st.state, state) && !w->st.have_detail)
                return;
        if (!w->st.state || strcmp(w->st.state, state) != 0)
                w->st.since = time(NULL);
        w->st.state = state;
        w->st.have_detail = 0;
        if (wstatus_write(w->cfg->root, &w->st) < 0) {
                log_debug("%s", err_msg(-EIO));
                err_clear();
        }
}

/* Takes the session's count of files waited for into the status file. */
static void take_waiting(struct watch *w)
{
        int64_t n = sync_session_waiting(w->ss);

        if ((n >= 0) == w->st.have_waiting && (n < 0 || n == w->st.waiting))
                return;
        w->st.have_waiting = n >= 0;
        w->st.waiting = n < 0 ? 0 : n;
        if (wstatus_write(w->cfg->root, &w->st) < 0)
                err_clear();
}

/* Lists the files other devices are still uploading (policy "wait"). */
static void refresh_waiting(struct watch *w)
{
        int64_t files;

        w->waiting_due = 0;
        w->waiting_last = fsutil_mono_ns();
        if (sync_session_refresh_waiting(w->ss, &files) < 0) {
                log_debug("listing the transfers: %s", err_msg(-EIO));
                err_clear();
                return;
        }
        take_waiting(w);
}

static void on_progress(void *ud, enum sync_phase phase, int64_t files, int64_t bytes)
{
        struct watch *w = ud;

        if (w->req_label) {
                /* a request's round: the status keeps naming it */
                snprintf(w->req_state, sizeof(w->req_state), "running %s: %s %lld files",
                         w->req_label, phase == SYNC_UPLOADING ? "uploading" : "downloading",
                         (long long)files);
                w->st.state = w->req_state;
                w->st.since = time(NULL);
                w->st.have_detail = 0;
                if (wstatus_write(w->cfg->root, &w->st) < 0)
                        err_clear();
                return;
        }
        w->st.state = phase == SYNC_UPLOADING ? "uploading" : "downloading";
        w->st.since = time(NULL);
        w->st.have_detail = 1;
        w->st.files = files;
        w->st.bytes = bytes;
        if (wstatus_write(w->cfg->root, &w->st) < 0)
                err_clear();
}

/* A pending SIGINT/SIGTERM abandons the round at its next safe point (it
 * stays queued for the main loop to read). */
static int on_cancelled(void *ud)
{
        struct watch *w = ud;
        struct pollfd p = {.fd = w->sigfd, .events = POLLIN};

        return w->stopping || poll(&p, 1, 0) > 0;
}

static void on_notify(void *ud, const char *path, unsigned what)
{
        struct watch *w = ud;

        if (what & NOTIFY_ROOT_GONE) {
                w->root_gone = 1;
                return;
        }
        if (what & NOTIFY_RULES) {
                w->rules_event = 1;
                return;
        }
        if (what & NOTIFY_RESCAN) {
                log_warn("inotify's event queue overflowed (too many changes at once); "
                         "rescanning the whole folder");
                if (notify_rewalk(w->nt) < 0)
                        log_warn("%s", err_msg(-EIO));
                w->need_full = 1;
                w->full_why = "after an inotify overflow";
                return;
        }
        if (dirty_mark(w->dirty, path, what, fsutil_mono_ns()) < 0)
                w->mem_failed = 1;
}

static void schedule_retry(struct watch *w)
{
        unsigned rnd = 0;

        if (fsutil_random(&rnd, sizeof(rnd)) < 0)
                rnd = (unsigned)fsutil_mono_ns();
        w->retry_ns = fsutil_mono_ns() + evstream_backoff_ms(w->failures, rnd / 4294967296.0) * MS;
        if (w->failures < 32)
                w->failures++;
}

/* Reads the stream thread's state: new seq, (re)connects, going offline. */
static void on_stream(struct watch *w)
{
        struct evstream_state es;
        uint64_t v;

        if (read(w->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_debug("eventfd: %s", strerror(errno));
        evstream_get(w->es, &es);
        if (es.connects > w->seen_connects) {
                if (w->seen_connects > 0) {
                        /* back after a break: changes may have been missed
                         * on both sides */
                        log_info("connected to %s again; reconciling", w->cfg->server);
                        w->need_full = 1;
                        w->full_why = "after reconnecting";
                }
                w->seen_connects = es.connects;
                w->retry_ns = 0;
                w->failures = 0;
                /* hello: report, control list, key, pending requests */
                w->seen_device_events = es.device_events;
                w->seen_request_events = es.request_events;
                watch_req_hello(w->wr);
        }
        if (es.device_events > w->seen_device_events) {
                w->seen_device_events = es.device_events;
                watch_req_devices(w->wr);
        }
        if (es.request_events > w->seen_request_events) {
                w->seen_request_events = es.request_events;
                watch_req_requests(w->wr);
        }
        if (es.transfer_events > w->seen_transfer_events) {
                int64_t at = w->waiting_last + WATCH_WAITING_MIN_MS * MS;

                w->seen_transfer_events = es.transfer_events;
                if (!w->waiting_due)
                        w->waiting_due = at > fsutil_mono_ns() ? at : fsutil_mono_ns();
        }
        if (es.online != w->online) {
                w->online = es.online;
                w->st.offline_since = es.online ? 0 : es.offline_since_ns / SEC;
                snprintf(w->st.last_error, sizeof(w->st.last_error), "%s",
                         es.online ? "" : es.last_error);
                set_state(w, es.online ? "idle" : "offline");
        }
}

/* After the rules or .ferryignore changed: the new patterns to the inotify
 * tree, and a full round, which looks at every file under the new rules
 * (held files the rules now select go up, newly unignored ones too). A
 * rules.json that does not parse is reported by the round that tries it. */
static int take_rules(struct watch *w)
{
        int r;

        if (w->rules_event) {
                w->rules_event = 0;
                if (sync_session_load_rules(w->ss) < 0)
                        err_clear(); /* the next round fails with the message */
        }
        if (sync_session_rules_gen(w->ss) == w->rules_gen)
                return 0;
        w->rules_gen = sync_session_rules_gen(w->ss);
        /* always: the old patterns may be freed (a walk of the tree, once
         * per change of the rules) */
        r = notify_set_ignore(w->nt, sync_session_ignore(w->ss));
        if (r < 0)
                return r;
        w->need_full = 1;
        w->full_why = "after the rules changed";
        return 0;
}

/* Runs one round over paths (full when paths is NULL); *out (may be NULL)
 * gets its counts. */
static int run_round(struct watch *w, char **paths, size_t n, int full, struct sync_stats *out)
{
        const struct peers *peers = watch_req_peers(w->wr);
        uint8_t key[LANPROTO_KEY_LEN];
        struct sync_options o = {0};
        struct sync_stats stats;
        int64_t version;
        int64_t t0 = fsutil_mono_ns(), ms;
        int r;

        o.targeted = !full;
        o.paths = (const char *const *)paths;
        o.npaths = n;
        o.no_sweep = !full;
        o.no_waiting = !full;
        o.progress = on_progress;
        o.cancelled = on_cancelled;
        o.ud = w;
        /* the control list and key the stream keeps fresh: LAN downloads
         * cost no request */
        if (watch_req_fd(w->wr) < 0) {
                o.no_lan = 1; /* --no-lan: no LAN at all */
        } else if (peers->n > 0 && watch_req_key(w->wr, key, &version)) {
                o.lan_peers = peers;
                o.lan_key = key;
        }
        if (full) {
                log_info("scanning the whole folder%s%s", w->full_why ? " " : "",
                         w->full_why ? w->full_why : "");
                set_state(w, "scanning");
        }
        r = sync_session_round(w->ss, &o, &stats);
        memset(key, 0, sizeof(key));
        if (out)
                *out = stats;
        ms = (fsutil_mono_ns() - t0) / MS;
        /* the round may have read new rules: the inotify tree must not keep
         * the old patterns (freed by now) */
        if (sync_session_rules_gen(w->ss) != w->rules_gen) {
                int r2 = take_rules(w);

                if (r2 < 0)
                        return r2;
        }
        if (stats.uploaded || stats.downloaded || stats.deleted || stats.conflicts)
                log_info("uploaded %lld, downloaded %lld, deleted %lld, conflicts %lld (%lld ms)",
                         (long long)stats.uploaded, (long long)stats.downloaded,
                         (long long)stats.deleted, (long long)stats.conflicts, (long long)ms);
        if (r == -EINTR)
                return r;
        if (r < 0) {
                snprintf(w->st.last_error, sizeof(w->st.last_error), "%s", err_msg(r));
                if (r == -EBUSY) {
                        /* a `ferry sync` of the user's: try again shortly */
                        log_info("%s", err_msg(r));
                        w->retry_ns = fsutil_mono_ns() + 200 * MS;
                } else if (r == -ECANCELED) {
                        log_error("%s; the watch will not retry until the next full rescan",
                                  err_msg(r));
                        w->retry_ns = 0;
                } else {
                        /* one warning per outage, not one per retry */
                        if (w->failures == 0)
                                log_warn("round failed: %s; retrying", err_msg(r));
                        else
                                log_debug("round failed again: %s", err_msg(r));
                        schedule_retry(w);
                }
                err_clear();
                set_state(w, w->online ? "idle" : "offline");
                return r;
        }
        w->failures = 0;
        w->retry_ns = 0;
        w->st.last_error[0] = '\0';
        w->st.last_round_ns = fsutil_now_ns();
        w->st.last_round_ms = ms;
        if (sync_session_last_seq(w->ss, &w->applied_seq) == 0)
                evstream_set_since(w->es, w->applied_seq);
        w->st.have_waiting = sync_session_waiting(w->ss) >= 0;
        w->st.waiting = w->st.have_waiting ? sync_session_waiting(w->ss) : 0;
        if (full) { /* it listed them */
                w->waiting_last = fsutil_mono_ns();
                w->waiting_due = 0;
        }
        w->st.state = NULL; /* rewrite: last_round changed */
        set_state(w, w->online ? "idle" : "offline");
        return 0;
}

/* Runs the oldest queued upload request: overrides, a full round, one
 * more when that round held files of the request it had not seen before,
 * and the result to the server. */
static int run_request(struct watch *w)
{
        struct watch_req_job job = {0};
        struct sync_stats st, more;
        char label[160], reason[512];
        size_t added = 0;
        int r = 0;

        if (!watch_req_next(w->wr, &job))
                return 0;
        if (watch_req_begin(w->wr, &job) < 0) {
                err_clear();
                goto out;
        }
        snprintf(label, sizeof(label), "upload request %lld from %s", (long long)job.id,
                 job.requester);
        w->req_label = label;
        snprintf(w->req_state, sizeof(w->req_state), "running %s", label);
        set_state(w, w->req_state);
        w->full_why = "for the upload request";
        r = run_round(w, NULL, 0, 1, &st);
        if (r == 0 && (r = watch_req_more(w->wr, &job, &added)) == 0 && added > 0) {
                r = run_round(w, NULL, 0, 1, &more);
                st.uploaded += more.uploaded;
        }
        w->req_label = NULL;
        /* run_round kept its failure's message in the status */
        snprintf(reason, sizeof(reason), "%s",
                 r == -EINTR           ? "the watch was stopped during the round"
                 : w->st.last_error[0] ? w->st.last_error
                                       : err_msg(r));
        watch_req_finish(w->wr, &job, r, st.uploaded, reason);
        err_clear();
        if (r == 0) {
                w->need_full = 0;
                w->full_why = NULL;
        }
        set_state(w, w->online ? "idle" : "offline");
out:
        watch_req_job_free(&job);
        return r == -EINTR ? r : 0;
}

/* Whether the server announced a seq no round has pulled yet. */
static int behind(const struct watch *w, int64_t seq)
{
        return seq > w->applied_seq && seq > w->pulled_seq;
}

/* The next time something is due (monotonic ns), DIRTY_NEVER if nothing. */
static int64_t next_due(struct watch *w, int64_t remote_seq)
{
        int64_t t = w->next_full_ns, d;

        if (behind(w, remote_seq))
                t = 0;
        /* a full round waiting for a writer: look again shortly */
        if (w->need_full)
                t = w->full_wait_ns ? fsutil_mono_ns() + 100 * MS : 0;
        d = dirty_due(w->dirty);
        if (d < t)
                t = d;
        if (w->waiting_due && w->waiting_due < t)
                t = w->waiting_due;
        if (watch_req_queued(w->wr))
                t = 0;
        if (w->retry_ns > t)
                t = w->retry_ns;
        return t;
}

/* Runs what is due now. Returns -EINTR when a signal stopped a round. */
static int run_due(struct watch *w)
{
        struct evstream_state es;
        int64_t now = fsutil_mono_ns();
        char **paths = NULL;
        size_t n = 0;
        int r;

        evstream_get(w->es, &es);
        if (w->retry_ns && now < w->retry_ns)
                return 0;
        if (watch_req_queued(w->wr))
                return run_request(w);
        if (w->waiting_due && now >= w->waiting_due && !w->need_full)
                refresh_waiting(w);
        if (now >= w->next_full_ns && !w->need_full) {
                w->need_full = 1;
                w->full_why = notify_limited(w->nt) ? "(some directories are not watched)"
                                                    : "(periodic check)";
        }
        if (w->need_full) {
                /* never scan a file half-written: wait for writers, but
                 * not forever (a log appended to without end) */
                if (!w->full_wait_ns)
                        w->full_wait_ns = now;
                if (dirty_writing(w->dirty, now) && now - w->full_wait_ns < WATCH_FULL_WAIT_S * SEC)
                        goto targeted;
                w->full_wait_ns = 0;
                /* the full scan covers the paths dirty so far */
                r = dirty_take(w->dirty, now, &paths, &n);
                if (r < 0)
                        return r;
                r = run_round(w, NULL, 0, 1, NULL);
                if (r == 0 && es.seq > w->pulled_seq)
                        w->pulled_seq = es.seq;
                if (r == -EINTR) {
                        dirty_paths_free(paths, n);
                        return r;
                }
                if (r < 0 && r != -ECANCELED) {
                        dirty_put_back(w->dirty, paths, n, now);
                        return 0;
                }
                dirty_paths_free(paths, n);
                w->need_full = 0;
                w->full_why = NULL;
                w->next_full_ns =
                    fsutil_mono_ns() +
                    (notify_limited(w->nt) ? WATCH_RESCAN_LIMITED_S : WATCH_RESCAN_S) * SEC;
                return 0;
        }
targeted:
        if (dirty_due(w->dirty) > now && !behind(w, es.seq))
                return 0;
        r = dirty_take(w->dirty, now, &paths, &n);
        if (r < 0)
                return r;
        if (n == 0 && !behind(w, es.seq)) {
                free(paths);
                return 0;
        }
        r = run_round(w, paths, n, 0, NULL);
        if (r == 0 && es.seq > w->pulled_seq)
                w->pulled_seq = es.seq;
        if (r < 0 && r != -EINTR && r != -ECANCELED) {
                dirty_put_back(w->dirty, paths, n, now);
                return 0;
        }
        dirty_paths_free(paths, n);
        return r == -EINTR ? r : 0;
}

static int arm(struct watch *w, int64_t due)
{
        struct itimerspec its = {0};

        if (due != DIRTY_NEVER) {
                if (due <= 0)
                        due = 1; /* 0 would disarm */
                its.it_value.tv_sec = due / SEC;
                its.it_value.tv_nsec = due % SEC;
        }
        if (timerfd_settime(w->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                return err_set(-errno, "timerfd: %s", strerror(errno));
        return 0;
}

static int add_fd(struct watch *w, int fd)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return err_set(-errno, "epoll: %s", strerror(errno));
        return 0;
}

static int setup(struct watch *w, sigset_t *mask, const struct watch_req_options *lan)
{
        int r;

        sigemptyset(mask);
        sigaddset(mask, SIGINT);
        sigaddset(mask, SIGTERM);
        sigaddset(mask, SIGPIPE);
        if (sigprocmask(SIG_BLOCK, mask, NULL) < 0)
                return err_set(-errno, "sigprocmask: %s", strerror(errno));
        sigdelset(mask, SIGPIPE);
        w->sigfd = signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC);
        w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->sigfd < 0 || w->timerfd < 0 || w->evfd < 0 || w->epfd < 0)
                return err_set(-errno, "cannot set up the event loop: %s", strerror(errno));
        if ((r = dirty_new(&w->dirty)) < 0)
                return r;
        if ((r = sync_session_open(w->cfg, &w->ss)) < 0)
                return r;
        if ((r = sync_session_last_seq(w->ss, &w->applied_seq)) < 0)
                return r;
        /* the ignore patterns decide which directories get watches */
        if ((r = sync_session_load_rules(w->ss)) < 0)
                return r;
        w->rules_gen = sync_session_rules_gen(w->ss);
        /* watches first, then the start-up scan: nothing falls in between */
        if ((r = notify_open(w->cfg->root, sync_session_ignore(w->ss), &w->nt)) < 0)
                return r;
        log_info("watching %s (%zu directories)", w->cfg->root, notify_count(w->nt));
        if ((r = watch_req_open(w->cfg, lan, &w->wr)) < 0)
                return r;
        w->lanfd = watch_req_fd(w->wr);
        if (w->lanfd >= 0 && (r = add_fd(w, w->lanfd)) < 0)
                return r;
        if ((r = evstream_start(w->cfg->server, w->cfg->token, w->evfd, &w->es)) < 0)
                return r;
        evstream_set_since(w->es, w->applied_seq);
        if ((r = add_fd(w, w->sigfd)) < 0 || (r = add_fd(w, w->timerfd)) < 0 ||
            (r = add_fd(w, w->evfd)) < 0 || (r = add_fd(w, notify_fd(w->nt))) < 0)
                return r;
        w->need_full = 1;
        w->full_why = "at start-up";
        return 0;
}

static int loop(struct watch *w)
{
        struct epoll_event evs[8];
        struct signalfd_siginfo si;
        struct evstream_state es;
        uint64_t v;
        int n, r;

        for (;;) {
                evstream_get(w->es, &es);
                if ((r = arm(w, next_due(w, es.seq))) < 0)
                        return r;
                n = epoll_wait(w->epfd, evs, 8, -1);
                if (n < 0 && errno != EINTR)
                        return err_set(-errno, "epoll_wait: %s", strerror(errno));
                for (int i = 0; i < n; i++) {
                        int fd = evs[i].data.fd;

                        if (fd == w->sigfd) {
                                if (read(w->sigfd, &si, sizeof(si)) == sizeof(si)) {
                                        log_info("got %s; stopping", strsignal((int)si.ssi_signo));
                                        return 0;
                                }
                        } else if (fd == w->timerfd) {
                                if (read(w->timerfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                                        return err_set(-errno, "timerfd: %s", strerror(errno));
                        } else if (fd == w->evfd) {
                                on_stream(w);
                        } else if (fd == w->lanfd) {
                                watch_req_take_lan(w->wr);
                        } else if ((r = notify_read(w->nt, on_notify, w)) < 0) {
                                return r;
                        }
                }
                if (w->root_gone)
                        return err_set(-ENOENT, "the folder %s was deleted or moved; stopping",
                                       w->cfg->root);
                if (w->mem_failed)
                        return -ENOMEM;
                if (w->rules_event && (r = take_rules(w)) < 0)
                        return r;
                r = run_due(w);
                if (r == -EINTR) {
                        log_info("stopping: the current round was interrupted at a safe point");
                        return 0;
                }
                if (r < 0)
                        return r;
        }
}

int watch_run(const struct config *cfg, const struct watch_options *o)
{
        struct watch w = {
            .cfg = cfg, .sigfd = -1, .timerfd = -1, .evfd = -1, .epfd = -1, .lanfd = -1};
        sigset_t mask;
        int lock = -1, r;

        sigemptyset(&mask);
        r = wstatus_lock(cfg->root, &lock);
        if (r < 0)
                return r;
        w.st.offline_since = time(NULL);
        set_state(&w, "starting");
        r = setup(&w, &mask, &o->lan);
        if (r == 0)
                r = loop(&w);
        evstream_stop(w.es);
        watch_req_close(w.wr);
        notify_close(w.nt);
        sync_session_close(w.ss);
        dirty_free(w.dirty);
        if (w.sigfd >= 0)
                close(w.sigfd);
        if (w.timerfd >= 0)
                close(w.timerfd);
        if (w.evfd >= 0)
                close(w.evfd);
        if (w.epfd >= 0)
                close(w.epfd);
        wstatus_remove(cfg->root);
        close(lock);
        /* SIGINT and SIGTERM stay blocked: one that stopped a round is
         * still pending and would kill us on the way out (exit 0) */
        return r;
}
