/* cmd_backup: `ferry backup PATH... [--to NAME]` (a one-shot upload of
 * local files and folders into a backup set, backup.h), `ferry backup
 * [--to NAME]` (the set's sources again), `ferry backup --check [NAME]`
 * (what changed since the last backup; on a terminal it offers to upload
 * it, elsewhere it prints and notifies) and `ferry backup --list` (the sets
 * the server holds, with what this folder knows of them).
 *
 * The linked folder (-C DIR or the current one) gives the server, the
 * token and the place of the sets' state (.ferry/backup-NAME.*); the
 * sources themselves may be anywhere.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backup.h"
#include "buf.h"
#include "cli.h"
#include "config.h"
#include "err.h"
#include "manifest.h"
#include "progress.h"
#include "remote.h"
#include "rules.h"

enum {
        OPT_TO = 1000,
        OPT_CHECK,
        OPT_LIST,
        OPT_JSON,
        OPT_MASS,
        OPT_LIMIT_UP,
        OPT_LIMIT_DOWN,
        OPT_HELP
};

static const char *const what_names[BACKUP_NWHAT] = {"new", "modified", "deleted", "renamed"};

static void usage_text(void)
{
        puts("usage: ferry [-C DIR] backup PATH... [--to NAME] [--allow-mass-delete]\n"
             "       ferry [-C DIR] backup [--to NAME]\n"
             "       ferry [-C DIR] backup --check [NAME]\n"
             "       ferry [-C DIR] backup --list [--json]\n"
             "\n"
             "Uploads local files and folders (PATH: anywhere on this device) into the\n"
             "backup set NAME (default: this device's name) of your space, under\n"
             ".ferry-backup/NAME/<name of PATH>/, which no sync or watch downloads.\n"
             "Only new or changed files are sent; files deleted since the last backup\n"
             "are deleted in the set (their versions stay in the history: 'ferry\n"
             "restore .ferry-backup/NAME --at TIME --into DIR'). The set remembers its\n"
             "PATHs: without PATH, all of them are backed up again.\n"
             "--check: lists what changed since the last backup (nothing is sent); on\n"
             "a terminal asks whether to upload it now, elsewhere runs notify-send.\n"
             "--list: the sets on the server, their files and last backup.\n"
             "--allow-mass-delete: let a backup delete many files of the set (as for\n"
             "sync). --limit-up RATE: at most RATE bytes/s (500K, 10M).");
}

static int default_name(const struct config *cfg, const char *to, const char **out)
{
        *out = to ? to : cfg->device_name;
        if (backup_name_check(*out) < 0) {
                if (to)
                        return cli_usage("backup", "%s", err_msg(-EINVAL));
                return cli_usage("backup",
                                 "the device name '%s' cannot name a backup set; give --to NAME",
                                 cfg->device_name);
        }
        return CLI_OK;
}

static void print_items(const struct backup_report *rep)
{
        for (size_t i = 0; i < rep->n; i++) {
                const struct backup_item *it = &rep->items[i];
                const char *slash = it->kind == KIND_DIR ? "/" : "";

                if (it->from)
                        printf("  %-9s %s%s (from %s%s)\n", what_names[it->what], it->path, slash,
                               it->from, slash);
                else
                        printf("  %-9s %s%s\n", what_names[it->what], it->path, slash);
        }
        for (size_t i = 0; i < rep->nmissing; i++)
                printf("  %-9s %s (not there: its copy in the set is left as it is)\n", "missing",
                       rep->missing[i]);
}

static void last_backup(const struct backup_report *rep, char *out, size_t len)
{
        char when[64];

        if (rep->last_ns <= 0) {
                snprintf(out, len, "never backed up");
                return;
        }
        cli_format_time(rep->last_ns / 1000000000LL, when, sizeof(when));
        snprintf(out, len, "last backup %s", when);
}

static int run_backup(const struct config *cfg, const struct backup_set *set,
                      const struct backup_options *o)
{
        struct backup_report rep = {0};
        char counts[160], sent[32];
        int r;

        r = backup_run(cfg, set, o, &rep);
        if (r == 0 || rep.n > 0) {
                backup_report_counts(&rep, counts, sizeof(counts));
                progress_human(rep.bytes_up, sent, sizeof(sent));
                if (rep.n == 0 && r == 0)
                        printf("backed up to %s/%s: nothing changed since the last backup\n",
                               RULES_BACKUP_PREFIX, set->name);
                else if (rep.n > 0)
                        printf("backed up to %s/%s: %s (sent %s)\n", RULES_BACKUP_PREFIX, set->name,
                               counts, sent);
                fflush(stdout);
        }
        backup_report_free(&rep);
        return r < 0 ? cli_fail("backup", r) : CLI_OK;
}

/* Reads one answer line; 1 for y or yes. */
static int ask_yes(void)
{
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        int yes;

        fputs("upload these changes now? [y/N] ", stdout);
        fflush(stdout);
        n = getline(&line, &cap, stdin);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
                line[--n] = '\0';
        yes = n > 0 && (!strcasecmp(line, "y") || !strcasecmp(line, "yes"));
        free(line);
        return yes;
}

static int check_one(const struct config *cfg, const char *name, int tty)
{
        struct backup_report rep = {0};
        struct backup_set set = {0};
        struct backup_options o = {0};
        char counts[160], last[96], body[512];
        int r, rc = CLI_OK;

        r = backup_set_load(cfg, name, &set);
        if (r == 0 && !set.exists)
                r = err_set(-ENOENT,
                            "this folder has no backup set %s ('ferry backup --list' shows the "
                            "sets)",
                            name);
        if (r == 0)
                r = backup_check(cfg, &set, &rep);
        if (r < 0) {
                rc = cli_fail("backup", r);
                goto out;
        }
        backup_report_counts(&rep, counts, sizeof(counts));
        last_backup(&rep, last, sizeof(last));
        if (rep.n == 0) {
                printf("backup set %s (%s): no changes since the last backup\n", name, last);
                print_items(&rep);
                goto out;
        }
        printf("backup set %s (%s): %s to upload\n", name, last, counts);
        print_items(&rep);
        fflush(stdout);
        if (tty) {
                if (ask_yes())
                        rc = run_backup(cfg, &set, &o);
                goto out;
        }
        snprintf(body, sizeof(body), "%s since the %s. Run 'ferry backup --to %s' to upload them.",
                 counts, rep.last_ns > 0 ? "last backup" : "start", name);
        snprintf(last, sizeof(last), "Ferry: backup set %s has changes", name);
        if ((r = backup_notify(last, body)) < 0) {
                fprintf(stderr, "ferry: backup: %s\n", err_msg(r));
                err_clear();
        }
out:
        backup_report_free(&rep);
        backup_set_free(&set);
        return rc;
}

static int cmd_check(const struct config *cfg, const char *name)
{
        int tty = isatty(0) && isatty(1), rc = CLI_OK, r;
        char **names = NULL;
        size_t n = 0;

        if (name)
                return check_one(cfg, name, tty);
        r = backup_sets_local(cfg, &names, &n);
        if (r < 0)
                return cli_fail("backup", r);
        if (n == 0)
                puts("this folder has no backup sets; make one with 'ferry backup PATH...'");
        for (size_t i = 0; i < n; i++) {
                if (rc == CLI_OK)
                        rc = check_one(cfg, names[i], tty);
                free(names[i]);
        }
        free(names);
        return rc;
}

/* --list: one set, as the server's listing adds it up. */
struct set_row {
        char name[BACKUP_NAME_MAX + 1];
        int64_t files, bytes, newest;
};

static int cmp_row(const void *a, const void *b)
{
        return strcmp(((const struct set_row *)a)->name, ((const struct set_row *)b)->name);
}

/* The row of name (len bytes), added when new; NULL on out of memory or a
 * name too long to be a set's. */
static struct set_row *row_of(struct set_row **rows, size_t *n, const char *name, size_t len)
{
        struct set_row *p;

        for (size_t i = 0; i < *n; i++)
                if (strlen((*rows)[i].name) == len && !strncmp((*rows)[i].name, name, len))
                        return &(*rows)[i];
        if (len == 0 || len > BACKUP_NAME_MAX || !(p = realloc(*rows, (*n + 1) * sizeof(*p))))
                return NULL;
        *rows = p;
        p = &p[(*n)++];
        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%.*s", (int)len, name);
        return p;
}

/* Adds up the server's entries under .ferry-backup/ by set. */
static int server_rows(const struct config *cfg, struct set_row **rows, size_t *n)
{
        const size_t plen = strlen(RULES_BACKUP_PREFIX "/");
        struct remote *rem = NULL;
        json_t *resp = NULL, *f;
        size_t i;
        int r;

        r = remote_new(cfg->server, cfg->token, &rem);
        if (r == 0)
                r = remote_get_json(rem, "/api/v1/files?prefix=" RULES_BACKUP_PREFIX "&deleted=1",
                                    &resp);
        remote_free(rem);
        json_array_foreach(json_object_get(resp, "files"), i, f)
        {
                const char *path = json_string_value(json_object_get(f, "path")), *end;
                int64_t t = json_integer_value(json_object_get(f, "time"));
                struct set_row *row;

                if (r < 0 || !path || strncmp(path, RULES_BACKUP_PREFIX "/", plen) != 0)
                        continue;
                end = strchrnul(path + plen, '/');
                row = row_of(rows, n, path + plen, (size_t)(end - path - plen));
                if (!row)
                        continue; /* not a set's name: nothing of ours */
                if (t > row->newest)
                        row->newest = t;
                if (!json_is_true(json_object_get(f, "deleted")) &&
                    !strcmp(json_string_value(json_object_get(f, "kind")) ?: "", "file")) {
                        row->files++;
                        row->bytes += json_integer_value(json_object_get(f, "size"));
                }
        }
        json_decref(resp);
        return r;
}

static json_t *row_json(const struct set_row *row, const struct backup_set *set, int64_t last)
{
        json_t *o =
            json_pack("{s:s, s:I, s:I, s:o, s:o, s:b, s:[]}", "name", row->name, "files",
                      (json_int_t)row->files, "bytes", (json_int_t)row->bytes, "last_backup",
                      last > 0 ? json_integer(last) : json_null(), "server_time",
                      row->newest > 0 ? json_integer(row->newest) : json_null(), "local",
                      set->exists, "sources");

        for (size_t i = 0; o && i < set->nsources; i++)
                if (json_array_append_new(json_object_get(o, "sources"),
                                          json_string(set->sources[i])) < 0) {
                        json_decref(o);
                        o = NULL;
                }
        return o;
}

static void row_text(const struct set_row *row, const struct backup_set *set, int64_t last)
{
        char size[32], when[64];
        struct buf src = BUF_INIT;

        progress_human(row->bytes, size, sizeof(size));
        if (set->exists && last <= 0)
                snprintf(when, sizeof(when), "never");
        else if (last > 0 || row->newest > 0)
                cli_format_time(last > 0 ? last : row->newest, when, sizeof(when));
        else
                snprintf(when, sizeof(when), "-");
        for (size_t i = 0; i < set->nsources; i++)
                buf_printf(&src, "%s%s", i ? ", " : "", set->sources[i]);
        printf("%-20s %8lld %11s  %-19s  %s\n", row->name, (long long)row->files, size, when,
               set->exists ? (src.len ? (const char *)src.data : "-")
                           : "(backed up from another device or folder)");
        buf_free(&src);
}

static int cmd_list(const struct config *cfg, int json)
{
        struct set_row *rows = NULL;
        size_t n = 0, nlocal = 0;
        json_t *out = json ? json_pack("{s:[]}", "sets") : NULL;
        char **local = NULL;
        int r, rc = CLI_OK;

        r = json && !out ? -ENOMEM : server_rows(cfg, &rows, &n);
        if (r == 0)
                r = backup_sets_local(cfg, &local, &nlocal);
        for (size_t i = 0; i < nlocal && r == 0; i++)
                if (!row_of(&rows, &n, local[i], strlen(local[i])))
                        r = -ENOMEM;
        if (r < 0) {
                rc = cli_fail("backup", r);
                goto out;
        }
        if (n > 1)
                qsort(rows, n, sizeof(*rows), cmp_row);
        if (!json && n == 0)
                puts("no backup sets; make one with 'ferry backup PATH...'");
        else if (!json)
                printf("%-20s %8s %11s  %-19s  %s\n", "SET", "FILES", "SIZE", "LAST BACKUP",
                       "SOURCES");
        for (size_t i = 0; i < n && r == 0; i++) {
                struct backup_set set = {0};
                int64_t last = 0;

                r = backup_set_load(cfg, rows[i].name, &set);
                if (r == 0 && set.exists)
                        r = backup_last(cfg, rows[i].name, &last);
                last /= 1000000000LL;
                if (r == 0 && json &&
                    json_array_append_new(json_object_get(out, "sets"),
                                          row_json(&rows[i], &set, last)) < 0)
                        r = -ENOMEM;
                else if (r == 0 && !json)
                        row_text(&rows[i], &set, last);
                backup_set_free(&set);
        }
        if (r == 0 && json)
                r = cli_print_json(out);
        if (r < 0)
                rc = cli_fail("backup", r);
out:
        for (size_t i = 0; i < nlocal; i++)
                free(local[i]);
        free(local);
        free(rows);
        json_decref(out);
        return rc;
}

int cmd_backup(const struct cli *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"to", required_argument, NULL, OPT_TO},
            {"check", no_argument, NULL, OPT_CHECK},
            {"list", no_argument, NULL, OPT_LIST},
            {"json", no_argument, NULL, OPT_JSON},
            {"allow-mass-delete", no_argument, NULL, OPT_MASS},
            {"limit-up", required_argument, NULL, OPT_LIMIT_UP},
            {"limit-down", required_argument, NULL, OPT_LIMIT_DOWN},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        struct backup_options o = {0};
        struct backup_set set = {0};
        struct config cfg = {0};
        const char *to = NULL, *name;
        int64_t up = 0, down = 0;
        char **only = NULL;
        size_t nonly = 0;
        int c, r, rc = CLI_OK, check = 0, list = 0, json = 0;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_TO:
                        to = optarg;
                        break;
                case OPT_CHECK:
                        check = 1;
                        break;
                case OPT_LIST:
                        list = 1;
                        break;
                case OPT_JSON:
                        json = 1;
                        break;
                case OPT_MASS:
                        o.allow_mass_delete = 1;
                        break;
                case OPT_LIMIT_UP:
                case OPT_LIMIT_DOWN:
                        if (cli_limit_option("backup",
                                             c == OPT_LIMIT_UP ? "--limit-up" : "--limit-down",
                                             optarg, c == OPT_LIMIT_UP ? &up : &down) != CLI_OK)
                                return CLI_USAGE;
                        break;
                case 'h':
                case OPT_HELP:
                        usage_text();
                        return CLI_OK;
                default:
                        return cli_bad_option("backup", argc, argv, c);
                }
        }
        if (check + list > 1)
                return cli_usage("backup", "--check and --list do not go together");
        if (json && !list)
                return cli_usage("backup", "--json goes with --list");
        if (list && (optind < argc || to || o.allow_mass_delete))
                return cli_usage("backup", "--list takes no PATH, --to or --allow-mass-delete");
        if (check && (argc - optind > 1 || (to && optind < argc) || o.allow_mass_delete))
                return cli_usage("backup", "--check takes one NAME at most");
        r = cli_load_config(g, &cfg);
        if (r < 0)
                return cli_fail("backup", r);
        cfg.limit_up = up;
        cfg.limit_down = down;
        if (list) {
                rc = cmd_list(&cfg, json);
                goto out;
        }
        if (check) {
                name = optind < argc ? argv[optind] : to;
                if (name && backup_name_check(name) < 0)
                        rc = cli_usage("backup", "%s", err_msg(-EINVAL));
                else
                        rc = cmd_check(&cfg, name);
                goto out;
        }
        rc = default_name(&cfg, to, &name);
        if (rc != CLI_OK)
                goto out;
        r = backup_set_load(&cfg, name, &set);
        if (r < 0) {
                rc = cli_fail("backup", r);
                goto out;
        }
        if (optind == argc && set.nsources == 0) {
                rc = cli_usage("backup", "PATH is missing (the backup set %s has no PATHs yet)",
                               name);
                goto out;
        }
        only = calloc((size_t)(argc - optind) + 1, sizeof(*only));
        if (!only) {
                rc = cli_fail("backup", -ENOMEM);
                goto out;
        }
        for (int i = optind; i < argc; i++) {
                r = backup_set_add(&set, argv[i], &only[nonly]);
                if (r < 0) {
                        rc = cli_fail("backup", r);
                        goto out;
                }
                nonly++;
        }
        if (nonly && (r = backup_set_save(&cfg, &set)) < 0) {
                rc = cli_fail("backup", r);
                goto out;
        }
        o.only = (const char *const *)only;
        o.nonly = nonly;
        rc = run_backup(&cfg, &set, &o);
out:
        for (size_t i = 0; i < nonly; i++)
                free(only[i]);
        free(only);
        backup_set_free(&set);
        config_free(&cfg);
        return rc;
}
