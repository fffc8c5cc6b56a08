/* cmd_account: `ferry register` (create an account) and `ferry init` (log
 * this device in and link a folder). Both need the account password, which
 * comes from password.c's sources, never from an argument. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "fsutil.h"
#include "index.h"
#include "password.h"
#include "path.h"
#include "remote.h"

enum { OPT_SERVER = 1000, OPT_USER, OPT_EMAIL, OPT_DEVICE, OPT_PWSTDIN, OPT_HELP };

static const struct option account_opts[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"user", required_argument, NULL, OPT_USER},
    {"email", required_argument, NULL, OPT_EMAIL},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"password-stdin", no_argument, NULL, OPT_PWSTDIN},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct account_args {
        const char *server, *user, *email, *device;
        int pwstdin, help;
};

/* Parses the options both commands share; which are allowed is checked by
 * the caller. Returns CLI_OK or CLI_USAGE (reported). */
static int parse(const char *cmd, int argc, char **argv, struct account_args *a)
{
        int c;

        memset(a, 0, sizeof(*a));
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", account_opts, NULL)) != -1) {
                switch (c) {
                case OPT_SERVER:
                        a->server = optarg;
                        break;
                case OPT_USER:
                        a->user = optarg;
                        break;
                case OPT_EMAIL:
                        a->email = optarg;
                        break;
                case OPT_DEVICE:
                        a->device = optarg;
                        break;
                case OPT_PWSTDIN:
                        a->pwstdin = 1;
                        break;
                case 'h':
                case OPT_HELP:
                        a->help = 1;
                        break;
                default:
                        return cli_bad_option(cmd, argc, argv, c);
                }
        }
        if (optind < argc)
                return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
        return CLI_OK;
}

/* The server URL without trailing '/'s, malloc'd; NULL when it is not an
 * http(s) URL. */
static char *clean_url(const char *url)
{
        size_t n = strlen(url);

        if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                return NULL;
        while (n > 0 && url[n - 1] == '/')
                n--;
        return strndup(url, n);
}

/* Gets the password, or reports why not: CLI_OK, CLI_USAGE or CLI_FAIL. */
static int get_password(const char *cmd, int pwstdin, char **pw)
{
        int r;

        if (password_pick(getenv("FERRY_PASSWORD"), pwstdin, isatty(STDIN_FILENO)) ==
            PASSWORD_FROM_NOWHERE)
                return cli_usage(cmd, "no password: set FERRY_PASSWORD, pass --password-stdin, "
                                      "or run on a terminal");
        r = password_get(pwstdin, pw);
        if (r < 0)
                return cli_fail(cmd, r);
        return CLI_OK;
}

static void free_password(char *pw)
{
        if (pw) {
                explicit_bzero(pw, strlen(pw));
                free(pw);
        }
}

int cmd_register(const struct cli *g, int argc, char **argv)
{
        struct account_args a;
        struct remote *rem = NULL;
        json_t *req = NULL, *resp = NULL;
        char *url = NULL, *pw = NULL;
        int r, rc;

        (void)g;
        rc = parse("register", argc, argv, &a);
        if (rc != CLI_OK)
                return rc;
        if (a.help) {
                puts("usage: ferry register --server URL --user NAME --email EMAIL "
                     "[--password-stdin]\n"
                     "\n"
                     "Creates an account on the server (when it runs with --registration open).\n"
                     "The password comes from FERRY_PASSWORD, else one line of stdin with\n"
                     "--password-stdin, else a prompt on a terminal.");
                return CLI_OK;
        }
        if (a.device)
                return cli_usage("register", "--device belongs to 'ferry init'");
        if (!a.server || !a.user || !a.email)
                return cli_usage("register", "--server, --user and --email are required");
        url = clean_url(a.server);
        if (!url) {
                rc = cli_usage("register", "--server must be an http:// or https:// URL");
                goto out;
        }
        rc = get_password("register", a.pwstdin, &pw);
        if (rc != CLI_OK)
                goto out;
        req = json_pack("{s:s, s:s, s:s}", "user", a.user, "email", a.email, "password", pw);
        if (!req) {
                rc = cli_fail("register", -ENOMEM);
                goto out;
        }
        r = remote_new(url, NULL, &rem);
        if (r == 0)
                r = remote_post_json(rem, "/api/v1/register", req, &resp);
        if (r < 0) {
                rc = cli_fail("register", r);
                goto out;
        }
        printf("registered %s on %s\n", a.user, url);
        rc = CLI_OK;
out:
        if (req) {
                json_object_del(req, "password");
                json_decref(req);
        }
        json_decref(resp);
        remote_free(rem);
        free_password(pw);
        free(url);
        return rc;
}

/* 1 when dir or one of its parents is already a linked folder. */
static int linked_root(const char *dir, char **root)
{
        if (config_find_root(dir, root) == 0)
                return 1;
        err_clear();
        return 0;
}

static int do_init(const struct account_args *a, const char *dir, const char *url,
                   const char *device)
{
        struct config cfg = {0};
        struct remote *rem = NULL;
        struct index *idx = NULL;
        json_t *req = NULL, *resp = NULL;
        char *pw = NULL, *root = NULL, *db = NULL;
        const char *token, *devid;
        int r;

        r = get_password("init", a->pwstdin, &pw);
        if (r != CLI_OK)
                return r;
        req = json_pack("{s:s, s:s, s:s, s:s}", "user", a->user, "password", pw, "device_name",
                        device, "platform", "linux");
        if (!req) {
                r = -ENOMEM;
                goto out;
        }
        r = remote_new(url, NULL, &rem);
        if (r == 0)
                r = remote_post_json(rem, "/api/v1/login", req, &resp);
        if (r < 0)
                goto out;
        token = json_string_value(json_object_get(resp, "token"));
        devid = json_string_value(json_object_get(resp, "device_id"));
        if (!token || !devid) {
                r = err_set(-EPROTO, "the server's login answer has no token or device_id");
                goto out;
        }
        r = fsutil_mkdirs(dir, 0);
        if (r < 0)
                goto out;
        root = realpath(dir, NULL);
        if (!root) {
                r = err_set(-errno, "cannot open %s: %s", dir, strerror(errno));
                goto out;
        }
        cfg.root = root;
        cfg.server = (char *)url;
        cfg.user = (char *)a->user;
        cfg.device_id = (char *)devid;
        cfg.device_name = (char *)device;
        cfg.token = (char *)token;
        cfg.mass_delete_count = CONFIG_DEFAULT_MASS_DELETE_COUNT;
        cfg.mass_delete_percent = CONFIG_DEFAULT_MASS_DELETE_PERCENT;
        r = config_save(&cfg);
        if (r < 0)
                goto out;
        db = config_state_path(&cfg, INDEX_FILE);
        if (!db) {
                r = -ENOMEM;
                goto out;
        }
        r = index_open(db, &idx);
        if (r < 0)
                goto out;
        index_close(idx);
        printf("linked %s to %s on %s as device %s\n", root, a->user, url, device);
out:
        if (req) {
                json_object_del(req, "password");
                json_decref(req);
        }
        json_decref(resp);
        remote_free(rem);
        free_password(pw);
        free(root);
        free(db);
        return r < 0 ? cli_fail("init", r) : CLI_OK;
}

int cmd_init(const struct cli *g, int argc, char **argv)
{
        struct account_args a;
        char host[256], *url = NULL, *root = NULL, *parent = NULL;
        const char *dir = g->dir ? g->dir : ".";
        const char *device;
        int rc;

        rc = parse("init", argc, argv, &a);
        if (rc != CLI_OK)
                return rc;
        if (a.help) {
                puts("usage: ferry [-C DIR] init --server URL --user NAME [--device NAME] "
                     "[--password-stdin]\n"
                     "\n"
                     "Logs this device in and links DIR (default: the current directory; created\n"
                     "if missing) to the account: writes DIR/.ferry/ with config.json and\n"
                     "index.db. --device defaults to the host name. The password comes from\n"
                     "FERRY_PASSWORD, else stdin with --password-stdin, else a prompt.");
                return CLI_OK;
        }
        if (a.email)
                return cli_usage("init", "--email belongs to 'ferry register'");
        if (!a.server || !a.user)
                return cli_usage("init", "--server and --user are required");
        url = clean_url(a.server);
        if (!url) {
                rc = cli_usage("init", "--server must be an http:// or https:// URL");
                goto out;
        }
        if (a.device) {
                device = a.device;
        } else {
                if (gethostname(host, sizeof(host)) < 0 || !*host)
                        snprintf(host, sizeof(host), "device");
                host[sizeof(host) - 1] = '\0';
                device = host;
        }
        if (!*device || strlen(device) > 64) {
                rc = cli_usage("init", "--device must be 1-64 characters");
                goto out;
        }
        /* A folder inside a linked folder would sync its own .ferry/ (and
         * token) through the outer one: refuse both cases. */
        if (access(dir, F_OK) == 0 && linked_root(dir, &root)) {
                char *real = realpath(dir, NULL);

                if (real && !strcmp(real, root))
                        fprintf(stderr,
                                "ferry: init: %s is already linked (remove %s/.ferry to "
                                "unlink it)\n",
                                root, root);
                else
                        fprintf(stderr, "ferry: init: %s is inside the linked folder %s\n", dir,
                                root);
                free(real);
                rc = CLI_FAIL;
                goto out;
        }
        if (access(dir, F_OK) < 0) {
                /* the nearest existing parent must not be linked either */
                parent = strdup(dir);
                if (!parent) {
                        rc = cli_fail("init", -ENOMEM);
                        goto out;
                }
                while (access(parent, F_OK) < 0 && strrchr(parent, '/'))
                        *strrchr(parent, '/') = '\0';
                if (linked_root(access(parent, F_OK) == 0 ? parent
                                : parent[0]               ? "."
                                                          : "/",
                                &root)) {
                        fprintf(stderr, "ferry: init: %s is inside the linked folder %s\n", dir,
                                root);
                        rc = CLI_FAIL;
                        goto out;
                }
        }
        rc = do_init(&a, dir, url, device);
out:
        free(url);
        free(root);
        free(parent);
        return rc;
}
