/* cli: the shared part of the `ferry` command line (see cli.h). Keeping the
 * option parsing here, apart from main(), is what lets the unit tests run
 * it. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

const struct cli_command cli_commands[] = {
    {"register", "create an account on a server", cmd_register},
    {"init", "log in and link a folder (DIR/.ferry/)", cmd_init},
    {"sync", "one round: upload local changes, download remote ones", cmd_sync},
    {"watch", "keep the folder in sync in real time (a daemon, in the foreground)", cmd_watch},
    {"status", "the linked folder, its last sync, pending changes, the watch", cmd_status},
    {"ls", "what the server holds for this account", cmd_ls},
    {"devices", "this account's devices (--history, remove NAME)", cmd_devices},
    {"transfers", "every device's uploads: pending, uploading, complete, failed", cmd_transfers},
    {"retry", "upload or download failed transfers again", cmd_retry},
    {"forget", "drop failed transfer records", cmd_forget},
    {"history", "the versions of a file", cmd_history},
    {"restore", "bring back a file's earlier version, or a deleted file", cmd_restore},
    {"trash", "deleted files that can be restored", cmd_trash},
    {"config", "show or change this device's settings", cmd_config},
    {"rules", "what this device uploads and downloads", cmd_rules},
    {"held", "files the rules hold back, up and down", cmd_held},
    {"push", "upload held files now", cmd_push},
    {"pull", "download held files now", cmd_pull},
    {"prune", "remove local files the download rules no longer select", cmd_prune},
    {"backup", "one-shot upload of files or folders as a backup set", cmd_backup},
    {"request-upload", "ask another device to upload its files now", cmd_request_upload},
    {"hash", "print local files' hashes as the server lists them", cmd_hash},
    {NULL, NULL, NULL},
};

const struct cli_command *cli_find(const char *name)
{
        for (const struct cli_command *c = cli_commands; c->name; c++)
                if (!strcmp(c->name, name))
                        return c;
        return NULL;
}

void cli_help(FILE *f)
{
        fputs("usage: ferry [-C DIR] [-v] COMMAND [ARGS]\n"
              "       ferry --help | --version\n"
              "\n"
              "Keeps a folder identical across devices through a ferryd server.\n"
              "\n"
              "Options:\n"
              "  -C DIR       work on the folder DIR (default: the current directory or the\n"
              "               nearest parent holding .ferry/)\n"
              "  -v           more log output on stderr (-vv for debug)\n"
              "  --help       this help; 'ferry COMMAND --help' for a command's\n"
              "  --version    the version\n"
              "\n"
              "Commands:\n",
              f);
        for (const struct cli_command *c = cli_commands; c->name; c++)
                fprintf(f, "  %-10s   %s\n", c->name, c->summary);
        fputs("\nExit codes: 0 success, 1 failure, 2 usage error. See docs/cli.md.\n", f);
}

enum cli_action cli_parse_global(int argc, char **argv, struct cli *g, int *cmd)
{
        int i;

        memset(g, 0, sizeof(*g));
        for (i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (!strcmp(a, "--help") || !strcmp(a, "-h"))
                        return CLI_HELP;
                if (!strcmp(a, "--version") || !strcmp(a, "-V"))
                        return CLI_VERSION;
                if (!strcmp(a, "-C")) {
                        if (i + 1 >= argc)
                                return CLI_BAD_USAGE;
                        g->dir = argv[++i];
                } else if (!strncmp(a, "-C", 2)) {
                        g->dir = a + 2;
                } else if (a[0] == '-' && a[1] == 'v' && strspn(a + 1, "v") == strlen(a + 1)) {
                        g->verbose += (int)strlen(a + 1);
                } else if (!strcmp(a, "--verbose")) {
                        g->verbose++;
                } else if (a[0] == '-') {
                        return CLI_BAD_USAGE;
                } else {
                        *cmd = i;
                        return CLI_RUN;
                }
        }
        return CLI_BAD_USAGE;
}

int cli_fail(const char *cmd, int r)
{
        fprintf(stderr, "ferry: %s: %s\n", cmd, err_msg(r));
        return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "ferry: %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see 'ferry %s --help')\n", cmd);
        return CLI_USAGE;
}

int cli_bad_option(const char *cmd, int argc, char **argv, int c)
{
        const char *opt = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : "?";

        if (c == ':')
                return cli_usage(cmd, "option %s needs a value", opt);
        return cli_usage(cmd, "unknown option %s", opt);
}

int cli_load_config(const struct cli *g, struct config *cfg)
{
        char *root = NULL;
        int r;

        r = config_find_root(g->dir ? g->dir : ".", &root);
        if (r < 0)
                return r;
        r = config_load(root, cfg);
        if (r == 0 && (!cfg->server || !cfg->token || !cfg->device_name || !cfg->user)) {
                r = err_set(-EINVAL,
                            "%s/.ferry/config.json is incomplete (no server, user, "
                            "device or token); link the folder again with 'ferry init'",
                            root);
                config_free(cfg);
        }
        free(root);
        return r;
}

int cli_open_folder(const struct cli *g, const char *cmd, int argc, char **argv, struct config *cfg)
{
        int r;

        if (optind < argc)
                return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
        r = cli_load_config(g, cfg);
        if (r < 0)
                return cli_fail(cmd, r);
        return CLI_OK;
}

int cli_print_json(json_t *j)
{
        if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                return err_set(-EIO, "cannot write the output");
        fputc('\n', stdout);
        return 0;
}

void cli_format_time(int64_t secs, char *out, size_t len)
{
        time_t t = (time_t)secs;
        struct tm tm;

        localtime_r(&t, &tm);
        if (strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(out, len, "%lld", (long long)secs);
}

int cli_parse_rate(const char *s, int64_t *out)
{
        /* parsed by hand rather than with strtod: exact, and no locale */
        uint64_t ip = 0, frac = 0, scale = 1, mult = 1, v;
        const char *p = s;
        int digits = 0;

        for (; *p >= '0' && *p <= '9'; p++, digits++) {
                ip = ip * 10 + (uint64_t)(*p - '0');
                if (ip > (uint64_t)CLI_RATE_MAX)
                        goto bad;
        }
        if (*p == '.') {
                for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
                        if (scale < 1000000000u) { /* more digits do not matter */
                                frac = frac * 10 + (uint64_t)(*p - '0');
                                scale *= 10;
                        }
                }
        }
        if (digits == 0)
                goto bad;
        switch (*p) {
        case 'k':
        case 'K':
                mult = 1u << 10;
                p++;
                break;
        case 'm':
        case 'M':
                mult = 1u << 20;
                p++;
                break;
        case 'g':
        case 'G':
                mult = 1u << 30;
                p++;
                break;
        default:
                break;
        }
        if (*p != '\0')
                goto bad;
        if (ip > (uint64_t)CLI_RATE_MAX / mult)
                goto bad;
        v = ip * mult + frac * mult / scale;
        if (v > (uint64_t)CLI_RATE_MAX || (v == 0 && (ip != 0 || frac != 0)))
                goto bad;
        *out = (int64_t)v;
        return 0;
bad:
        return err_set(-EINVAL,
                       "bad rate '%s' (bytes per second, e.g. 500K, 10M, 1.5M; 0 for no limit)", s);
}

int cli_limit_option(const char *cmd, const char *opt, const char *val, int64_t *out)
{
        int r = cli_parse_rate(val, out);

        return r < 0 ? cli_usage(cmd, "%s: %s", opt, err_msg(r)) : CLI_OK;
}
