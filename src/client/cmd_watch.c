/* cmd_watch: `ferry watch [--log FILE] [--limit-up RATE] [--limit-down
 * RATE] [--check-backup INTERVAL] [--lan-port PORT] [--lan-addr ADDR]
 * [--no-lan]`, the daemon that keeps a linked folder
 * in sync in real time (watch.c). It runs in the foreground until SIGINT or
 * SIGTERM; logs go to stderr, or to FILE. The limits travel in the config
 * to the connection sync_session_open makes (the event stream is not
 * limited); the download policy is read from config.json by the rounds
 * themselves (sync.c), so a `ferry config` beside a running watch takes
 * effect.
 *
 * --check-backup: a thread of its own checks the folder's backup sets
 * (backup_check: a scan of their sources, nothing is sent) at start and
 * then every INTERVAL, logs what changed since each set's last backup and
 * runs notify-send when that is on PATH. It never uploads: that is for the
 * user to say (`ferry backup`, or `ferry backup --check` on a terminal).
 * It has its own index and lock per set, so it never holds up a round; a
 * check under way when the watch stops is finished first.
 *
 * --lan-port, --lan-addr, --no-lan: the LAN listener (watch_req.h,
 * docs/lan.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "cli.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "thread.h"
#include "watch.h"

enum {
        OPT_LOG = 1000,
        OPT_LIMIT_UP,
        OPT_LIMIT_DOWN,
        OPT_CHECK_BACKUP,
        OPT_LAN_PORT,
        OPT_LAN_ADDR,
        OPT_NO_LAN,
        OPT_HELP
};

/* At most this many paths of one set are logged per check. */
#define CHECK_LOG_PATHS 50

static const char *const what_names[BACKUP_NWHAT] = {"new", "modified", "deleted", "renamed"};

struct bkcheck {
        const struct config *cfg;
        int64_t interval; /* seconds */
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int stop;
        pthread_t th;
};

static void check_set(const struct config *cfg, const char *name)
{
        struct backup_report rep = {0};
        struct backup_set set = {0};
        char counts[160], summary[128], body[512];
        int r;

        r = backup_set_load(cfg, name, &set);
        if (r == 0)
                r = backup_check(cfg, &set, &rep);
        if (r == -EBUSY) {
                log_info("backup check: set %s: a backup of it is running; next time", name);
                goto out;
        }
        if (r < 0) {
                log_warn("backup check: set %s: %s", name, err_msg(r));
                goto out;
        }
        if (rep.n == 0 && rep.nmissing == 0) {
                log_debug("backup check: set %s: no changes since the last backup", name);
                goto out;
        }
        backup_report_counts(&rep, counts, sizeof(counts));
        log_info("backup check: set %s: %s to upload since the %s; run 'ferry backup --to %s'",
                 name, counts, rep.last_ns > 0 ? "last backup" : "start (never backed up)", name);
        for (size_t i = 0; i < rep.n && i < CHECK_LOG_PATHS; i++)
                log_info("backup check: set %s: %-8s %s%s%s", name, what_names[rep.items[i].what],
                         rep.items[i].path, rep.items[i].from ? " from " : "",
                         rep.items[i].from ? rep.items[i].from : "");
        if (rep.n > CHECK_LOG_PATHS)
                log_info("backup check: set %s: ... and %zu more", name, rep.n - CHECK_LOG_PATHS);
        for (size_t i = 0; i < rep.nmissing; i++)
                log_warn("backup check: set %s: %s is missing", name, rep.missing[i]);
        snprintf(summary, sizeof(summary), "Ferry: backup set %s has changes", name);
        snprintf(body, sizeof(body),
                 "%s since the last backup. Run 'ferry backup --to %s' to "
                 "upload them.",
                 counts, name);
        if ((r = backup_notify(summary, body)) < 0)
                log_warn("backup check: %s", err_msg(r));
out:
        err_clear();
        backup_report_free(&rep);
        backup_set_free(&set);
}

static void check_all(const struct config *cfg)
{
        char **names = NULL;
        size_t n = 0;
        int r;

        r = backup_sets_local(cfg, &names, &n);
        if (r < 0)
                log_warn("backup check: %s", err_msg(r));
        else if (n == 0)
                log_debug("backup check: this folder has no backup sets");
        for (size_t i = 0; i < n; i++) {
                check_set(cfg, names[i]);
                free(names[i]);
        }
        free(names);
}

static void *check_main(void *arg)
{
        struct bkcheck *bc = arg;
        struct timespec until;

        pthread_mutex_lock(&bc->mu);
        while (!bc->stop) {
                pthread_mutex_unlock(&bc->mu);
                check_all(bc->cfg);
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += bc->interval;
                pthread_mutex_lock(&bc->mu);
                while (!bc->stop && pthread_cond_timedwait(&bc->cv, &bc->mu, &until) != ETIMEDOUT)
                        ;
        }
        pthread_mutex_unlock(&bc->mu);
        return NULL;
}

/* Starts the check thread with every signal blocked: the watch takes
 * SIGINT and SIGTERM through a signalfd, which works only while no thread
 * lets them through. */
static int check_start(struct bkcheck *bc)
{
        pthread_condattr_t ca;
        int r;

        pthread_mutex_init(&bc->mu, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&bc->cv, &ca);
        pthread_condattr_destroy(&ca);
        r = thread_start(&bc->th, check_main, bc);
        if (r < 0) {
                pthread_cond_destroy(&bc->cv);
                pthread_mutex_destroy(&bc->mu);
                return err_set(r, "cannot start the backup check: %s", strerror(-r));
        }
        return 0;
}

static void check_stop(struct bkcheck *bc)
{
        pthread_mutex_lock(&bc->mu);
        bc->stop = 1;
        pthread_cond_signal(&bc->cv);
        pthread_mutex_unlock(&bc->mu);
        pthread_join(bc->th, NULL);
        pthread_cond_destroy(&bc->cv);
        pthread_mutex_destroy(&bc->mu);
}

int cmd_watch(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"log", required_argument, NULL, OPT_LOG},
            {"limit-up", required_argument, NULL, OPT_LIMIT_UP},
            {"limit-down", required_argument, NULL, OPT_LIMIT_DOWN},
            {"check-backup", required_argument, NULL, OPT_CHECK_BACKUP},
            {"lan-port", required_argument, NULL, OPT_LAN_PORT},
            {"lan-addr", required_argument, NULL, OPT_LAN_ADDR},
            {"no-lan", no_argument, NULL, OPT_NO_LAN},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct watch_options wo = {0};
        struct config cfg = {0};
        struct bkcheck bc = {0};
        int64_t up = 0, down = 0;
        unsigned char a6[16];
        char *end;
        long port;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_LOG:
                        wo.log_file = optarg;
                        break;
                case OPT_LIMIT_UP:
                case OPT_LIMIT_DOWN:
                        if (cli_limit_option("watch",
                                             c == OPT_LIMIT_UP ? "--limit-up" : "--limit-down",
                                             optarg, c == OPT_LIMIT_UP ? &up : &down) != CLI_OK)
                                return CLI_USAGE;
                        break;
                case OPT_CHECK_BACKUP:
                        if (backup_parse_interval(optarg, &bc.interval) < 0)
                                return cli_usage("watch", "--check-backup: %s", err_msg(-EINVAL));
                        break;
                case OPT_LAN_PORT:
                        errno = 0;
                        port = strtol(optarg, &end, 10);
                        if (errno || end == optarg || *end || port < 0 || port > 65535)
                                return cli_usage("watch", "--lan-port takes a port (0..65535)");
                        wo.lan.lan_port = (int)port;
                        break;
                case OPT_LAN_ADDR:
                        if (inet_pton(AF_INET, optarg, a6) != 1 &&
                            inet_pton(AF_INET6, optarg, a6) != 1)
                                return cli_usage(
                                    "watch", "--lan-addr takes an IP address, not '%s'", optarg);
                        wo.lan.lan_addr = optarg;
                        break;
                case OPT_NO_LAN:
                        wo.lan.no_lan = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] watch [--log FILE] [--limit-up RATE]\n"
                             "                           [--limit-down RATE]\n"
                             "                           [--check-backup INTERVAL]\n"
                             "                           [--lan-port PORT] [--lan-addr ADDR]\n"
                             "                           [--no-lan]\n"
                             "\n"
                             "Keeps the linked folder in sync in real time, in the foreground:\n"
                             "local changes are uploaded as soon as they settle (inotify), and\n"
                             "changes from other devices are downloaded as soon as the server\n"
                             "announces them (its event stream). Reconnects by itself when the\n"
                             "server goes away. Stops cleanly on SIGINT or SIGTERM. Logs one\n"
                             "line per round that moved something, to stderr or to FILE.\n"
                             "'ferry status' shows what a running watch is doing. Under\n"
                             "'ferry config download-incomplete wait' it also keeps the list of\n"
                             "files other devices are still uploading (status shows it) and\n"
                             "downloads them as soon as they are complete.\n"
                             "--limit-up/--limit-down RATE cap the upload/download rate of its\n"
                             "transfers in bytes per second (K, M, G binary suffixes: 500K, 10M,\n"
                             "1.5M; 0 means no limit).\n"
                             "--check-backup INTERVAL (90, 15m, 2h, 1d): at start and then\n"
                             "every INTERVAL, checks this folder's backup sets ('ferry backup')\n"
                             "for files changed since their last backup, logs them and runs\n"
                             "notify-send when it is on PATH; nothing is uploaded.\n"
                             "LAN: the watch listens for the account's other devices on this\n"
                             "network (docs/lan.md): they fetch chunks from it and deliver\n"
                             "'ferry request-upload' requests, which it runs (as it does those\n"
                             "the server relays). --lan-port PORT (default 0: any free port),\n"
                             "--lan-addr ADDR listens on and announces ADDR (default: every\n"
                             "address, announcing the one of the route to the server), --no-lan\n"
                             "runs no listener and takes no chunks from LAN peers (requests\n"
                             "then come through the server only).");
                        return CLI_OK;
                default:
                        return cli_bad_option("watch", argc, argv, c);
                }
        }
        r = cli_open_folder(g, "watch", argc, argv, &cfg);
        if (r != CLI_OK)
                return r;
        cfg.limit_up = up;
        cfg.limit_down = down;
        /* a daemon's log is its only output: info lines by default */
        if (g->verbose == 0)
                log_init("ferry", LOG_LEVEL_INFO);
        if (wo.log_file && (r = log_open(wo.log_file)) < 0) {
                config_free(&cfg);
                return cli_fail("watch", r);
        }
        if (bc.interval > 0) {
                bc.cfg = &cfg;
                if ((r = check_start(&bc)) < 0) {
                        log_close();
                        config_free(&cfg);
                        return cli_fail("watch", r);
                }
        }
        r = watch_run(&cfg, &wo);
        if (bc.interval > 0)
                check_stop(&bc);
        log_close();
        config_free(&cfg);
        if (r < 0)
                return cli_fail("watch", r);
        return CLI_OK;
}
