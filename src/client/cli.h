/* cli: what the `ferry` commands share: the global options (-C DIR, -v,
 * --help, --version), the command table, the one-line error reports and the
 * exit codes (0 success, 1 failure, 2 usage error), and opening a linked
 * folder's config. Each command lives in a cmd_*.c file.
 */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <jansson.h>

#include "config.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

struct cli {
        const char *dir; /* -C DIR, or NULL */
        int verbose;     /* -v count */
};

enum cli_action { CLI_RUN, CLI_HELP, CLI_VERSION, CLI_BAD_USAGE };

/* Parses the global options before the command name. *cmd gets the index
 * of the command name in argv (CLI_RUN only). Prints nothing. */
enum cli_action cli_parse_global(int argc, char **argv, struct cli *g, int *cmd);

struct cli_command {
        const char *name;
        const char *summary;
        int (*run)(const struct cli *g, int argc, char **argv); /* argv[0] is the name */
};

/* The command table, ended by a NULL name. */
extern const struct cli_command cli_commands[];

const struct cli_command *cli_find(const char *name);

/* Prints the top-level help. */
void cli_help(FILE *f);

/* "ferry: <cmd>: <err_msg(r)>" on stderr; returns CLI_FAIL. */
int cli_fail(const char *cmd, int r);

/* "ferry: <cmd>: <message> (see 'ferry <cmd> --help')" on stderr; returns
 * CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets getopt and reports a bad option of a command's argv the same way.
 * Call with the '?' or ':' getopt_long returned. */
int cli_bad_option(const char *cmd, int argc, char **argv, int c);

/* Finds the linked folder (-C DIR or the current directory, then its
 * parents) and loads its config into cfg (zeroed by the caller). */
int cli_load_config(const struct cli *g, struct config *cfg);

/* The end of argument parsing for a command that works on the linked
 * folder and takes no operand: a leftover argument is a usage error, then
 * the folder's config is loaded into cfg (zeroed by the caller). Returns
 * CLI_OK, or the exit code the command returns (CLI_USAGE, or CLI_FAIL
 * after reporting), with cfg left empty. */
int cli_open_folder(const struct cli *g, const char *cmd, int argc, char **argv,
                    struct config *cfg);

/* Prints j as indented JSON on stdout with a final newline. */
int cli_print_json(json_t *j);

/* Largest accepted --limit-up / --limit-down: 1 TiB/s. */
#define CLI_RATE_MAX (1LL << 40)

/* Parses a rate in bytes/s: a number, with an optional fraction and an
 * optional binary suffix K, M or G (either case): "500K", "10M", "1.5M",
 * "0" (no limit). Returns 0, or -EINVAL with a message for anything else
 * (negative, empty, junk, a fraction of a byte, over CLI_RATE_MAX). */
int cli_parse_rate(const char *s, int64_t *out);

/* A --limit-up / --limit-down value (opt names the option) into *out:
 * CLI_OK, or CLI_USAGE after reporting a bad RATE on stderr. */
int cli_limit_option(const char *cmd, const char *opt, const char *val, int64_t *out);

/* Formats seconds since the epoch as "YYYY-mm-dd HH:MM:SS" (local time). */
void cli_format_time(int64_t secs, char *out, size_t len);

/* The commands, one file each or a few related ones together. */
/* cmd_account.c */
int cmd_register(const struct cli *g, int argc, char **argv);
int cmd_init(const struct cli *g, int argc, char **argv);
/* cmd_sync.c */
int cmd_sync(const struct cli *g, int argc, char **argv);
int cmd_status(const struct cli *g, int argc, char **argv);
/* cmd_watch.c */
int cmd_watch(const struct cli *g, int argc, char **argv);
/* cmd_info.c */
int cmd_ls(const struct cli *g, int argc, char **argv);
int cmd_hash(const struct cli *g, int argc, char **argv);
/* cmd_devices.c */
int cmd_devices(const struct cli *g, int argc, char **argv);
/* cmd_transfers.c */
int cmd_transfers(const struct cli *g, int argc, char **argv);
int cmd_retry(const struct cli *g, int argc, char **argv);
int cmd_forget(const struct cli *g, int argc, char **argv);
/* cmd_config.c */
int cmd_config(const struct cli *g, int argc, char **argv);
/* cmd_history.c */
int cmd_history(const struct cli *g, int argc, char **argv);
int cmd_restore(const struct cli *g, int argc, char **argv);
int cmd_trash(const struct cli *g, int argc, char **argv);
/* cmd_rules.c */
int cmd_rules(const struct cli *g, int argc, char **argv);
int cmd_held(const struct cli *g, int argc, char **argv);
/* cmd_push.c */
int cmd_push(const struct cli *g, int argc, char **argv);
/* cmd_pull.c */
int cmd_pull(const struct cli *g, int argc, char **argv);
int cmd_prune(const struct cli *g, int argc, char **argv);
/* cmd_backup.c */
int cmd_backup(const struct cli *g, int argc, char **argv);
/* cmd_request.c */
int cmd_request_upload(const struct cli *g, int argc, char **argv);

#endif
