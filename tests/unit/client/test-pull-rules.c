/* Unit tests for the download rules across whole rounds and for `ferry
 * pull` and `ferry prune` (cmd_pull.c), against a scripted server
 * (fakesrv.c) that keeps a small space: its changes, its entries (GET
 * /api/v1/file), its chunks (POST /api/v1/chunks/fetch) and commits.
 *
 * Held entries advance last_seq and leave no trace in the folder; `ferry
 * pull PATH` fetches exactly the held files under PATH (and the held
 * folders above it), which then sync like any other; a change of the rules
 * lets held files down at the next round, also a watch's small round, and
 * with the rules unchanged such a round leaves the held files alone (a full
 * round looks at them: an override counts there); a held file whose
 * download failed is tried again; backup sets and ignored names never land;
 * `ferry prune` moves what the rules no longer select to the trash without
 * a delete reaching the server, and `ferry pull` brings it back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "config.h"
#include "fakesrv.h"
#include "frame.h"
#include "fsutil.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "rules.h"
#include "sync.h"
#include "testutil.h"

#define SELF "0123456789abcdef0123456789abcdef"
#define OTHER "fedcba9876543210fedcba9876543210"

struct world {
        struct fakesrv *srv;
        char *root;
        struct config cfg;
        int64_t seq;
        json_t *entries; /* every version, in seq order */
        json_t *chunks;  /* hex -> content */
        int fail_fetch;  /* answer this many chunk fetches with 500 */
};

static void answer(struct buf *out, json_t *j)
{
        char *text = json_dumps(j, JSON_COMPACT);

        buf_append_str(out, text);
        free(text);
        json_decref(j);
}

/* A new version of path on the server, made by another device: a file
 * with content (a folder when content is NULL), or a delete. */
static void server_put(struct world *w, const char *path, const char *content, int deleted)
{
        json_t *e;
        struct hash h, fh;
        char hex[65], fhex[65];

        e = json_pack("{s:s, s:I, s:b, s:s}", "path", path, "seq", (json_int_t)++w->seq, "deleted",
                      deleted, "device", OTHER);
        if (!deleted && content) {
                hash_buf(content, strlen(content), &h); /* the one chunk */
                hash_to_hex(&h, hex);
                assert_int_equal(manifest_file_hash_of(content, strlen(content), &fh), 0);
                hash_to_hex(&fh, fhex);
                json_object_set_new(e, "kind", json_string("file"));
                json_object_set_new(e, "size", json_integer((json_int_t)strlen(content)));
                json_object_set_new(e, "mode", json_integer(420));
                json_object_set_new(e, "mtime_ns", json_integer(1763761956000000000));
                json_object_set_new(e, "hash", json_string(fhex));
                json_object_set_new(e, "chunks",
                                    strlen(content)
                                        ? json_pack("[[s, i]]", hex, (int)strlen(content))
                                        : json_array());
                json_object_set_new(w->chunks, hex, json_string(content));
        } else if (!deleted) {
                json_object_set_new(e, "kind", json_string("dir"));
                json_object_set_new(e, "mode", json_integer(0));
        }
        json_array_append_new(w->entries, e);
}

static void commit(struct world *w, const json_t *req, struct buf *out)
{
        json_t *results = json_array(), *c;
        size_t i;

        json_array_foreach(json_object_get(req, "changes"), i, c)
        {
                json_t *e = json_deep_copy(c);

                json_object_set_new(e, "seq", json_integer(++w->seq));
                json_object_set_new(
                    e, "deleted",
                    json_boolean(!strcmp(json_string_value(json_object_get(c, "op")), "delete")));
                json_object_set_new(e, "device", json_string(SELF));
                json_array_append_new(w->entries, e);
                json_array_append_new(
                    results, json_pack("{s:s, s:I}", "status", "ok", "seq", (json_int_t)w->seq));
        }
        answer(out, json_pack("{s:o}", "results", results));
}

static void unescape(const char *in, char *out, size_t len)
{
        size_t n = 0;

        for (; *in && *in != '&' && n + 1 < len; in++) {
                unsigned v;

                if (*in == '%' && sscanf(in + 1, "%2x", &v) == 1) {
                        out[n++] = (char)v;
                        in += 2;
                } else {
                        out[n++] = *in;
                }
        }
        out[n] = '\0';
}

static int get_file(struct world *w, const char *query, struct buf *out)
{
        json_t *e, *found = NULL;
        char path[512];
        size_t i;

        unescape(query, path, sizeof(path));
        json_array_foreach(w->entries, i,
                           e) if (!strcmp(json_string_value(json_object_get(e, "path")), path))
            found = e;
        if (!found) {
                buf_append_str(out, "{\"error\": \"no such path\", \"code\": \"not_found\"}");
                return 404;
        }
        answer(out, json_incref(found));
        return 200;
}

static int fetch(struct world *w, const json_t *req, struct buf *out)
{
        json_t *h;
        size_t i;

        if (w->fail_fetch > 0) {
                w->fail_fetch--;
                buf_append_str(out, "{\"error\": \"disk on fire\", \"code\": \"internal\"}");
                return 500;
        }
        json_array_foreach(json_object_get(req, "hashes"), i, h)
        {
                const char *data =
                    json_string_value(json_object_get(w->chunks, json_string_value(h)));
                struct hash hh;

                assert_non_null(data);
                hash_from_hex(json_string_value(h), &hh);
                frame_append(out, &hh, (const uint8_t *)data, strlen(data), 0);
        }
        return 200;
}

static int handler(void *ud, const struct fakesrv_request *req, struct buf *out)
{
        struct world *w = ud;
        json_t *j = json_loads(req->body, 0, NULL), *list, *e;
        int code = 200;
        size_t i;

        if (!strncmp(req->path, "/api/v1/changes?since=", 22)) {
                long long since = atoll(req->path + 22);

                list = json_array();
                json_array_foreach(w->entries, i,
                                   e) if (json_integer_value(json_object_get(e, "seq")) > since)
                    json_array_append(list, e);
                answer(out, json_pack("{s:I, s:o, s:b}", "seq", (json_int_t)w->seq, "entries", list,
                                      "more", 0));
        } else if (!strncmp(req->path, "/api/v1/file?path=", 18)) {
                code = get_file(w, req->path + 18, out);
        } else if (!strcmp(req->path, "/api/v1/chunks/fetch")) {
                code = fetch(w, j, out);
        } else if (!strcmp(req->path, "/api/v1/chunks/missing")) {
                answer(out, json_pack("{s:O}", "missing", json_object_get(j, "hashes")));
        } else if (!strcmp(req->path, "/api/v1/commit")) {
                commit(w, j, out);
        } else if (!strcmp(req->path, "/api/v1/transfers")) {
                answer(out, json_pack("{s:i, s:[]}", "batch", 1, "records"));
        } else {
                answer(out, json_pack("{s:b}", "ok", 1));
        }
        json_decref(j);
        return code;
}

static int setup(void **state)
{
        struct world *w = calloc(1, sizeof(*w));

        if (!w || fakesrv_start(handler, w, &w->srv) < 0)
                return -1;
        w->root = testutil_mkdtemp_alloc("pullrules");
        w->entries = json_array();
        w->chunks = json_object();
        w->cfg.root = strdup(w->root);
        w->cfg.server = strdup(fakesrv_url(w->srv));
        w->cfg.user = strdup("alice");
        w->cfg.device_id = strdup(SELF);
        w->cfg.device_name = strdup("me");
        w->cfg.token = strdup("ab");
        w->cfg.mass_delete_count = 50;
        w->cfg.mass_delete_percent = 25;
        if (!w->root || config_save(&w->cfg) < 0)
                return -1;
        *state = w;
        return 0;
}

static int teardown(void **state)
{
        struct world *w = *state;

        fakesrv_stop(w->srv);
        testutil_rm_rf(w->root);
        free(w->root);
        config_free(&w->cfg);
        json_decref(w->entries);
        json_decref(w->chunks);
        free(w);
        return 0;
}

static void set_down(struct world *w, char *w0, char *w1)
{
        char *words[2] = {w0, w1};
        struct rules *r = NULL;

        assert_int_equal(rules_load(w->root, &r), 0);
        assert_int_equal(rules_set(r, RULES_DOWN, words, w1 ? 2 : 1), 0);
        assert_int_equal(rules_save(r, w->root), 0);
        rules_free(r);
}

static int round_run(struct world *w, int targeted)
{
        struct sync_options o = {.targeted = targeted};
        struct sync_stats st;

        return sync_run(&w->cfg, &o, &st);
}

/* The content of root/rel, or "" when there is none. */
static const char *content(struct world *w, const char *rel)
{
        static char buf[256];
        char p[1200];
        FILE *f;
        size_t n;

        snprintf(p, sizeof(p), "%s/%s", w->root, rel);
        buf[0] = '\0';
        f = fopen(p, "r");
        if (!f)
                return buf;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static int exists(struct world *w, const char *rel)
{
        char p[1200];
        struct stat st;

        snprintf(p, sizeof(p), "%s/%s", w->root, rel);
        return lstat(p, &st) == 0;
}

static int held_count(struct world *w)
{
        struct index *idx = NULL;
        char p[1200];
        int64_t n = -1;

        snprintf(p, sizeof(p), "%s/.ferry/index.db", w->root);
        assert_int_equal(index_open(p, &idx), 0);
        assert_int_equal(index_held_count(idx, RULES_DOWN, &n), 0);
        index_close(idx);
        return (int)n;
}

/* What a command printed, and its exit code. */
struct run {
        int rc;
        char out[8192], err[4096];
};

static void slurp(FILE *f, char *buf, size_t len)
{
        size_t n;

        rewind(f);
        n = fread(buf, 1, len - 1, f);
        buf[n] = '\0';
        fclose(f);
}

static void run(struct world *w, struct run *res, int (*cmd)(const struct cli *, int, char **),
                char **argv)
{
        struct cli g = {.dir = w->root};
        FILE *out = tmpfile(), *err = tmpfile();
        int argc = 0, save_out, save_err;

        assert_non_null(out);
        assert_non_null(err);
        while (argv[argc])
                argc++;
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

#define HAS(hay, needle)                                                                           \
        do {                                                                                       \
                if (!strstr((hay), (needle)))                                                      \
                        fail_msg("want \"%s\" in:\n%s", (needle), (hay));                          \
        } while (0)

/* Work/a.txt, Films/ with two films and an empty Music/, held by "folder
 * Work". */
static void films_world(struct world *w)
{
        server_put(w, "Work", NULL, 0);
        server_put(w, "Work/a.txt", "work", 0);
        server_put(w, "Films", NULL, 0);
        server_put(w, "Films/f.mkv", "film one", 0);
        server_put(w, "Films/g.mkv", "film two", 0);
        server_put(w, "Music", NULL, 0);
        set_down(w, "folder", "Work");
        assert_int_equal(round_run(w, 0), 0);
        assert_string_equal(content(w, "Work/a.txt"), "work");
        assert_false(exists(w, "Films"));
        assert_false(exists(w, "Music"));
        assert_int_equal(held_count(w), 4);
}

static void test_pull_file(void **state)
{
        struct world *w = *state;
        char *argv[] = {"pull", "Films/f.mkv", "Music/nope", NULL};
        struct run r;

        films_world(w);
        fakesrv_clear(w->srv);
        run(w, &r, cmd_pull, argv);
        assert_int_equal(r.rc, 1); /* Music/nope has nothing held */
        HAS(r.err, "nothing held at or under Music/nope");
        HAS(r.out, "pulled Films/f.mkv (8 B)");
        HAS(r.out, "synced: uploaded 0, downloaded 2");
        assert_string_equal(content(w, "Films/f.mkv"), "film one");
        assert_false(exists(w, "Films/g.mkv"));
        /* the film and the held folder it lands in; nothing else: not the
         * held folder above the PATH that had nothing to pull */
        assert_int_equal(fakesrv_count_of(w->srv, "GET", "/api/v1/file"), 2);
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/commit"), 0);
        assert_false(exists(w, "Music"));
        assert_int_equal(held_count(w), 2);

        /* it syncs now: a new version comes down, and the other film does not */
        server_put(w, "Films/f.mkv", "film one, recut", 0);
        server_put(w, "Films/g.mkv", "film two, recut", 0);
        assert_int_equal(round_run(w, 0), 0);
        assert_string_equal(content(w, "Films/f.mkv"), "film one, recut");
        assert_false(exists(w, "Films/g.mkv"));
        assert_int_equal(held_count(w), 2);
}

static void test_pull_folder_and_refusals(void **state)
{
        struct world *w = *state;
        char *folder[] = {"pull", "Films/", NULL}, *none[] = {"pull", "Nope", NULL};
        char *synced[] = {"pull", "Work/a.txt", NULL}, *bad[] = {"pull", "../x", NULL};
        char *empty[] = {"pull", NULL}, *opt[] = {"pull", "--bogus", NULL};
        struct run r;

        films_world(w);
        run(w, &r, cmd_pull, none);
        assert_int_equal(r.rc, 1);
        HAS(r.err, "nothing held at or under Nope");
        run(w, &r, cmd_pull, synced);
        assert_int_equal(r.rc, 1);
        HAS(r.err, "Work/a.txt is not held: it is synced here already");
        run(w, &r, cmd_pull, bad);
        assert_int_equal(r.rc, 2);
        run(w, &r, cmd_pull, empty);
        assert_int_equal(r.rc, 2);
        run(w, &r, cmd_pull, opt);
        assert_int_equal(r.rc, 2);
        assert_int_equal(held_count(w), 4);

        run(w, &r, cmd_pull, folder);
        assert_int_equal(r.rc, 0);
        HAS(r.out, "pulled Films (folder)");
        HAS(r.out, "pulled Films/f.mkv (8 B)");
        HAS(r.out, "pulled Films/g.mkv (8 B)");
        assert_string_equal(content(w, "Films/g.mkv"), "film two");
        assert_int_equal(held_count(w), 1); /* Music */
}

/* New rules let held files down at the next round, even a watch's small
 * round; with the rules unchanged such a round does not look at the held
 * files (an override added behind its back waits for a full round). */
static void test_rules_change_releases(void **state)
{
        struct world *w = *state;
        struct index *idx = NULL;
        char p[1200];

        films_world(w);
        snprintf(p, sizeof(p), "%s/.ferry/index.db", w->root);
        assert_int_equal(index_open(p, &idx), 0);
        assert_int_equal(index_override_add(idx, "Films/f.mkv"), 0);
        index_close(idx);
        fakesrv_clear(w->srv);
        assert_int_equal(round_run(w, 1), 0);
        assert_int_equal(fakesrv_count(w->srv), 1); /* the changes listing only */
        assert_false(exists(w, "Films/f.mkv"));
        assert_int_equal(round_run(w, 0), 0);
        assert_int_equal(fakesrv_count_of(w->srv, "GET", "/api/v1/file"), 1);
        assert_string_equal(content(w, "Films/f.mkv"), "film one");
        fakesrv_clear(w->srv);
        set_down(w, "all", NULL);
        assert_int_equal(round_run(w, 1), 0);
        assert_int_equal(fakesrv_count_of(w->srv, "GET", "/api/v1/file"), 3);
        assert_string_equal(content(w, "Films/f.mkv"), "film one");
        assert_string_equal(content(w, "Films/g.mkv"), "film two");
        assert_true(exists(w, "Music"));
        assert_int_equal(held_count(w), 0);
}

/* A held file whose download failed stays held, and comes down later. */
static void test_failed_pull_tried_again(void **state)
{
        struct world *w = *state;
        char *argv[] = {"pull", "Films/f.mkv", NULL};
        struct run r;

        films_world(w);
        w->fail_fetch = 1;
        run(w, &r, cmd_pull, argv);
        assert_int_equal(r.rc, 1);
        HAS(r.err, "the sync round failed");
        assert_false(exists(w, "Films/f.mkv"));
        assert_int_equal(held_count(w), 3); /* the films and Music; Films is in place */
        assert_int_equal(round_run(w, 0), 0);
        assert_string_equal(content(w, "Films/f.mkv"), "film one");
        assert_int_equal(held_count(w), 2);
}

static void test_backup_and_ignored_never_land(void **state)
{
        struct world *w = *state;
        char *argv[] = {"pull", "x.log", NULL};
        struct run r;

        server_put(w, ".ferryignore", "*.log\n", 0);
        server_put(w, ".ferry-backup", NULL, 0);
        server_put(w, ".ferry-backup/phone", NULL, 0);
        server_put(w, ".ferry-backup/phone/a.jpg", "photo", 0);
        assert_int_equal(round_run(w, 0), 0);
        assert_string_equal(content(w, ".ferryignore"), "*.log\n");
        server_put(w, "x.log", "log", 0);
        assert_int_equal(round_run(w, 0), 0);
        assert_false(exists(w, ".ferry-backup"));
        assert_false(exists(w, "x.log"));
        assert_int_equal(held_count(w), 1);
        run(w, &r, cmd_pull, argv);
        assert_int_equal(r.rc, 1);
        HAS(r.err, "x.log is ignored by .ferryignore");
        assert_false(exists(w, "x.log"));
}

static void test_prune_then_pull_back(void **state)
{
        struct world *w = *state;
        char *dry[] = {"prune", "--dry-run", NULL}, *prune[] = {"prune", NULL};
        char *nope[] = {"prune", "Nope", NULL}, *opt[] = {"prune", "--bogus", NULL};
        char *back[] = {"pull", "Films", NULL};
        int64_t seq = 0;
        struct run r;

        server_put(w, "Work", NULL, 0);
        server_put(w, "Work/a.txt", "work", 0);
        server_put(w, "Films", NULL, 0);
        server_put(w, "Films/f.mkv", "film one", 0);
        assert_int_equal(round_run(w, 0), 0);
        assert_string_equal(content(w, "Films/f.mkv"), "film one");
        set_down(w, "folder", "Work");
        /* a new rule leaves synced files alone, and they keep syncing */
        server_put(w, "Films/f.mkv", "film one, recut", 0);
        assert_int_equal(round_run(w, 0), 0);
        assert_string_equal(content(w, "Films/f.mkv"), "film one, recut");

        run(w, &r, cmd_prune, nope);
        assert_int_equal(r.rc, 1);
        HAS(r.err, "no synced file at or under Nope");
        run(w, &r, cmd_prune, opt);
        assert_int_equal(r.rc, 2);
        run(w, &r, cmd_prune, dry);
        assert_int_equal(r.rc, 0);
        HAS(r.out, "would prune Films/f.mkv (15 B): not under Work");
        HAS(r.out, "would prune 1 file(s)");
        assert_true(exists(w, "Films/f.mkv"));

        run(w, &r, cmd_prune, prune);
        assert_int_equal(r.rc, 0);
        HAS(r.out, "pruned Films/f.mkv (15 B): not under Work");
        HAS(r.out, "removed the empty folder Films");
        assert_false(exists(w, "Films"));
        assert_true(exists(w, "Work/a.txt"));
        /* no delete reaches the server, and the files do not come back */
        seq = w->seq;
        fakesrv_clear(w->srv);
        assert_int_equal(round_run(w, 0), 0);
        assert_int_equal(fakesrv_count_of(w->srv, "POST", "/api/v1/commit"), 0);
        assert_int_equal(w->seq, seq);
        assert_false(exists(w, "Films"));
        run(w, &r, cmd_prune, prune);
        HAS(r.out, "nothing to prune");

        run(w, &r, cmd_pull, back);
        assert_int_equal(r.rc, 0);
        assert_string_equal(content(w, "Films/f.mkv"), "film one, recut");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_pull_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pull_folder_and_refusals, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rules_change_releases, setup, teardown),
            cmocka_unit_test_setup_teardown(test_failed_pull_tried_again, setup, teardown),
            cmocka_unit_test_setup_teardown(test_backup_and_ignored_never_land, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prune_then_pull_back, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
