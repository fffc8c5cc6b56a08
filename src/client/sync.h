/* sync: one sync round of a linked folder (DESIGN.md "Sync, one round"):
 * lock the folder, sweep temporary files a killed run left behind, then
 * push (scan, mass-delete guard, upload, commit) and pull (apply the
 * server's changes since the last applied seq), again while a pass made
 * conflict copies or found local edits to re-upload, and record the time of
 * the sync.
 *
 * The round is its own module so that `ferry sync`, the sync loop of
 * `make run` and, later, the watch daemon all run the same code. push.c and
 * pull.c hold the two halves; struct sync_ctx is what they share.
 *
 * Around the passes, the round keeps the server's transfer records told
 * (xferlog.h): it sends the device's download policy when config.json
 * changed it, reports what it applied (applied_seq) and what it could not
 * download once something changed (never on a round that moved nothing),
 * and, under the policy "wait", lists the files other devices have yet to
 * finish uploading into DIR/.ferry/waiting.json (waiting.h).
 *
 * Each round runs under the device's rules (rules.h: .ferry/rules.json)
 * and ignore patterns (ignore.h: .ferryignore), loaded once per round; a
 * session (the watch) keeps them and reads them again only when either
 * file changed. sync_run, on a terminal, then asks about the files the
 * `ask` rule holds (ask.h) and runs one more round for those chosen.
 *
 * Downloads take chunks from a device of the account on this LAN before
 * the server (lanclient.h, peers.h): the first time a round needs chunks
 * this device does not hold, it picks an online device whose LAN listener
 * is on this machine's subnet, connects (within LANCLIENT_CONNECT_MS) and
 * asks it first; the server sends the rest. No peer, or a peer that fails,
 * costs nothing more than the server's download.
 */
#ifndef FERRY_SYNC_H
#define FERRY_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "index.h"
#include "remote.h"
#include "transfer.h"

struct rules;
struct ignore;
struct peers;

/* Passes of push + pull in one round; a pass is repeated only when the
 * previous one left something to upload (a conflict copy, a local edit of a
 * file deleted elsewhere). */
#define SYNC_MAX_PASSES 3

/* What a round is doing, for sync_options.progress. */
enum sync_phase { SYNC_UPLOADING, SYNC_DOWNLOADING };

struct sync_options {
        int allow_mass_delete;
        /* Targeted round (the watch daemon): the first pass scans only
         * paths[0..npaths) (scan_paths; npaths may be 0 for a round that
         * only pulls); later passes, which follow conflict copies, scan the
         * whole folder. 0: every pass scans the whole folder. */
        int targeted;
        const char *const *paths;
        size_t npaths;
        int no_sweep; /* skip the sweep of temporary files (the watch's small rounds) */
        /* Do not list the files other devices are still uploading (policy
         * "wait"): the watch's small rounds, since the watch lists them when
         * the server's records change. A change of policy lists anyway. */
        int no_waiting;
        /* Server entries to download again whatever the index says
         * (`ferry retry` of failed downloads): fetched with GET
         * /api/v1/file and applied in the first pass. */
        const char *const *refetch;
        size_t nrefetch;
        /* Optional: told how many files and bytes a round is about to upload
         * or download (only when there are some). */
        void (*progress)(void *ud, enum sync_phase phase, int64_t files, int64_t bytes);
        /* Optional: the connection's byte counters (cumulative since the
         * session opened), several times a second while a request moves
         * bytes (remote_set_progress; on the thread running the request). */
        void (*transfer)(void *ud, const struct remote_stats *now);
        /* Optional: asked at safe points (between passes, commit batches and
         * pull pages); non-zero abandons the round with -EINTR. */
        int (*cancelled)(void *ud);
        void *ud;
        /* sync_run only: after the round, the held files whose reason is
         * "ask" are listed on ask_out and one answer is read from ask_in
         * (ask.h); those chosen get overrides and one more round moves
         * them. No question when no_ask is set or either is NULL (`ferry
         * sync --no-ask`, no terminal, the watch): they stay held. */
        FILE *ask_in, *ask_out;
        int no_ask;
        /* Optional: told (with ud) just before the question is put, so that
         * a progress line on the same terminal can be erased. */
        void (*asking)(void *ud);
        /* LAN downloads: lan_peers and lan_key (LANPROTO_KEY_LEN bytes) are
         * the control list and the account's LAN key when the caller keeps
         * them fresh (the watch); NULL: the round fetches them (GET
         * /api/v1/devices, GET /api/v1/lan-key) when a download first needs
         * chunks. no_lan: never use a LAN peer. */
        const struct peers *lan_peers;
        const uint8_t *lan_key;
        int no_lan;
};

struct sync_stats {
        int64_t uploaded;   /* puts and renames the server accepted */
        int64_t downloaded; /* files, directories and links written from the server */
        int64_t deleted;    /* deletes sent, and local copies moved to the trash */
        int64_t conflicts;  /* conflict copies made */
        int64_t invalid;    /* changes the server refused as invalid */
        int64_t refused;    /* server entries not applied (unsafe path) */
        /* what this round moved on the wire (remote_stats) */
        int64_t bytes_up, bytes_down, requests;
        /* chunk payload bytes received from a LAN peer */
        int64_t bytes_lan;
        /* files the rules hold back after the round (index_held_count) */
        int64_t held_up, held_down;
};

struct xferlog;

/* What push and pull share during a round. */
struct sync_ctx {
        const struct config *cfg;
        struct index *idx;
        struct remote *remote;
        struct transfer xfer;
        const struct sync_options *opts;
        int pass;        /* 0 for the first pass of the round */
        char stamp[16];  /* trash folder of this round */
        int64_t scan_ns; /* when the last scan started (recorded_ns of pushed entries) */
        int again;       /* another pass is needed */
        json_t *pending; /* server entries to apply before the pull (commit conflicts) */
        /* files moved to the trash in the current pull page: a download may
         * still take chunks from them */
        char **moved_from, **moved_to;
        size_t nmoved, capmoved;
        struct xferlog *xl; /* the records the current push announced */
        /* downloads to report: [{"path", "seq", "reason"}] that failed,
         * [{"path", "seq"}] done again on request (refetch); may be NULL */
        json_t *dl_failed, *dl_done;
        /* This device's rules and ignore patterns (rules.h, ignore.h),
         * loaded for each round by sync.c; never NULL inside a round. */
        struct rules *rules;
        struct ignore *ignore;
        struct sync_stats stats;
        /* The seqs this pass's commits got (own_seqs, recorded in the index
         * by push) and the space's seq after the last of them (own_top):
         * when they are all the seqs past last_seq, pull has nothing to
         * fetch back (pull.c). */
        int64_t *own_seqs;
        size_t n_own, cap_own;
        int64_t own_top;
};

/* Runs one round on the folder of cfg. Returns 0 when the folder and the
 * server are in sync, a negative code with a message otherwise (-ECANCELED
 * for the mass-delete guard, -EBUSY when another ferry holds the lock). *st
 * gets the counts even on failure. */
int sync_run(const struct config *cfg, const struct sync_options *o, struct sync_stats *st);

/* A folder's index and server connection kept open across rounds (the
 * watch daemon), so that a round costs no reconnect or index re-open. The
 * folder lock is still taken by each round only. */
struct sync_session;

int sync_session_open(const struct config *cfg, struct sync_session **out);
void sync_session_close(struct sync_session *ss);

/* One round, as sync_run. */
int sync_session_round(struct sync_session *ss, const struct sync_options *o,
                       struct sync_stats *st);

/* The last applied seq recorded in the index (0 before the first pull). */
int sync_session_last_seq(struct sync_session *ss, int64_t *seq);

/* Loads .ferry/rules.json and .ferryignore, or reads them again when
 * either changed since (a stat each); every round does this first. A file
 * that does not parse fails with its message and the old rules stay. */
int sync_session_load_rules(struct sync_session *ss);

/* The ignore patterns as last loaded (NULL before the first load); valid
 * until the next load, that is the next round. */
const struct ignore *sync_session_ignore(const struct sync_session *ss);

/* Bumped each time the rules or the ignore patterns are read again after
 * a change (not by the first load), so that the watch can tell. */
unsigned sync_session_rules_gen(const struct sync_session *ss);

/* Under the policy "wait" (config.json, read again when it changed): lists
 * the files other devices have yet to finish uploading and records them in
 * .ferry/waiting.json; *files gets their number. Under "skip": nothing is
 * asked, *files is 0. The watch calls it when the server's records change. */
int sync_session_refresh_waiting(struct sync_session *ss, int64_t *files);

/* The number of files of the last listing, -1 when there is none (policy
 * "skip", or not listed yet). */
int64_t sync_session_waiting(const struct sync_session *ss);

/* -EINTR with a message when o->cancelled says so, else 0. */
int sync_check_cancel(const struct sync_options *o);

#endif
