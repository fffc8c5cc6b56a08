/* cmd_watch: `ferry watch [--log FILE] [--limit-up RATE] [--limit-down
 * RATE]`, the daemon that keeps a linked folder in sync in real time
 * (watch.c). It runs in the foreground until SIGINT or SIGTERM; logs go to
 * stderr, or to FILE. The limits travel in the config to the connection
 * sync_session_open makes (the event stream is not limited); the download
 * policy is read from config.json by the rounds themselves (sync.c), so a
 * `ferry config` beside a running watch takes effect. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "watch.h"

enum { OPT_LOG = 1000, OPT_LIMIT_UP, OPT_LIMIT_DOWN, OPT_HELP };

int cmd_watch(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"log", required_argument, NULL, OPT_LOG},
            {"limit-up", required_argument, NULL, OPT_LIMIT_UP},
            {"limit-down", required_argument, NULL, OPT_LIMIT_DOWN},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct watch_options wo = {0};
        struct config cfg = {0};
        int64_t up = 0, down = 0;
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
                case 'h':
                case OPT_HELP:
                        puts("usage: ferry [-C DIR] watch [--log FILE] [--limit-up RATE]\n"
                             "                           [--limit-down RATE]\n"
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
                             "1.5M; 0 means no limit).");
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
        r = watch_run(&cfg, &wo);
        log_close();
        config_free(&cfg);
        if (r < 0)
                return cli_fail("watch", r);
        return CLI_OK;
}
