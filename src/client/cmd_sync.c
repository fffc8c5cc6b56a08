/* cmd_sync: `ferry sync` (one sync round, sync.c) and `ferry status` (the
 * linked folder, its last sync and the local changes waiting to be
 * uploaded). status scans but never talks to the server.
 *
 * sync reports what crossed the wire (the connection's own counters, see
 * remote.h) in its summary or as JSON for scripts and the benchmarks, can
 * be held to bandwidth limits, and shows a progress line (progress.c) when
 * stderr is a terminal. Under the download policy "wait" both show the
 * files other devices have yet to finish uploading, as the round listed
 * them in .ferry/waiting.json (waiting.h).
 *
 * On a terminal (stdin and stdout), sync asks about the files an `ask`
 * rule holds once the round is done (ask.h; not with --no-ask or --json).
 * Both say how many files the rules hold back; status also shows the rules
 * and scans as a round would (ignored names skipped, held files not
 * counted as pending). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "conflict.h"
#include "err.h"
#include "fsutil.h"
#include "ignore.h"
#include "index.h"
#include "localfs.h"
#include "progress.h"
#include "push.h"
#include "rules.h"
#include "scan.h"
#include "sync.h"
#include "waiting.h"
#include "wstatus.h"

enum { OPT_ALLOW_MASS = 1000, OPT_JSON, OPT_LIMIT_UP, OPT_LIMIT_DOWN, OPT_NO_ASK, OPT_HELP };

/* The summary of the last listing under the policy "wait", or NULL. */
static json_t *load_waiting(const struct config *cfg)
{
        json_t *w = NULL;

        if (cfg->dl_policy == CONFIG_DL_WAIT && waiting_load(cfg->root, &w) < 0)
                err_clear();
        return w;
}

/* The progress line of a round (ud), replaced by a fresh one when the ask
 * question comes, so that the question is not written after a drawn line
 * and the round that follows it starts its own. */
struct ui {
        struct progress *pg;
};

static void on_phase(void *ud, enum sync_phase phase, int64_t files, int64_t bytes)
{
        struct ui *u = ud;

        if (u->pg)
                progress_plan(u->pg, phase == SYNC_UPLOADING ? PROGRESS_UP : PROGRESS_DOWN, files,
                              bytes);
}

static void on_transfer(void *ud, const struct remote_stats *now)
{
        struct ui *u = ud;

        if (u->pg)
                progress_update(u->pg, fsutil_mono_ns(), now->bytes_up, now->bytes_down);
}

static void on_asking(void *ud)
{
        struct ui *u = ud;

        progress_free(u->pg); /* erases the line */
        u->pg = NULL;
        if (progress_new(stderr, 0, &u->pg) < 0)
                u->pg = NULL;
}

/* The progress line: only for a person watching a terminal. With -v the
 * log lines already tell the story (and would break the line). */
static int want_progress(const struct cli *g)
{
        const char *term = getenv("TERM");

        return g->verbose == 0 && isatty(STDERR_FILENO) && !(term && !strcmp(term, "dumb"));
}

int cmd_sync(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"allow-mass-delete", no_argument, NULL, OPT_ALLOW_MASS},
            {"json", no_argument, NULL, OPT_JSON},
            {"limit-up", required_argument, NULL, OPT_LIMIT_UP},
            {"limit-down", required_argument, NULL, OPT_LIMIT_DOWN},
            {"no-ask", no_argument, NULL, OPT_NO_ASK},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct sync_options so = {0};
        struct sync_stats st;
        struct config cfg = {0};
        struct ui ui = {0};
        int64_t up = 0, down = 0, t0;
        char sent[32], recv[32], *wtext = NULL;
        json_t *waiting = NULL, *d;
        double secs;
        size_t i;
        int c, r, json = 0;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_ALLOW_MASS:
                        so.allow_mass_delete = 1;
                        break;
                case OPT_JSON:
                        json = 1;
                        break;
                case OPT_NO_ASK:
                        so.no_ask = 1;
                        break;
                case OPT_LIMIT_UP:
                case OPT_LIMIT_DOWN:
                        if (cli_limit_option("sync",
                                             c == OPT_LIMIT_UP ? "--limit-up" : "--limit-down",
                                             optarg, c == OPT_LIMIT_UP ? &up : &down) != CLI_OK)
                                return CLI_USAGE;
                        break;
                case 'h':
                case OPT_HELP:
                        puts(
                            "usage: ferry [-C DIR] sync [--allow-mass-delete] [--json] [--no-ask]\n"
                            "                          [--limit-up RATE] [--limit-down RATE]\n"
                            "\n"
                            "One sync round: uploads local changes, downloads remote ones, keeps\n"
                            "both versions of a file changed on two devices (a conflict copy).\n"
                            "Prints \"uploaded N, downloaded M, deleted K, conflicts C, sent X,\n"
                            "received Y\" (bytes on the wire), or with --json one JSON object:\n"
                            "uploaded, downloaded, deleted, conflicts, bytes_up, bytes_down,\n"
                            "requests, seconds, bytes_lan (chunk bytes from a device on this\n"
                            "LAN: downloads ask one first, the server sends the rest). Refuses a "
                            "round that would delete more than the\n"
                            "configured number and share of files (default 50 and 25%) unless\n"
                            "--allow-mass-delete is given.\n"
                            "\n"
                            "--limit-up/--limit-down RATE cap the upload/download rate in bytes\n"
                            "per second, with K, M or G (binary) suffixes: 500K, 10M, 1.5M;\n"
                            "0 means no limit. On a terminal, a progress line shows on stderr\n"
                            "when transfers take more than a second.\n"
                            "\n"
                            "Under 'ferry config download-incomplete wait', one more line per\n"
                            "device still uploading: \"waiting for N files from DEVICE (...)\"\n"
                            "(with --json: \"waiting\", a list).\n"
                            "\n"
                            "Files the rules hold back ('ferry rules') are counted on one more\n"
                            "line, \"held: N to upload, M to download\" (with --json: held_up,\n"
                            "held_down); 'ferry held' lists them. On a terminal, the files an\n"
                            "'ask' rule holds are then listed, numbered, and you choose: a (all),\n"
                            "n (none), numbers and ranges (1,3-5) or a pattern (*.pdf); the\n"
                            "chosen ones sync at once. --no-ask (or no terminal, or --json)\n"
                            "leaves them held.");
                        return CLI_OK;
                default:
                        return cli_bad_option("sync", argc, argv, c);
                }
        }
        r = cli_open_folder(g, "sync", argc, argv, &cfg);
        if (r != CLI_OK)
                return r;
        cfg.limit_up = up;
        cfg.limit_down = down;
        if (want_progress(g) && progress_new(stderr, 0, &ui.pg) == 0) {
                so.progress = on_phase;
                so.transfer = on_transfer;
                so.asking = on_asking;
                so.ud = &ui;
        }
        if (!json && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
                so.ask_in = stdin;
                so.ask_out = stdout;
        }
        t0 = fsutil_mono_ns();
        r = sync_run(&cfg, &so, &st);
        secs = (double)(fsutil_mono_ns() - t0) / 1e9;
        progress_free(ui.pg);
        if (r == 0)
                waiting = load_waiting(&cfg);
        config_free(&cfg);
        if (r < 0)
                return cli_fail("sync", r);
        if (json) {
                wtext = json_dumps(waiting ? json_object_get(waiting, "devices") : NULL,
                                   JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
                printf("{\"uploaded\":%lld,\"downloaded\":%lld,\"deleted\":%lld,\"conflicts\":%lld,"
                       "\"bytes_up\":%lld,\"bytes_down\":%lld,\"requests\":%lld,"
                       "\"seconds\":%.3f,\"waiting\":%s,\"held_up\":%lld,\"held_down\":%lld,"
                       "\"bytes_lan\":%lld}\n",
                       (long long)st.uploaded, (long long)st.downloaded, (long long)st.deleted,
                       (long long)st.conflicts, (long long)st.bytes_up, (long long)st.bytes_down,
                       (long long)st.requests, secs, wtext ? wtext : "[]", (long long)st.held_up,
                       (long long)st.held_down, (long long)st.bytes_lan);
                free(wtext);
                json_decref(waiting);
                return CLI_OK;
        }
        progress_human(st.bytes_up, sent, sizeof(sent));
        progress_human(st.bytes_down, recv, sizeof(recv));
        printf(
            "uploaded %lld, downloaded %lld, deleted %lld, conflicts %lld, sent %s, received %s\n",
            (long long)st.uploaded, (long long)st.downloaded, (long long)st.deleted,
            (long long)st.conflicts, sent, recv);
        if (st.held_up > 0 || st.held_down > 0)
                printf("held: %lld to upload, %lld to download (see 'ferry held')\n",
                       (long long)st.held_up, (long long)st.held_down);
        json_array_foreach(json_object_get(waiting, "devices"), i, d)
        {
                char line[1024];

                waiting_describe(d, line, sizeof(line));
                printf("waiting for %s\n", line);
        }
        json_decref(waiting);
        return CLI_OK;
}

struct status {
        int64_t last_seq, last_sync_ns, indexed;
        int have_sync, have_pending;
        int64_t put, del;
        struct rules *rules;
        int64_t held_up, held_down;
        json_t *watch;   /* watch.json of a running watch, or NULL */
        json_t *waiting; /* waiting.json under the policy "wait", or NULL */
};

static int collect(const struct config *cfg, struct status *s)
{
        struct scan_result sr = {0};
        struct ignore *ig = NULL;
        struct index *idx = NULL;
        char *db = NULL;
        int lock = -1, r;

        memset(s, 0, sizeof(*s));
        r = wstatus_read(cfg->root, &s->watch);
        if (r < 0)
                return r;
        s->waiting = load_waiting(cfg);
        db = config_state_path(cfg, INDEX_FILE);
        if (!db)
                return -ENOMEM;
        if ((r = rules_load(cfg->root, &s->rules)) < 0 || (r = ignore_load(cfg->root, &ig)) < 0)
                goto out;
        r = index_open(db, &idx);
        if (r < 0)
                goto out;
        r = index_state_get(idx, "last_seq", &s->last_seq);
        if (r == -ENOENT)
                s->last_seq = 0;
        else if (r < 0)
                goto out;
        r = index_state_get(idx, "last_sync_ns", &s->last_sync_ns);
        if (r < 0 && r != -ENOENT)
                goto out;
        s->have_sync = r == 0;
        /* A running sync holds the lock and is changing the index: then the
         * pending counts are unknown rather than wrong. */
        if (localfs_lock(cfg->root, &lock) == 0) {
                /* as a round would see it; held files are not pending */
                r = push_scan(idx, cfg->root, s->rules, ig, 0, NULL, 0, &sr);
                if (r < 0)
                        goto out;
                for (size_t i = 0; i < sr.n; i++) {
                        if (sr.changes[i].held)
                                continue;
                        if (sr.changes[i].op == CHANGE_DELETE)
                                s->del++;
                        else
                                s->put++;
                }
                s->have_pending = 1;
        } else {
                err_clear();
        }
        r = index_count(idx, &s->indexed);
        if (r == 0)
                r = index_held_count(idx, RULES_UP, &s->held_up);
        if (r == 0)
                r = index_held_count(idx, RULES_DOWN, &s->held_down);
out:
        scan_result_free(&sr);
        ignore_free(ig);
        localfs_unlock(lock);
        if (idx)
                index_close(idx);
        free(db);
        return r;
}

static const char *mode_name(const struct rules *r)
{
        return rules_mode_name(rules_mode(r));
}

/* One direction's rules in text form: a JSON array of strings. */
static json_t *rules_json(const struct rules *r, enum rules_dir dir)
{
        json_t *a = json_array();
        size_t i;

        for (i = 0; a && i < rules_count(r, dir); i++) {
                char *t = rules_text(r, dir, i);

                if (!t || json_array_append_new(a, json_string(t)) < 0) {
                        free(t);
                        json_decref(a);
                        return NULL;
                }
                free(t);
        }
        return a;
}

/* The rules and the held counts, added to status's JSON. */
static int rules_status_json(const struct status *s, json_t *j)
{
        json_t *up = rules_json(s->rules, RULES_UP), *down = rules_json(s->rules, RULES_DOWN);

        if (!up || !down) {
                json_decref(up);
                json_decref(down);
                return -ENOMEM;
        }
        if (json_object_set_new(j, "rules",
                                json_pack("{s:o, s:o, s:s}", "up", up, "down", down, "mode",
                                          mode_name(s->rules))) < 0 ||
            json_object_set_new(j, "held",
                                json_pack("{s:I, s:I}", "up", (json_int_t)s->held_up, "down",
                                          (json_int_t)s->held_down)) < 0)
                return -ENOMEM;
        return 0;
}

/* "upload:    all" and the like, one line per direction: the rules in text
 * form, separated by " | " (a file is selected when any rule selects it). */
static void print_rules(const struct status *s)
{
        static const char *const label[] = {"upload:   ", "download: "};

        for (int dir = RULES_UP; dir <= RULES_DOWN; dir++) {
                printf("%s", label[dir]);
                for (size_t i = 0; i < rules_count(s->rules, (enum rules_dir)dir); i++) {
                        char *t = rules_text(s->rules, (enum rules_dir)dir, i);

                        printf("%s%s", i ? " | " : " ", t ? t : "?");
                        free(t);
                }
                printf("\n");
        }
        printf("detection: %s\n", mode_name(s->rules));
        if (s->held_up > 0 || s->held_down > 0)
                printf("held:      %lld to upload, %lld to download (see 'ferry held')\n",
                       (long long)s->held_up, (long long)s->held_down);
        else
                printf("held:      nothing\n");
}

static json_t *status_json(const struct config *cfg, const struct status *s)
{
        return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:I, s:o, s:I, s:o, s:O, s:s, s:O}", "root",
                         cfg->root, "server", cfg->server, "user", cfg->user, "device", "id",
                         cfg->device_id ? cfg->device_id : "", "name", cfg->device_name, "last_seq",
                         (json_int_t)s->last_seq, "last_sync",
                         s->have_sync ? json_integer(s->last_sync_ns / 1000000000) : json_null(),
                         "indexed", (json_int_t)s->indexed, "pending",
                         s->have_pending ? json_pack("{s:I, s:I}", "put", (json_int_t)s->put,
                                                     "delete", (json_int_t)s->del)
                                         : json_null(),
                         "watch", s->watch ? s->watch : json_null(), "download_incomplete",
                         config_dl_policy_name(cfg->dl_policy), "waiting",
                         s->waiting ? s->waiting : json_null());
}

/* The files waited for, under the policy "wait" (as the last round or the
 * watch listed them). */
static void print_waiting(const struct config *cfg, const json_t *w)
{
        const json_t *d, *devs = json_object_get(w, "devices");
        char when[64], line[1024];
        size_t i;

        if (cfg->dl_policy != CONFIG_DL_WAIT)
                return;
        if (!w) {
                printf("waiting:   not listed yet (the next sync lists the files other devices "
                       "are still uploading)\n");
                return;
        }
        cli_format_time(json_integer_value(json_object_get(w, "time")), when, sizeof(when));
        if (json_array_size(devs) == 0)
                printf("waiting:   nothing (as of %s)\n", when);
        json_array_foreach(devs, i, d)
        {
                waiting_describe(d, line, sizeof(line));
                printf("%s %s\n", i == 0 ? "waiting:  " : "          ", line);
        }
        if (json_array_size(devs) > 0)
                printf("           (as of %s)\n", when);
}

int cmd_status(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct config cfg = {0};
        struct status s = {0};
        char when[64];
        json_t *j;
        int c, json = 0, r, rc = CLI_OK;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_JSON:
                        json = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] status [--json]\n"
                             "\n"
                             "Shows the linked folder, its server, user and device, the last\n"
                             "applied seq and sync time, how many entries are synced, and the\n"
                             "local changes the next sync would upload (a scan; nothing is sent).\n"
                             "Under 'ferry config download-incomplete wait', also the files\n"
                             "other devices have yet to finish uploading, as last listed.\n"
                             "Conflict copies in the folder are listed until you delete or\n"
                             "rename them. Also the rules of this device (upload, download,\n"
                             "change detection; 'ferry rules') and how many files they hold\n"
                             "back ('ferry held'); held files are not counted as pending.");
                        return CLI_OK;
                default:
                        return cli_bad_option("status", argc, argv, c);
                }
        }
        r = cli_open_folder(g, "status", argc, argv, &cfg);
        if (r != CLI_OK)
                return r;
        r = collect(&cfg, &s);
        if (r < 0) {
                rc = cli_fail("status", r);
                goto out;
        }
        if (json) {
                j = status_json(&cfg, &s);
                r = j ? conflict_status_json(cfg.root, j) : -ENOMEM;
                r = r == 0 ? rules_status_json(&s, j) : r;
                r = r == 0 ? cli_print_json(j) : r;
                json_decref(j);
                if (r < 0)
                        rc = cli_fail("status", r);
                goto out;
        }
        if (s.have_sync)
                cli_format_time(s.last_sync_ns / 1000000000, when, sizeof(when));
        else
                snprintf(when, sizeof(when), "never");
        printf("folder:    %s\n", cfg.root);
        printf("server:    %s\n", cfg.server);
        printf("user:      %s\n", cfg.user);
        printf("device:    %s (%s)\n", cfg.device_name, cfg.device_id ? cfg.device_id : "?");
        printf("last seq:  %lld\n", (long long)s.last_seq);
        printf("last sync: %s\n", when);
        printf("synced:    %lld entries\n", (long long)s.indexed);
        if (s.have_pending)
                printf("pending:   %lld to upload, %lld to delete\n", (long long)s.put,
                       (long long)s.del);
        else
                printf("pending:   unknown (a sync or watch round holds the lock)\n");
        print_rules(&s);
        print_waiting(&cfg, s.waiting);
        conflict_status_print(cfg.root, stdout);
        if (s.watch) {
                char what[128];

                wstatus_describe(s.watch, what, sizeof(what));
                printf("watch:     %s (pid %lld)\n", what,
                       (long long)json_integer_value(json_object_get(s.watch, "pid")));
        } else {
                printf("watch:     not running\n");
        }
out:
        json_decref(s.watch);
        json_decref(s.waiting);
        rules_free(s.rules);
        config_free(&cfg);
        return rc;
}
