/* Unit tests for the commands of issue 5 on the client: history, trash,
 * restore (cmd_history.c), ls --all / --conflicts (cmd_info.c) and devices
 * --history / remove (cmd_devices.c). They run in-process against a canned
 * HTTP responder in a thread on 127.0.0.1, with a linked folder whose
 * config points at it, and check what the commands ask (method, query,
 * body), what they print (stdout captured) and their exit codes, including
 * the usage errors that must come before any request. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "testutil.h"

#define HEAD_MAX 16384
#define LOG_MAX 16

/* One canned answer: the first route whose method matches and whose path
 * starts with prefix answers. */
struct route {
        const char *method, *prefix;
        int status;
        const char *body;
};

struct responder {
        int lfd, port;
        pthread_t thread;
        const struct route *routes; /* ended by a NULL method */
        /* requests seen, "METHOD PATH BODY" (body may be empty) */
        char log[LOG_MAX][1024];
        int nlog;
        pthread_mutex_t lock;
};

static struct responder srv;
static char *root;

static void write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);

                if (w <= 0)
                        return;
                p += w;
                n -= (size_t)w;
        }
}

static const struct route *find_route(const char *method, const char *path)
{
        for (const struct route *r = srv.routes; r && r->method; r++)
                if (!strcmp(r->method, method) && !strncmp(path, r->prefix, strlen(r->prefix)))
                        return r;
        return NULL;
}

/* Serves requests on one connection until the client closes it. */
static void serve(int fd)
{
        char *head = malloc(HEAD_MAX + 1);
        size_t have = 0;

        while (head) {
                char method[16], path[512], *end, *cl, out[256];
                size_t hlen, blen = 0;
                const struct route *rt;
                const char *body;
                int status, n;

                while ((end = (have ? strstr(head, "\r\n\r\n") : NULL)) == NULL) {
                        ssize_t got = read(fd, head + have, HEAD_MAX - have);

                        if (got <= 0)
                                goto out;
                        have += (size_t)got;
                        head[have] = '\0';
                }
                hlen = (size_t)(end - head) + 4;
                if (sscanf(head, "%15s %511s", method, path) != 2)
                        goto out;
                cl = strcasestr(head, "\r\nContent-Length:");
                if (cl && cl < end)
                        blen = strtoul(cl + 17, NULL, 10);
                while (have < hlen + blen && have < HEAD_MAX) {
                        ssize_t got = read(fd, head + have, HEAD_MAX - have);

                        if (got <= 0)
                                goto out;
                        have += (size_t)got;
                        head[have] = '\0';
                }
                pthread_mutex_lock(&srv.lock);
                if (srv.nlog < LOG_MAX)
                        snprintf(srv.log[srv.nlog++], sizeof(srv.log[0]), "%s %s %.*s", method,
                                 path, (int)blen, head + hlen);
                pthread_mutex_unlock(&srv.lock);
                rt = find_route(method, path);
                status = rt ? rt->status : 500;
                body = rt ? rt->body : "{\"error\": \"no route\", \"code\": \"internal\"}";
                n = snprintf(out, sizeof(out),
                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n",
                             status, strlen(body));
                write_all(fd, out, (size_t)n);
                write_all(fd, body, strlen(body));
                memmove(head, head + hlen + blen, have - hlen - blen);
                have -= hlen + blen;
                head[have] = '\0';
        }
out:
        free(head);
}

static void *responder_main(void *arg)
{
        (void)arg;
        for (;;) {
                int fd = accept(srv.lfd, NULL, NULL);

                if (fd < 0)
                        return NULL;
                serve(fd);
                close(fd);
        }
}

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static int setup(void **state)
{
        struct sockaddr_in a = {0};
        socklen_t alen = sizeof(a);
        char p[4200], cfg[1024];

        (void)state;
        memset(&srv, 0, sizeof(srv));
        pthread_mutex_init(&srv.lock, NULL);
        srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (srv.lfd < 0 || bind(srv.lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(srv.lfd, 8) < 0 || getsockname(srv.lfd, (struct sockaddr *)&a, &alen) < 0)
                return -1;
        srv.port = ntohs(a.sin_port);
        if (pthread_create(&srv.thread, NULL, responder_main, NULL) != 0)
                return -1;
        root = testutil_mkdtemp_alloc("cmdhist");
        if (!root)
                return -1;
        snprintf(p, sizeof(p), "%s/.ferry", root);
        mkdir(p, 0700);
        snprintf(p, sizeof(p), "%s/.ferry/config.json", root);
        snprintf(cfg, sizeof(cfg),
                 "{\"server\": \"http://127.0.0.1:%d\", \"user\": \"alice\", \"device_id\": "
                 "\"0123456789abcdef0123456789abcdef\", \"device_name\": \"here\", \"token\": "
                 "\"%064d\"}",
                 srv.port, 7);
        write_file(p, cfg);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        shutdown(srv.lfd, SHUT_RDWR);
        close(srv.lfd);
        pthread_join(srv.thread, NULL);
        pthread_mutex_destroy(&srv.lock);
        testutil_rm_rf(root);
        free(root);
        return 0;
}

/* What a command printed on stdout and stderr. */
struct run {
        int rc;
        char out[16384], err[4096];
};

static void slurp(FILE *f, char *buf, size_t len)
{
        size_t n;

        rewind(f);
        n = fread(buf, 1, len - 1, f);
        buf[n] = '\0';
        fclose(f);
}

/* Runs cmd with argv (NULL-terminated, argv[0] the command name) on the
 * linked folder, routes answering, stdout and stderr captured. */
static void run(struct run *res, int (*cmd)(const struct cli *, int, char **),
                const struct route *routes, char **argv)
{
        struct cli g = {.dir = root};
        FILE *out = tmpfile(), *err = tmpfile();
        int argc = 0, save_out, save_err;

        assert_non_null(out);
        assert_non_null(err);
        while (argv[argc])
                argc++;
        pthread_mutex_lock(&srv.lock);
        srv.routes = routes;
        srv.nlog = 0;
        pthread_mutex_unlock(&srv.lock);
        fflush(stdout);
        fflush(stderr);
        save_out = dup(1);
        save_err = dup(2);
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        res->rc = cmd(&g, argc, argv);
        fflush(stdout);
        fflush(stderr);
        dup2(save_out, 1);
        dup2(save_err, 2);
        close(save_out);
        close(save_err);
        slurp(out, res->out, sizeof(res->out));
        slurp(err, res->err, sizeof(res->err));
}

static const char *logged(int i)
{
        return i < srv.nlog ? srv.log[i] : "";
}

#define HAS(hay, needle)                                                                           \
        do {                                                                                       \
                if (!strstr((hay), (needle)))                                                      \
                        fail_msg("want \"%s\" in:\n%s", (needle), (hay));                          \
        } while (0)

static const char files_json[] =
    "{\"seq\": 9, \"files\": ["
    "{\"path\": \"a.txt\", \"kind\": \"file\", \"size\": 5, \"mtime_ns\": 1000000000000000000, "
    "\"mode\": 420, \"hash\": \"ab\", \"seq\": 3, \"deleted\": false, \"time\": 5},"
    "{\"path\": \"doc (conflict from B 2026-11-21 140205).txt\", \"kind\": \"file\", "
    "\"size\": 7, \"seq\": 8, \"deleted\": false},"
    "{\"path\": \"old (conflict from B 2026-11-21 140205).txt\", \"kind\": \"file\", "
    "\"size\": 0, \"seq\": 9, \"deleted\": true},"
    "{\"path\": \"sub\", \"kind\": \"dir\", \"seq\": 4, \"deleted\": false}]}";

static const char transfers_json[] =
    "{\"devices\": [], \"downloads\": [], \"batches\": ["
    "{\"id\": 2, \"device\": \"d1\", \"device_name\": \"laptop\", \"records\": ["
    "{\"id\": 10, \"path\": \"sub/big.iso\", \"kind\": \"file\", \"size\": 1000, "
    "\"status\": \"uploading\", \"bytes_done\": 420, \"reason\": null, \"seq\": 0},"
    "{\"id\": 11, \"path\": \"b.txt\", \"kind\": \"file\", \"size\": 50, "
    "\"status\": \"failed\", \"bytes_done\": 0, \"reason\": \"connection lost\", \"seq\": 0},"
    "{\"id\": 12, \"path\": \"a.txt\", \"kind\": \"file\", \"size\": 6, "
    "\"status\": \"pending\", \"bytes_done\": 0, \"reason\": null, \"seq\": 0},"
    "{\"id\": 13, \"path\": \"done.txt\", \"kind\": \"file\", \"size\": 6, "
    "\"status\": \"complete\", \"bytes_done\": 6, \"reason\": null, \"seq\": 7}]}]}";

static const struct route ls_routes[] = {
    {"GET", "/api/v1/files", 200, files_json},
    {"GET", "/api/v1/transfers", 200, transfers_json},
    {NULL, NULL, 0, NULL},
};

static void test_ls_all(void **state)
{
        static struct run r;
        char *text[] = {"ls", "--all", NULL};
        char *json[] = {"ls", "--all", "--json", NULL};
        char *sub[] = {"ls", "sub/", "--all", NULL};
        char *plain[] = {"ls", NULL};
        const char *a, *pend, *b;

        (void)state;
        run(&r, cmd_ls, ls_routes, text);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "GET /api/v1/files ");
        assert_string_equal(logged(1), "GET /api/v1/transfers?status=incomplete ");
        /* sorted by path, a file before the open record of the same path */
        a = strstr(r.out, "a.txt");
        pend = strstr(r.out, "pending (from laptop)");
        b = strstr(r.out, "b.txt");
        assert_true(a && pend && b && a < pend && pend < b);
        HAS(r.out, "ok\n");
        HAS(r.out, "failed: connection lost (from laptop)\n");
        HAS(r.out, "sub/big.iso");
        HAS(r.out, "uploading 42% (from laptop)\n");
        assert_null(strstr(r.out, "done.txt")); /* complete records are files already */

        run(&r, cmd_ls, ls_routes, json);
        assert_int_equal(r.rc, CLI_OK);
        {
                json_t *j = json_loads(r.out, 0, NULL), *inc, *f0;

                assert_non_null(j);
                f0 = json_array_get(json_object_get(j, "files"), 0);
                assert_string_equal(json_string_value(json_object_get(f0, "status")), "ok");
                assert_null(json_object_get(f0, "time")); /* documented fields only */
                inc = json_object_get(j, "incomplete");
                assert_int_equal(json_array_size(inc), 3);
                assert_string_equal(
                    json_string_value(json_object_get(json_array_get(inc, 0), "path")), "a.txt");
                assert_string_equal(
                    json_string_value(json_object_get(json_array_get(inc, 2), "device_name")),
                    "laptop");
                assert_int_equal(
                    json_integer_value(json_object_get(json_array_get(inc, 2), "bytes_done")), 420);
                assert_int_equal(
                    json_integer_value(json_object_get(json_array_get(inc, 2), "batch")), 2);
                json_decref(j);
        }

        /* a PATH keeps the records under it only */
        run(&r, cmd_ls, ls_routes, sub);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "GET /api/v1/files?prefix=sub ");
        HAS(r.out, "sub/big.iso");
        assert_null(strstr(r.out, "b.txt"));

        /* without --all: no transfers asked, no status column */
        run(&r, cmd_ls, ls_routes, plain);
        assert_int_equal(r.rc, CLI_OK);
        assert_int_equal(srv.nlog, 1);
        assert_null(strstr(r.out, " ok\n"));
}

static void test_ls_conflicts(void **state)
{
        static struct run r;
        char *text[] = {"ls", "--conflicts", NULL};
        char *json[] = {"ls", "--conflicts", "--json", NULL};

        (void)state;
        run(&r, cmd_ls, ls_routes, text);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(r.out, "doc (conflict from B 2026-11-21 140205).txt  (copy of doc.txt "
                                   "from B, 2026-11-21 14:02:05)\n");
        run(&r, cmd_ls, ls_routes, json);
        assert_int_equal(r.rc, CLI_OK);
        {
                json_t *j = json_loads(r.out, 0, NULL), *c;

                assert_non_null(j);
                assert_int_equal(json_array_size(json_object_get(j, "conflicts")), 1);
                c = json_array_get(json_object_get(j, "conflicts"), 0);
                assert_string_equal(json_string_value(json_object_get(c, "original")), "doc.txt");
                assert_string_equal(json_string_value(json_object_get(c, "device")), "B");
                assert_int_equal(json_integer_value(json_object_get(c, "size")), 7);
                json_decref(j);
        }
}

static const char history_json[] =
    "{\"path\": \"d/x y.txt\", \"current\": 12, \"versions\": ["
    "{\"seq\": 12, \"time\": 1795269725, \"kind\": \"file\", \"size\": 30, \"deleted\": false, "
    "\"device\": \"aaaaaaaaaaaaaaaa\", \"device_name\": \"laptop\", \"hash\": \"h\", "
    "\"chunks\": []},"
    "{\"seq\": 11, \"time\": 1795269700, \"kind\": \"file\", \"size\": 0, \"deleted\": true, "
    "\"device\": \"bbbbbbbbbbbbbbbbb\", \"device_name\": \"\"},"
    "{\"seq\": 5, \"time\": 1795269600, \"kind\": \"file\", \"size\": 20, \"deleted\": false, "
    "\"device\": \"aaaaaaaaaaaaaaaa\", \"device_name\": \"laptop\"}]}";

static void test_history(void **state)
{
        static const struct route ok[] = {
            {"GET", "/api/v1/history", 200, history_json},
            {NULL, NULL, 0, NULL},
        };
        static const struct route gone[] = {
            {"GET", "/api/v1/history", 404, "{\"error\": \"no history\", \"code\": \"not_found\"}"},
            {NULL, NULL, 0, NULL},
        };
        static struct run r;
        char *text[] = {"history", "d/x y.txt", NULL};
        char *json[] = {"history", "--json", "--limit", "3", "d/x y.txt", NULL};

        (void)state;
        run(&r, cmd_history, ok, text);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "GET /api/v1/history?path=d%2Fx%20y.txt&limit=100 ");
        HAS(r.out, "history of d/x y.txt (current: version 12)\n");
        HAS(r.out, "*       12  ");
        HAS(r.out, "laptop");
        HAS(r.out, "bbbbbbbb...");
        HAS(r.out, "deleted\n");
        HAS(r.out, "           20\n");

        run(&r, cmd_history, ok, json);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "GET /api/v1/history?path=d%2Fx%20y.txt&limit=3 ");
        {
                json_t *j = json_loads(r.out, 0, NULL), *v;

                assert_non_null(j);
                assert_int_equal(json_integer_value(json_object_get(j, "current")), 12);
                assert_int_equal(json_array_size(json_object_get(j, "versions")), 3);
                v = json_array_get(json_object_get(j, "versions"), 1);
                assert_true(json_is_true(json_object_get(v, "deleted")));
                assert_int_equal(json_integer_value(json_object_get(v, "time")), 1795269700);
                v = json_array_get(json_object_get(j, "versions"), 0);
                assert_null(json_object_get(v, "chunks"));
                assert_string_equal(json_string_value(json_object_get(v, "device_name")), "laptop");
                json_decref(j);
        }

        run(&r, cmd_history, gone, text);
        assert_int_equal(r.rc, CLI_FAIL);
        HAS(r.err, "ferry: history: the server keeps no version of d/x y.txt");
}

static void test_trash(void **state)
{
        static const struct route ok[] = {
            {"GET", "/api/v1/trash", 200,
             "{\"files\": [{\"path\": \"gone.txt\", \"deleted_seq\": 14, \"deleted_time\": "
             "1795269725, "
             "\"device\": \"dd\", \"device_name\": \"laptop\", \"last\": {\"seq\": 13, \"kind\": "
             "\"file\", \"size\": 77, \"deleted\": false}}]}"},
            {NULL, NULL, 0, NULL},
        };
        static const struct route empty[] = {
            {"GET", "/api/v1/trash", 200, "{\"files\": []}"},
            {NULL, NULL, 0, NULL},
        };
        static struct run r;
        char *text[] = {"trash", "docs", NULL};
        char *json[] = {"trash", "--json", NULL};

        (void)state;
        run(&r, cmd_trash, ok, text);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "GET /api/v1/trash?prefix=docs ");
        HAS(r.out, "laptop");
        HAS(r.out, "77       13  gone.txt\n");
        run(&r, cmd_trash, ok, json);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "GET /api/v1/trash ");
        {
                json_t *j = json_loads(r.out, 0, NULL), *f;

                assert_non_null(j);
                f = json_array_get(json_object_get(j, "files"), 0);
                assert_int_equal(json_integer_value(json_object_get(f, "deleted_seq")), 14);
                assert_int_equal(
                    json_integer_value(json_object_get(json_object_get(f, "last"), "size")), 77);
                json_decref(j);
        }
        run(&r, cmd_trash, empty, text);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(r.out, "the trash is empty\n");
}

static void test_restore(void **state)
{
        static const struct route ok[] = {
            {"POST", "/api/v1/restore", 200,
             "{\"entry\": {\"path\": \"a.txt\", \"seq\": 20}, \"restored_from\": 5}"},
            {NULL, NULL, 0, NULL},
        };
        static const struct route same[] = {
            {"POST", "/api/v1/restore", 200,
             "{\"entry\": {\"path\": \"a.txt\", \"seq\": 19}, \"unchanged\": true}"},
            {NULL, NULL, 0, NULL},
        };
        static const struct route pruned[] = {
            {"POST", "/api/v1/restore", 404,
             "{\"error\": \"no such version\", \"code\": "
             "\"not_found\"}"},
            {NULL, NULL, 0, NULL},
        };
        static const struct route taken[] = {
            {"POST", "/api/v1/restore", 409, "{\"error\": \"exists\", \"code\": \"conflict\"}"},
            {NULL, NULL, 0, NULL},
        };
        static struct run r;
        char *version[] = {"restore", "a.txt", "--version", "5", NULL};
        char *undelete[] = {"restore", "a.txt/", NULL};
        char *to[] = {"restore", "a.txt", "--version", "5", "--to", "b.txt", NULL};

        (void)state;
        /* the server restores; the sync round after it fails here (no
         * /changes): exit 1, saying the restore itself happened */
        run(&r, cmd_restore, ok, version);
        assert_int_equal(r.rc, CLI_FAIL);
        assert_string_equal(logged(0), "POST /api/v1/restore {\"path\":\"a.txt\",\"seq\":5}");
        HAS(r.out, "restored a.txt from version 5 (now version 20)\n");
        HAS(r.err, "restored on the server, but the sync round failed");

        run(&r, cmd_restore, same, undelete);
        assert_string_equal(logged(0), "POST /api/v1/restore {\"path\":\"a.txt\"}");
        HAS(r.out, "a.txt already has that content (version 19)");

        run(&r, cmd_restore, pruned, version);
        assert_int_equal(r.rc, CLI_FAIL);
        assert_int_equal(srv.nlog, 1); /* no sync round after a refusal */
        HAS(r.err, "ferry: restore: version 5 of a.txt is not kept on the server");
        run(&r, cmd_restore, pruned, undelete);
        assert_int_equal(r.rc, CLI_FAIL);
        HAS(r.err, "no earlier version of a.txt");

        run(&r, cmd_restore, taken, to);
        assert_int_equal(r.rc, CLI_FAIL);
        assert_string_equal(logged(0), "POST /api/v1/restore {\"path\":\"a.txt\",\"seq\":5,"
                                       "\"to\":\"b.txt\"}");
        HAS(r.err, "b.txt already exists on the server");
}

static void test_devices(void **state)
{
        static const struct route routes[] = {
            {"GET", "/api/v1/devices/history", 200,
             "{\"events\": [{\"device\": \"d1\", \"name\": \"old\", \"event\": \"added\", "
             "\"time\": 1795269600, \"applied_seq\": 0, \"files\": 0},"
             "{\"device\": \"d1\", \"name\": \"old\", \"event\": \"removed\", \"time\": "
             "1795269725, \"applied_seq\": 40, \"files\": 2, \"file_list\": ["
             "{\"path\": \"a.txt\", \"size\": 5, \"seq\": 3}, {\"path\": \"b/c\", \"size\": 9, "
             "\"seq\": 30}]}]}"},
            {"POST", "/api/v1/devices/remove", 200,
             "{\"removed\": {\"id\": \"d1\", \"name\": \"old\", \"token\": \"x\"}}"},
            {NULL, NULL, 0, NULL},
        };
        static const struct route self[] = {
            {"POST", "/api/v1/devices/remove", 409,
             "{\"error\": \"self\", \"code\": \"conflict\"}"},
            {NULL, NULL, 0, NULL},
        };
        static struct run r;
        char *hist[] = {"devices", "--history", "--files", "old", NULL};
        char *hjson[] = {"devices", "--history", "--json", NULL};
        char *rm[] = {"devices", "remove", "old", NULL};
        char *rmjson[] = {"devices", "remove", "--json", "old", NULL};

        (void)state;
        run(&r, cmd_devices, routes, hist);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "GET /api/v1/devices/history?device=old&files=1 ");
        HAS(r.out, "added    old");
        HAS(r.out, "removed  old");
        HAS(r.out, "held 2 files (as of seq 40)\n");
        HAS(r.out, "           9        30  b/c\n");

        run(&r, cmd_devices, routes, hjson);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "GET /api/v1/devices/history ");
        {
                json_t *j = json_loads(r.out, 0, NULL), *e;

                assert_non_null(j);
                e = json_array_get(json_object_get(j, "events"), 1);
                assert_int_equal(json_integer_value(json_object_get(e, "files")), 2);
                assert_null(json_object_get(e, "file_list")); /* only with --files */
                json_decref(j);
        }

        run(&r, cmd_devices, routes, rm);
        assert_int_equal(r.rc, CLI_OK);
        assert_string_equal(logged(0), "POST /api/v1/devices/remove {\"device\":\"old\"}");
        HAS(r.out, "removed device old (d1)");
        run(&r, cmd_devices, routes, rmjson);
        assert_int_equal(r.rc, CLI_OK);
        assert_null(strstr(r.out, "token")); /* documented fields only */
        run(&r, cmd_devices, self, rm);
        assert_int_equal(r.rc, CLI_FAIL);
        HAS(r.err, "old is this device");
}

static void test_usage_errors(void **state)
{
        static char *const cases[][8] = {
            {"history", NULL},
            {"history", "a", "b", NULL},
            {"history", "/abs", NULL},
            {"history", "a", "--limit", "0", NULL},
            {"history", "a", "--limit", "10001", NULL},
            {"history", "a", "--limit", NULL},
            {"restore", NULL},
            {"restore", "a", "--version", "0", NULL},
            {"restore", "a", "--version", "x5", NULL},
            {"restore", "a", "--version", "-3", NULL},
            {"restore", "a", "--to", "../b", NULL},
            {"restore", "a", "--to", "a", NULL},
            {"restore", "a", "b", NULL},
            {"restore", "a", "--bogus", NULL},
            {"trash", "a", "b", NULL},
            {"trash", ".ferry/x", NULL},
            {"ls", "--conflicts", "--all", NULL},
            {"ls", "--conflicts", "--deleted", NULL},
            {"devices", "--files", NULL},
            {"devices", "remove", NULL},
            {"devices", "remove", "a", "b", NULL},
            {"devices", "--history", "a", "b", NULL},
            {"devices", "rename", "x", NULL},
        };
        static struct run r;

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int (*cmd)(const struct cli *, int, char **) =
                    !strcmp(cases[i][0], "history")   ? cmd_history
                    : !strcmp(cases[i][0], "restore") ? cmd_restore
                    : !strcmp(cases[i][0], "trash")   ? cmd_trash
                    : !strcmp(cases[i][0], "ls")      ? cmd_ls
                                                      : cmd_devices;

                char *argv[8];

                memcpy(argv, cases[i], sizeof(argv)); /* getopt permutes it */
                run(&r, cmd, ls_routes, argv);
                if (r.rc != CLI_USAGE || srv.nlog != 0 || !strstr(r.err, "ferry: "))
                        fail_msg("case %zu (%s %s): rc %d, %d requests, stderr %s", i, cases[i][0],
                                 cases[i][1] ? cases[i][1] : "", r.rc, srv.nlog, r.err);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ls_all),       cmocka_unit_test(test_ls_conflicts),
            cmocka_unit_test(test_history),      cmocka_unit_test(test_trash),
            cmocka_unit_test(test_restore),      cmocka_unit_test(test_devices),
            cmocka_unit_test(test_usage_errors),
        };

        setenv("TZ", "UTC", 1);
        return cmocka_run_group_tests(tests, setup, teardown);
}
