/* cmd_rules: `ferry rules` (show and edit this device's upload and download
 * rules and its change-detection mode, in .ferry/rules.json) and `ferry
 * held` (the files the rules hold back, from the held store in index.db).
 * docs/cli.md, "Rules", is the reference for both.
 *
 * Editing is load, change, save: rules.json is replaced atomically, so a
 * running sync or watch sees the old or the new rules, never a mix; a watch
 * re-reads the file when it changes, at its next round. Rule words that do
 * not parse are usage errors (exit 2) with rules.c's message. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "ignore.h"
#include "index.h"
#include "manifest.h"
#include "path.h"
#include "progress.h"
#include "rules.h"

enum { OPT_JSON = 1000, OPT_HELP };

static const char *const dir_names[2] = {"up", "down"};

static const char rules_help[] =
    "usage: ferry [-C DIR] rules [show] [--json]\n"
    "       ferry [-C DIR] rules set up|down RULE [or RULE...] | none\n"
    "       ferry [-C DIR] rules add up|down RULE [or RULE...]\n"
    "       ferry [-C DIR] rules remove up|down N\n"
    "       ferry [-C DIR] rules mode [index|since-last-sync]\n"
    "\n"
    "What this device uploads (up) and downloads (down). A file moves when ANY\n"
    "rule of the direction selects it; a rule is one or more conditions that\n"
    "must ALL hold:\n"
    "  all                  every file (alone in its rule)\n"
    "  folder PATH          PATH and everything under it\n"
    "  type EXT[,EXT...]    by extension, any case; or a group: images,\n"
    "                       documents, video, audio, archives\n"
    "  max-size SIZE        at most SIZE bytes: 123, 700K, 50M, 1.5G\n"
    "  ask                  the user chooses at 'ferry sync' on a terminal\n"
    "Files not selected are held back, not deleted: 'ferry held' lists them,\n"
    "'ferry push PATH' / 'ferry pull PATH' move them anyway. The default is\n"
    "'all' in both directions.\n"
    "\n"
    "  show               the rules, numbered, and the mode (the default)\n"
    "  set DIR RULE...    replace DIR's rules ('none': hold every file back)\n"
    "  add DIR RULE...    append rules\n"
    "  remove DIR N       remove rule number N\n"
    "  mode [MODE]        how a round finds local changes: index (compare with\n"
    "                     the index, the default) or since-last-sync (only files\n"
    "                     modified since the last upload; no local deletes)\n"
    "  --json             show: the rules as JSON\n"
    "\n"
    "  ferry rules set up type doc,docx\n"
    "  ferry rules set down folder Work or type images\n"
    "  ferry rules add down folder \"My Films\" type video ask\n"
    "\n"
    "Files matching .ferryignore (gitignore syntax) or the built-in defaults\n"
    "(swap files, .DS_Store, ...) never leave the device. See docs/cli.md.";

static const char held_help[] =
    "usage: ferry [-C DIR] held [up|down] [--json]\n"
    "\n"
    "Lists the files the rules hold back (see 'ferry rules'): up, local files\n"
    "not uploaded; down, server files not downloaded; with the size and why\n"
    "(the rule that did not select it, 'ask', or 'ignored by .ferryignore').\n"
    "'ferry push PATH' uploads and 'ferry pull PATH' downloads held files now\n"
    "(PATH a file, or a folder for every held file under it).\n"
    "\n"
    "  up|down   only that direction\n"
    "  --json    {\"held\": [{\"path\", \"direction\", \"kind\", \"size\", \"mtime_ns\",\n"
    "            \"seq\", \"reason\"}]}";

/* Options shared by both commands: --help and --json. Returns -1 to go
 * on, else the exit code. */
static int parse_opts(const char *cmd, const char *help, int argc, char **argv, int *json)
{
        static const struct option opts[] = {
            {"json", no_argument, NULL, OPT_JSON},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case 'h':
                case OPT_HELP:
                        puts(help);
                        return CLI_OK;
                case OPT_JSON:
                        *json = 1;
                        break;
                default:
                        return cli_bad_option(cmd, argc, argv, c);
                }
        }
        return -1;
}

static int parse_dir(const char *cmd, const char *arg, enum rules_dir *dir)
{
        if (arg && !strcmp(arg, "up")) {
                *dir = RULES_UP;
                return CLI_OK;
        }
        if (arg && !strcmp(arg, "down")) {
                *dir = RULES_DOWN;
                return CLI_OK;
        }
        if (arg == NULL)
                return cli_usage(cmd, "up or down is missing");
        return cli_usage(cmd, "expected up or down, not '%s'", arg);
}

/* Opens the folder's index (for the held store). */
static int open_index(const struct config *cfg, struct index **idx)
{
        char *db = config_state_path(cfg, INDEX_FILE);
        int r = db ? index_open(db, idx) : -ENOMEM;

        free(db);
        return r;
}

static void print_set(const struct rules *ru, enum rules_dir dir)
{
        size_t i, n = rules_count(ru, dir);
        char *t;

        printf("%s rules (a file is %s when any rule selects it):\n", dir_names[dir],
               dir == RULES_UP ? "uploaded" : "downloaded");
        if (n == 0)
                printf("  none: every file is held back\n");
        for (i = 0; i < n; i++) {
                t = rules_text(ru, dir, i);
                printf("  %zu  %s\n", i + 1, t ? t : "?");
                free(t);
        }
}

static json_t *set_json(const struct rules *ru, enum rules_dir dir)
{
        json_t *a = json_array();
        size_t i;
        char *t;

        for (i = 0; a && i < rules_count(ru, dir); i++) {
                t = rules_text(ru, dir, i);
                if (t == NULL || json_array_append_new(a, json_string(t)) < 0) {
                        json_decref(a);
                        a = NULL;
                }
                free(t);
        }
        return a;
}

static int show(const struct config *cfg, const struct rules *ru, int json)
{
        struct index *idx = NULL;
        int64_t up = 0, down = 0;
        char *ign = path_join(cfg->root, IGNORE_FILE);
        struct stat st;
        json_t *j = NULL;
        int r;

        if (ign == NULL)
                return -ENOMEM;
        r = open_index(cfg, &idx);
        if (r == 0)
                r = index_held_count(idx, RULES_UP, &up);
        if (r == 0)
                r = index_held_count(idx, RULES_DOWN, &down);
        if (r < 0)
                goto out;
        if (json) {
                j = json_pack("{s:s, s:o, s:o, s:b, s:{s:I, s:I}}", "mode",
                              rules_mode_name(rules_mode(ru)), "up", set_json(ru, RULES_UP), "down",
                              set_json(ru, RULES_DOWN), "ferryignore", stat(ign, &st) == 0, "held",
                              "up", (json_int_t)up, "down", (json_int_t)down);
                r = j ? cli_print_json(j) : -ENOMEM;
                goto out;
        }
        printf("mode: %s\n", rules_mode_name(rules_mode(ru)));
        print_set(ru, RULES_UP);
        print_set(ru, RULES_DOWN);
        printf("ignored: the defaults%s\n",
               stat(ign, &st) == 0 ? " and .ferryignore" : " (no .ferryignore)");
        printf("held: %" PRId64 " up, %" PRId64 " down%s\n", up, down,
               up + down > 0 ? " (see 'ferry held')" : "");
out:
        json_decref(j);
        index_close(idx);
        free(ign);
        return r;
}

/* A rule number for remove: CLI_OK or a usage error. */
static int parse_number(const char *arg, size_t *n)
{
        char *end;
        unsigned long long v;

        errno = 0;
        v = arg[0] >= '0' && arg[0] <= '9' ? strtoull(arg, &end, 10) : 0;
        if (errno || v < 1 || *end)
                return cli_usage("rules",
                                 "a rule number (1, 2, ... as 'ferry rules show' "
                                 "numbers them) is expected, not '%s'",
                                 arg);
        *n = (size_t)v;
        return CLI_OK;
}

/* Whether a rule selects every file without asking ("all"), so that an
 * added rule changes nothing: worth a note. */
static int has_all(const struct rules *ru, enum rules_dir dir)
{
        size_t i;
        char *t;
        int found = 0;

        for (i = 0; i < rules_count(ru, dir) && !found; i++) {
                t = rules_text(ru, dir, i);
                found = t && !strcmp(t, "all");
                free(t);
        }
        return found;
}

/* set, add, remove, mode: operands from argv[optind + 1] on. */
static int edit(const struct config *cfg, struct rules *ru, const char *sub, int n, char **ops)
{
        enum rules_dir dir = RULES_UP;
        size_t num = 0;
        int rc, r, mode;

        if (!strcmp(sub, "mode")) {
                if (n > 1)
                        return cli_usage("rules", "unexpected argument '%s'", ops[1]);
                if (n == 0) {
                        printf("%s\n", rules_mode_name(rules_mode(ru)));
                        return CLI_OK;
                }
                mode = rules_mode_parse(ops[0]);
                if (mode < 0)
                        return cli_usage("rules", "%s", err_msg(mode));
                rules_set_mode(ru, (enum rules_mode)mode);
        } else {
                rc = parse_dir("rules", n > 0 ? ops[0] : NULL, &dir);
                if (rc != CLI_OK)
                        return rc;
                if (n < 2)
                        return cli_usage("rules", "%s",
                                         !strcmp(sub, "remove") ? "the rule number is missing"
                                                                : "the rule is missing");
                if (!strcmp(sub, "remove")) {
                        if (n > 2)
                                return cli_usage("rules", "unexpected argument '%s'", ops[2]);
                        rc = parse_number(ops[1], &num);
                        if (rc != CLI_OK)
                                return rc;
                        r = rules_remove(ru, dir, num);
                        if (r < 0)
                                return cli_fail("rules", r);
                } else {
                        if (!strcmp(sub, "add") && has_all(ru, dir))
                                fprintf(stderr,
                                        "ferry: rules: note: the rule 'all' already selects "
                                        "every file; 'ferry rules set %s ...' replaces it\n",
                                        dir_names[dir]);
                        r = !strcmp(sub, "set") ? rules_set(ru, dir, ops + 1, (size_t)n - 1)
                                                : rules_add(ru, dir, ops + 1, (size_t)n - 1);
                        if (r < 0)
                                return cli_usage("rules", "%s", err_msg(r));
                }
        }
        r = rules_save(ru, cfg->root);
        if (r < 0)
                return cli_fail("rules", r);
        if (!strcmp(sub, "mode"))
                printf("mode: %s\n", rules_mode_name(rules_mode(ru)));
        else
                print_set(ru, dir);
        return CLI_OK;
}

int cmd_rules(const struct cli *g, int argc, char **argv)
{
        struct config cfg = {0};
        struct rules *ru = NULL;
        const char *sub = "show";
        int json = 0, rc, r;

        rc = parse_opts("rules", rules_help, argc, argv, &json);
        if (rc >= 0)
                return rc;
        if (optind < argc)
                sub = argv[optind];
        if (strcmp(sub, "show") && strcmp(sub, "set") && strcmp(sub, "add") &&
            strcmp(sub, "remove") && strcmp(sub, "mode"))
                return cli_usage("rules", "unknown subcommand '%s' (show, set, add, remove, mode)",
                                 sub);
        if (json && strcmp(sub, "show"))
                return cli_usage("rules", "--json goes with show only");
        if (!strcmp(sub, "show") && optind + 1 < argc)
                return cli_usage("rules", "unexpected argument '%s'", argv[optind + 1]);
        r = cli_load_config(g, &cfg);
        if (r < 0)
                return cli_fail("rules", r);
        r = rules_load(cfg.root, &ru);
        if (r < 0) {
                rc = cli_fail("rules", r);
                goto out;
        }
        if (!strcmp(sub, "show")) {
                r = show(&cfg, ru, json);
                rc = r < 0 ? cli_fail("rules", r) : CLI_OK;
        } else {
                rc = edit(&cfg, ru, sub, argc - optind - 1, argv + optind + 1);
        }
out:
        rules_free(ru);
        config_free(&cfg);
        return rc;
}

struct held_out {
        json_t *list; /* --json, else NULL */
        int64_t n[2];
};

static int held_cb(const struct index_held *h, void *ud)
{
        struct held_out *o = ud;
        char size[32];
        json_t *e;

        o->n[h->dir == RULES_DOWN]++;
        if (o->list) {
                e = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "path", h->path, "direction",
                              dir_names[h->dir == RULES_DOWN], "kind", kind_name(h->kind), "size",
                              (json_int_t)h->size, "mtime_ns", (json_int_t)h->mtime_ns, "seq",
                              (json_int_t)h->seq, "reason", h->reason);
                return e && json_array_append_new(o->list, e) == 0 ? 0 : -ENOMEM;
        }
        if (o->n[0] + o->n[1] == 1)
                printf("%-5s %10s  %s\n", "DIR", "SIZE", "PATH (WHY)");
        progress_human((int64_t)h->size, size, sizeof(size));
        printf("%-5s %10s  %s%s  (%s)\n", dir_names[h->dir == RULES_DOWN],
               h->kind == KIND_DIR ? "dir" : size, h->path, h->kind == KIND_DIR ? "/" : "",
               h->reason);
        return 0;
}

int cmd_held(const struct cli *g, int argc, char **argv)
{
        struct config cfg = {0};
        struct index *idx = NULL;
        struct held_out o = {0};
        enum rules_dir dir = RULES_UP;
        int json = 0, all = 1, rc, r;

        rc = parse_opts("held", held_help, argc, argv, &json);
        if (rc >= 0)
                return rc;
        if (optind < argc) {
                rc = parse_dir("held", argv[optind], &dir);
                if (rc != CLI_OK)
                        return rc;
                all = 0;
                optind++;
        }
        rc = cli_open_folder(g, "held", argc, argv, &cfg);
        if (rc != CLI_OK)
                return rc;
        if (json && (o.list = json_array()) == NULL) {
                rc = cli_fail("held", -ENOMEM);
                goto out;
        }
        r = open_index(&cfg, &idx);
        if (r == 0)
                r = index_held_foreach(idx, all ? -1 : (int)dir, NULL, held_cb, &o);
        if (r == 0 && json) {
                json_t *j = json_pack("{s:O}", "held", o.list);

                r = j ? cli_print_json(j) : -ENOMEM;
                json_decref(j);
        } else if (r == 0 && o.n[0] + o.n[1] == 0) {
                printf("nothing held%s%s\n", all ? "" : " ", all ? "" : dir_names[dir]);
        } else if (r == 0 && !all) {
                printf("%" PRId64 " held %s ('ferry %s PATH' %s them now)\n", o.n[dir],
                       dir_names[dir], dir == RULES_UP ? "push" : "pull",
                       dir == RULES_UP ? "uploads" : "downloads");
        } else if (r == 0) {
                printf("%" PRId64 " held: %" PRId64 " up, %" PRId64
                       " down ('ferry push PATH' uploads, 'ferry pull PATH' downloads them "
                       "now)\n",
                       o.n[0] + o.n[1], o.n[0], o.n[1]);
        }
        rc = r < 0 ? cli_fail("held", r) : CLI_OK;
out:
        json_decref(o.list);
        index_close(idx);
        config_free(&cfg);
        return rc;
}
