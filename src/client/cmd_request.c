/* cmd_request: `ferry request-upload DEVICE [PATH...] [--all] [--wait]
 * [--via auto|lan|relay] [--timeout S] [--json]`: asks another device of
 * the account to upload now (docs/cli.md "request-upload").
 *
 * The request is always recorded on the server (POST /api/v1/requests), so
 * that every device sees its status and result the same way; only its
 * delivery differs. When this device and the target are on the same LAN
 * (peers.h) and the target's listener answers the handshake within
 * REQUEST_LAN_CONNECT_MS, the request goes to it directly (lanclient.h);
 * otherwise the server relays it through the target's event stream, or
 * keeps it until the target comes back. The connection is made before the
 * record, so that the record says truthfully how the request travels.
 *
 * The target adds overrides of its upload rules for what is asked (the
 * same as `ferry push` there) and runs a sync round; --wait follows the
 * record until it is done, failed or expired.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "err.h"
#include "lanclient.h"
#include "path.h"
#include "peers.h"
#include "remote.h"

enum { OPT_ALL = 1000, OPT_WAIT, OPT_VIA, OPT_TIMEOUT, OPT_JSON, OPT_HELP };

/* The LAN path is tried for this long (connect + handshake) before the
 * relay is used. */
#define REQUEST_LAN_CONNECT_MS 2000
/* --wait polls the record this often. */
#define REQUEST_POLL_MS 300
#define REQUEST_TIMEOUT_DEFAULT 600

enum via { VIA_AUTO, VIA_LAN, VIA_RELAY };

struct req_opts {
        const char *device;
        json_t *paths; /* ["path", ...] */
        int all, wait, json;
        enum via via;
        long timeout_s;
};

static const char *const request_keys[] = {
    "id",     "requester", "requester_name", "target",  "target_name", "paths",   "all", "via",
    "status", "files",     "reason",         "created", "updated",     "expires", NULL};

static json_t *pick(const json_t *src)
{
        json_t *o = json_object();

        for (size_t k = 0; o && request_keys[k]; k++) {
                json_t *v = json_object_get(src, request_keys[k]);

                if (json_object_set_new(o, request_keys[k], v ? json_incref(v) : json_null()) < 0) {
                        json_decref(o);
                        o = NULL;
                }
        }
        return o;
}

static void usage(void)
{
        puts("usage: ferry [-C DIR] request-upload DEVICE PATH... [--wait] [--via auto|lan|relay]\n"
             "       ferry [-C DIR] request-upload DEVICE --all [--wait] [--via auto|lan|relay]\n"
             "                                     [--timeout S] [--json]\n"
             "\n"
             "Asks DEVICE (another device of this account, a name or an id) to upload\n"
             "now: the files or folders PATH (Ferry paths), or with --all everything\n"
             "its folder holds that the server does not, held-up files included. This\n"
             "overrides DEVICE's upload rules for the files of the request (as 'ferry\n"
             "push' there would). DEVICE runs it from its 'ferry watch'.\n"
             "The request is recorded on the server. When both devices are on the same\n"
             "LAN and DEVICE's LAN listener answers, it goes there directly; otherwise\n"
             "the server relays it (and keeps it, until it expires, while DEVICE is\n"
             "offline). The output says which way it went.\n"
             "--via lan|relay forces one way (lan fails when DEVICE cannot be reached on\n"
             "the LAN); auto (the default) prefers the LAN.\n"
             "--wait shows the request's progress until it is done, failed or expired,\n"
             "for at most --timeout S seconds (default 600).\n"
             "--json prints {\"request\": ..., \"delivered\": \"lan\"|\"relay\", ...}.\n"
             "Exit 0 when the request was delivered (with --wait: done), 1 when it\n"
             "failed, expired, timed out or could not be delivered, 2 on usage errors.");
}

/* The options into o; CLI_OK, or the exit code after reporting. */
static int parse(int argc, char **argv, struct req_opts *o)
{
        static const struct option opts[] = {
            {"all", no_argument, NULL, OPT_ALL},
            {"wait", no_argument, NULL, OPT_WAIT},
            {"via", required_argument, NULL, OPT_VIA},
            {"timeout", required_argument, NULL, OPT_TIMEOUT},
            {"json", no_argument, NULL, OPT_JSON},
            {"help", no_argument, NULL, OPT_HELP},
            {NULL, 0, NULL, 0},
        };
        const char *cmd = "request-upload";
        char *end;
        int c;

        optind = 0;
        opterr = 0;
        o->timeout_s = REQUEST_TIMEOUT_DEFAULT;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case OPT_ALL:
                        o->all = 1;
                        break;
                case OPT_WAIT:
                        o->wait = 1;
                        break;
                case OPT_JSON:
                        o->json = 1;
                        break;
                case OPT_VIA:
                        if (!strcmp(optarg, "auto"))
                                o->via = VIA_AUTO;
                        else if (!strcmp(optarg, "lan"))
                                o->via = VIA_LAN;
                        else if (!strcmp(optarg, "relay"))
                                o->via = VIA_RELAY;
                        else
                                return cli_usage(cmd, "--via takes auto, lan or relay, not '%s'",
                                                 optarg);
                        break;
                case OPT_TIMEOUT:
                        errno = 0;
                        o->timeout_s = strtol(optarg, &end, 10);
                        if (errno || end == optarg || *end || o->timeout_s < 1 ||
                            o->timeout_s > 7 * 86400)
                                return cli_usage(cmd, "--timeout takes seconds (1..604800)");
                        break;
                case 'h':
                case OPT_HELP:
                        usage();
                        return -1;
                default:
                        return cli_bad_option(cmd, argc, argv, c);
                }
        }
        if (optind >= argc)
                return cli_usage(cmd, "DEVICE is missing");
        o->device = argv[optind++];
        if (!*o->device)
                return cli_usage(cmd, "DEVICE is empty");
        if (o->all && optind < argc)
                return cli_usage(cmd, "--all asks for everything: give no PATH with it");
        if (!o->all && optind >= argc)
                return cli_usage(cmd, "give the PATHs to upload, or --all");
        o->paths = json_array();
        if (!o->paths)
                return cli_fail(cmd, -ENOMEM);
        for (; optind < argc; optind++) {
                char *p = strdup(argv[optind]);
                size_t n = p ? strlen(p) : 0;

                if (!p)
                        return cli_fail(cmd, -ENOMEM);
                while (n > 1 && p[n - 1] == '/')
                        p[--n] = '\0';
                if (path_validate(p) < 0) {
                        free(p);
                        return cli_usage(cmd, "invalid PATH '%s': %s", argv[optind],
                                         err_msg(-EINVAL));
                }
                if (json_array_append_new(o->paths, json_string(p)) < 0) {
                        free(p);
                        return cli_fail(cmd, -ENOMEM);
                }
                free(p);
        }
        return CLI_OK;
}

/* Whether this device and target are on the same LAN (peers_me). */
static int same_lan(const struct config *cfg, const struct peers *list, const struct peer *target)
{
        struct peer me;

        if (peers_me(list, cfg->device_id, cfg->server, &me) < 0) {
                err_clear();
                return 0;
        }
        return peers_on_same_lan(&me, target);
}

/* Connects to target's listener and completes the handshake (under the
 * account's LAN key). */
static int lan_connect(const struct config *cfg, struct remote *rem, const struct peer *target,
                       struct lanclient **out)
{
        uint8_t key[LANPROTO_KEY_LEN];
        int64_t version;
        int r;

        r = peers_fetch_key(rem, key, &version);
        if (r == 0)
                r = lanclient_connect(target->lan_addr, (uint16_t)target->lan_port, cfg->device_id,
                                      key, target->id, REQUEST_LAN_CONNECT_MS, out);
        memset(key, 0, sizeof(key));
        return r;
}

/* POST /api/v1/requests; *req gets R. */
static int create(struct remote *rem, const struct req_opts *o, const struct peer *target,
                  const char *via, json_t **req)
{
        json_t *body, *resp = NULL;
        int r;

        body = json_pack("{s:s, s:O, s:b, s:s}", "target", target->id, "paths", o->paths, "all",
                         o->all, "via", via);
        r = body ? remote_post_json(rem, "/api/v1/requests", body, &resp) : -ENOMEM;
        if (r == 0) {
                *req = json_incref(json_object_get(resp, "request"));
                if (!json_is_integer(json_object_get(*req, "id")))
                        r = err_set(-EPROTO, "the server's answer has no request id");
        }
        json_decref(body);
        json_decref(resp);
        return r;
}

static int64_t now_ms(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One line per status: accepted, running, done: N files, failed: reason. */
static void tell_status(const json_t *req, const char *name)
{
        const char *st = json_string_value(json_object_get(req, "status")) ?: "?";
        const char *why = json_string_value(json_object_get(req, "reason"));

        if (!strcmp(st, "done"))
                printf("%s: done: %lld files\n", name,
                       (long long)json_integer_value(json_object_get(req, "files")));
        else if (!strcmp(st, "failed"))
                printf("%s: failed: %s\n", name, why ? why : "(no reason given)");
        else if (!strcmp(st, "expired"))
                printf("%s: expired: %s did not run it in time\n", name, name);
        else
                printf("%s: %s\n", name, st);
        fflush(stdout);
}

static int finished(const char *st)
{
        return !strcmp(st, "done") || !strcmp(st, "failed") || !strcmp(st, "expired");
}

/* Follows the record until it finishes or the time is up; *req is
 * replaced by the last state read. */
static int wait_for(struct remote *rem, const struct req_opts *o, const char *name, json_t **req)
{
        int64_t deadline = now_ms() + o->timeout_s * 1000;
        struct timespec pause = {0, REQUEST_POLL_MS * 1000000L};
        char q[64], last[32] = "";
        int r = 0;

        snprintf(q, sizeof(q), "/api/v1/requests?id=%lld",
                 (long long)json_integer_value(json_object_get(*req, "id")));
        for (;;) {
                json_t *resp = NULL, *cur;
                const char *st;

                r = remote_get_json(rem, q, &resp);
                if (r < 0)
                        return r;
                cur = json_array_get(json_object_get(resp, "requests"), 0);
                if (cur) {
                        json_decref(*req);
                        *req = json_incref(cur);
                }
                json_decref(resp);
                st = json_string_value(json_object_get(*req, "status")) ?: "?";
                if (strcmp(st, last) != 0) {
                        snprintf(last, sizeof(last), "%s", st);
                        if (!o->json)
                                tell_status(*req, name);
                }
                if (finished(st))
                        return 0;
                if (now_ms() >= deadline)
                        return err_set(-ETIMEDOUT,
                                       "still %s after %ld s; 'ferry request-upload' can be run "
                                       "with --wait again, or see 'ferry transfers'",
                                       st, o->timeout_s);
                nanosleep(&pause, NULL);
        }
}

/* Sends the request over the LAN connection: the target answers accepted. */
static int lan_send(struct lanclient *lc, const struct req_opts *o, const json_t *req)
{
        size_t n = json_array_size(o->paths);
        const char **paths = calloc(n + 1, sizeof(*paths));
        int r;

        if (!paths)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                paths[i] = json_string_value(json_array_get(o->paths, i));
        r = lanclient_upload(lc, json_integer_value(json_object_get(req, "id")), paths, n, o->all);
        free(paths);
        return r;
}

static int run(const struct config *cfg, const struct req_opts *o, int *rc)
{
        struct remote *rem = NULL;
        struct lanclient *lc = NULL;
        struct peers list = {0};
        const struct peer *target;
        json_t *req = NULL, *out = NULL;
        const char *delivered = "relay";
        char lan_error[256] = "";
        int lan = 0, tried = 0, r;

        r = remote_new(cfg->server, cfg->token, &rem);
        if (r == 0)
                r = peers_fetch(rem, &list);
        if (r < 0)
                goto out;
        target = peers_find(&list, o->device);
        if (!target) {
                r = err_set(-ENOENT, "no device %s in this account ('ferry devices' lists them)",
                            o->device);
                goto out;
        }
        if (target->this || !strcmp(target->id, cfg->device_id)) {
                r = err_set(-EEXIST, "%s is this device: 'ferry push' uploads from here",
                            o->device);
                goto out;
        }
        if (o->via != VIA_RELAY) {
                if (!same_lan(cfg, &list, target)) {
                        snprintf(lan_error, sizeof(lan_error), "%s is not on this LAN%s",
                                 target->name, target->has_lan ? "" : " (it runs no LAN listener)");
                } else {
                        tried = 1;
                        r = lan_connect(cfg, rem, target, &lc);
                        lan = r == 0;
                        if (r < 0)
                                snprintf(lan_error, sizeof(lan_error),
                                         "%s did not answer on the LAN: %s", target->name,
                                         err_msg(r));
                        err_clear();
                }
                if (!lan && o->via == VIA_LAN) {
                        r = err_set(-EHOSTUNREACH, "%s", lan_error);
                        goto out;
                }
        }
        r = create(rem, o, target, lan ? "lan" : "relay", &req);
        if (r == -ENOENT)
                r = err_set(r, "no device %s in this account ('ferry devices' lists them)",
                            o->device);
        if (r < 0)
                goto out;
        if (lan) {
                r = lan_send(lc, o, req);
                if (r < 0) {
                        /* the record says lan: nobody else delivers it, so
                         * a second one goes through the server */
                        snprintf(lan_error, sizeof(lan_error),
                                 "%s took the connection but not the request: %s", target->name,
                                 err_msg(r));
                        err_clear();
                        json_decref(req);
                        req = NULL;
                        lan = 0;
                        if (o->via == VIA_LAN) {
                                r = err_set(-EHOSTUNREACH, "%s", lan_error);
                                goto out;
                        }
                        r = create(rem, o, target, "relay", &req);
                        if (r < 0)
                                goto out;
                } else {
                        delivered = "lan";
                }
        }
        if (!o->json) {
                if (lan)
                        printf("request %lld sent to %s directly over the LAN (%s:%d)\n",
                               (long long)json_integer_value(json_object_get(req, "id")),
                               target->name, target->lan_addr, target->lan_port);
                else
                        printf("request %lld sent to %s through the server (relay)\n",
                               (long long)json_integer_value(json_object_get(req, "id")),
                               target->name);
                /* why not directly, when it was worth trying */
                if (!lan && tried)
                        fprintf(stderr, "ferry: request-upload: %s; relayed instead\n", lan_error);
                if (!lan && !target->online)
                        printf("%s is offline: it runs the request when it comes back (until "
                               "the request expires)\n",
                               target->name);
                printf("(overrides %s's upload rules for this request)\n", target->name);
                fflush(stdout);
        }
        if (o->wait)
                r = wait_for(rem, o, target->name, &req);
        if (r == 0) {
                const char *st = json_string_value(json_object_get(req, "status")) ?: "?";

                if (!strcmp(st, "failed") || !strcmp(st, "expired"))
                        *rc = CLI_FAIL;
        }
        if (o->json && req) {
                out =
                    json_pack("{s:o, s:s, s:s?, s:b}", "request", pick(req), "delivered", delivered,
                              "lan_error", lan_error[0] ? lan_error : NULL, "overrides_rules", 1);
                if (!out || cli_print_json(out) < 0)
                        r = r < 0 ? r : -ENOMEM;
        }
out:
        lanclient_close(lc);
        json_decref(req);
        json_decref(out);
        peers_free(&list);
        remote_free(rem);
        return r;
}

int cmd_request_upload(const struct cli *g, int argc, char **argv)
{
        struct req_opts o = {0};
        struct config cfg = {0};
        int rc, r;

        rc = parse(argc, argv, &o);
        if (rc != CLI_OK) {
                json_decref(o.paths);
                return rc < 0 ? CLI_OK : rc;
        }
        r = cli_load_config(g, &cfg);
        if (r < 0) {
                json_decref(o.paths);
                return cli_fail("request-upload", r);
        }
        r = run(&cfg, &o, &rc);
        if (r < 0)
                rc = cli_fail("request-upload", r);
        json_decref(o.paths);
        config_free(&cfg);
        return rc;
}
