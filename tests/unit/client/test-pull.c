/* Unit tests for pull_apply_entry, without a server: how one entry from the
 * server meets the local folder. Directories and symlinks are created; a
 * deleted file that was synced goes to the trash, one edited here is kept
 * (the edit wins); unsynced local data in the way of a new version becomes
 * a conflict copy before the download is queued; paths that fail
 * path_validate() or lead through a symlink are refused and nothing is
 * written.
 *
 * And the download rules (pull_rules.c): backup sets are skipped without a
 * trace; ignored names and entries the rules hold or ask about become
 * held-down rows (seq, size, kind, reason) and nothing is written, not even
 * a parent folder; a later version or a delete updates or drops the row; an
 * override or a synced file (in the index) goes through whatever the rules
 * say. `ferry prune` (pull_rules_prune) moves clean synced files the rules
 * no longer select to the trash and holds them down, keeps edited ones,
 * lists without touching anything with --dry-run, removes the folders left
 * empty, and leaves overrides and ignored names alone. */
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

#include "config.h"
#include "err.h"
#include "hash.h"
#include "index.h"
#include "localfs.h"
#include "path.h"
#include "pull_apply.h"
#include "pull_rules.h"
#include "ignore.h"
#include "rules.h"
#include "sync.h"
#include "testutil.h"

/* "hello": its one chunk's hash, and its file hash (that of the chunk list,
 * manifest.h) */
#define HELLO_HEX "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define HELLO_FILE_HEX "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50"

struct fixture {
        struct config cfg;
        struct sync_ctx s;
        struct sync_options o;
        char *other; /* a folder outside the synced one */
        struct dl_job *jobs;
        size_t njobs, capjobs;
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        char *db = NULL;

        assert_non_null(fx);
        fx->cfg.root = testutil_mkdtemp_alloc("pull");
        assert_non_null(fx->cfg.root);
        fx->other = testutil_mkdtemp_alloc("pull-out");
        assert_non_null(fx->other);
        fx->cfg.device_name = strdup("laptop");
        assert_true(asprintf(&db, "%s/.ferry", fx->cfg.root) > 0);
        assert_int_equal(mkdir(db, 0700), 0);
        free(db);
        assert_true(asprintf(&db, "%s/.ferry/index.db", fx->cfg.root) > 0);
        fx->s.cfg = &fx->cfg;
        fx->s.opts = &fx->o;
        assert_int_equal(index_open(db, &fx->s.idx), 0);
        free(db);
        assert_int_equal(rules_load(fx->cfg.root, &fx->s.rules), 0);
        assert_int_equal(ignore_load(fx->cfg.root, &fx->s.ignore), 0);
        snprintf(fx->s.stamp, sizeof(fx->s.stamp), "20261121-140205");
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        for (size_t i = 0; i < fx->njobs; i++)
                dl_job_free(&fx->jobs[i]);
        free(fx->jobs);
        for (size_t i = 0; i < fx->s.nmoved; i++) {
                free(fx->s.moved_from[i]);
                free(fx->s.moved_to[i]);
        }
        free(fx->s.moved_from);
        free(fx->s.moved_to);
        index_close(fx->s.idx);
        rules_free(fx->s.rules);
        ignore_free(fx->s.ignore);
        assert_int_equal(testutil_rm_rf(fx->cfg.root), 0);
        assert_int_equal(testutil_rm_rf(fx->other), 0);
        free(fx->other);
        free(fx->cfg.root);
        free(fx->cfg.device_name);
        free(fx);
        return 0;
}

static int apply(struct fixture *fx, const char *json)
{
        json_error_t e;
        json_t *j = json_loads(json, 0, &e);
        int r;

        assert_non_null(j);
        r = pull_apply_entry(&fx->s, j, &fx->jobs, &fx->njobs, &fx->capjobs);
        json_decref(j);
        return r;
}

static int exists(const char *root, const char *rel)
{
        char *p = path_join(root, rel);
        struct stat st;
        int r = lstat(p, &st) == 0;

        free(p);
        return r;
}

static void put_file(const char *root, const char *rel, const char *text)
{
        char *p = path_join(root, rel);
        FILE *f = fopen(p, "w");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        free(p);
}

/* Records root/rel in the index as synced at seq, as a finished sync would. */
static void index_as_synced(struct fixture *fx, const char *rel, int64_t seq)
{
        struct index_entry e = {0};
        char *p = path_join(fx->cfg.root, rel);
        struct stat st;

        assert_int_equal(lstat(p, &st), 0);
        localfs_entry_stat(&e, &st);
        e.path = (char *)rel;
        e.seq = seq;
        if (e.kind == KIND_FILE)
                assert_int_equal(localfs_hash_file(fx->cfg.root, rel, &e.hash), 0);
        assert_int_equal(index_put(fx->s.idx, &e, NULL), 0);
        free(p);
}

static void test_dir_and_symlink(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};
        char buf[64], *p;
        ssize_t n;

        assert_int_equal(apply(fx, "{\"path\":\"a/b\",\"seq\":3,\"deleted\":false,\"kind\":\"dir\","
                                   "\"mode\":0}"),
                         0);
        assert_true(exists(fx->cfg.root, "a/b"));
        assert_int_equal(index_get(fx->s.idx, "a/b", &e), 0);
        assert_int_equal(e.seq, 3);
        assert_int_equal(e.kind, KIND_DIR);
        index_entry_free(&e);

        assert_int_equal(apply(fx, "{\"path\":\"a/ln\",\"seq\":4,\"deleted\":false,"
                                   "\"kind\":\"symlink\",\"target\":\"../../etc/passwd\"}"),
                         0);
        p = path_join(fx->cfg.root, "a/ln");
        n = readlink(p, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_string_equal(buf, "../../etc/passwd"); /* stored as a link, never followed */
        free(p);
        assert_int_equal(fx->s.stats.downloaded, 2);
        /* the same entry again is skipped */
        assert_int_equal(
            apply(fx, "{\"path\":\"a/b\",\"seq\":3,\"deleted\":false,\"kind\":\"dir\"}"), 0);
        assert_int_equal(fx->s.stats.downloaded, 2);
}

static void test_hostile_paths_refused(void **state)
{
        struct fixture *fx = *state;
        char *link = path_join(fx->cfg.root, "evil");

        assert_int_equal(symlink(fx->other, link), 0);
        assert_int_equal(apply(fx, "{\"path\":\"../x\",\"seq\":1,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply(fx, "{\"path\":\"/etc/x\",\"seq\":2,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply(fx, "{\"path\":\".ferry/config.json\",\"seq\":3,\"kind\":\"dir\"}"),
                         0);
        assert_int_equal(apply(fx, "{\"path\":\"evil/x\",\"seq\":4,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply(fx, "{\"path\":\"evil/sub/f\",\"seq\":5,\"kind\":\"file\","
                                   "\"size\":0,\"mode\":420,\"hash\":"
                                   "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                                   "7852b855\",\"chunks\":[]}"),
                         0);
        assert_int_equal(fx->s.stats.refused, 5);
        assert_int_equal(fx->njobs, 0);
        assert_false(exists(fx->other, "x"));
        assert_false(exists(fx->other, "sub"));
        free(link);
}

static void test_delete_trashes_synced_keeps_edited(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};

        put_file(fx->cfg.root, "synced.txt", "old");
        put_file(fx->cfg.root, "edited.txt", "old");
        index_as_synced(fx, "synced.txt", 5);
        index_as_synced(fx, "edited.txt", 6);
        put_file(fx->cfg.root, "edited.txt", "changed here, longer");

        assert_int_equal(apply(fx, "{\"path\":\"synced.txt\",\"seq\":9,\"deleted\":true}"), 0);
        assert_false(exists(fx->cfg.root, "synced.txt"));
        assert_true(exists(fx->cfg.root, ".ferry/trash/20261121-140205/synced.txt"));
        assert_int_equal(fx->s.nmoved, 1);

        assert_int_equal(apply(fx, "{\"path\":\"edited.txt\",\"seq\":10,\"deleted\":true}"), 0);
        assert_true(exists(fx->cfg.root, "edited.txt"));
        assert_int_equal(index_get(fx->s.idx, "edited.txt", &e), -ENOENT);
        assert_true(fx->s.again); /* the edit is uploaded by another pass */
        assert_int_equal(fx->s.stats.deleted, 1);
}

static void test_unsynced_local_file_becomes_conflict_copy(void **state)
{
        struct fixture *fx = *state;
        const char *entry = "{\"path\":\"r.txt\",\"seq\":7,\"deleted\":false,\"kind\":\"file\","
                            "\"size\":5,\"mtime_ns\":1763761956000000000,\"mode\":420,\"hash\":"
                            "\"" HELLO_FILE_HEX "\","
                            "\"chunks\":[[\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e730"
                            "43362938b9824\",5]]}";

        put_file(fx->cfg.root, "r.txt", "mine, not synced");
        assert_int_equal(apply(fx, entry), 0);
        assert_false(exists(fx->cfg.root, "r.txt"));
        assert_int_equal(fx->s.stats.conflicts, 1);
        assert_int_equal(fx->njobs, 1);
        assert_string_equal(fx->jobs[0].path, "r.txt");
        assert_int_equal(fx->jobs[0].m.size, 5);
        assert_int_equal(fx->jobs[0].seq, 7);
}

static void test_identical_local_file_is_adopted(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};
        /* "hello" */
        const char *entry = "{\"path\":\"same.txt\",\"seq\":8,\"deleted\":false,\"kind\":\"file\","
                            "\"size\":5,\"mtime_ns\":1763761956000000000,\"mode\":420,\"hash\":"
                            "\"" HELLO_FILE_HEX "\","
                            "\"chunks\":[[\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e730"
                            "43362938b9824\",5]]}";

        put_file(fx->cfg.root, "same.txt", "hello");
        assert_int_equal(apply(fx, entry), 0);
        assert_int_equal(fx->njobs, 0);
        assert_int_equal(fx->s.stats.conflicts, 0);
        assert_int_equal(index_get(fx->s.idx, "same.txt", &e), 0);
        assert_int_equal(e.seq, 8);
        assert_int_equal(e.mtime_ns, INT64_C(1763761956000000000));
        index_entry_free(&e);
}

/* This device's own version, sent without its chunk list
 * ("chunks_omitted"), that the index lacks (a crash before the index was
 * updated): the identical local file is adopted, with a chunk list cut from
 * the file itself (later deltas are computed against it), and nothing is
 * asked of the server (there is none here). */
static void test_own_entry_without_chunks_is_adopted(void **state)
{
        struct fixture *fx = *state;
        struct manifest m = MANIFEST_INIT;
        struct index_entry e = {0};
        struct hash h;
        const char *entry = "{\"path\":\"own.txt\",\"seq\":9,\"deleted\":false,\"kind\":\"file\","
                            "\"size\":5,\"mtime_ns\":1763761956000000000,\"mode\":420,\"hash\":"
                            "\"" HELLO_FILE_HEX "\","
                            "\"chunks_omitted\":true}";

        put_file(fx->cfg.root, "own.txt", "hello");
        assert_int_equal(apply(fx, entry), 0);
        assert_int_equal(fx->njobs, 0);
        assert_int_equal(fx->s.stats.conflicts, 0);
        assert_int_equal(index_get(fx->s.idx, "own.txt", &e), 0);
        assert_int_equal(e.seq, 9);
        assert_int_equal(e.mtime_ns, INT64_C(1763761956000000000));
        index_entry_free(&e);
        assert_int_equal(index_get_manifest(fx->s.idx, "own.txt", &m), 0);
        assert_int_equal(m.n, 1);
        assert_int_equal(m.chunks[0].size, 5);
        assert_int_equal(
            hash_from_hex("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", &h),
            0);
        assert_true(hash_equal(&m.chunks[0].hash, &h));
        manifest_free(&m);
        /* the same entry again: the index has it at this seq, nothing to do */
        assert_int_equal(apply(fx, entry), 0);
        assert_int_equal(fx->njobs, 0);
}

/* ---- the download rules ---- */

/* A file entry of size bytes whose content is "hello" when size is 5 (the
 * others are only ever held, never downloaded). */
static int apply_file(struct fixture *fx, const char *path, int64_t seq, uint64_t size)
{
        char j[1024];

        snprintf(j, sizeof(j),
                 "{\"path\":\"%s\",\"seq\":%lld,\"deleted\":false,\"kind\":\"file\","
                 "\"size\":%llu,\"mtime_ns\":1763761956000000000,\"mode\":420,"
                 "\"hash\":\"" HELLO_FILE_HEX "\",\"chunks\":[[\"" HELLO_HEX "\",%llu]]}",
                 path, (long long)seq, (unsigned long long)size, (unsigned long long)size);
        return apply(fx, j);
}

static void set_down(struct fixture *fx, const char *w0, const char *w1)
{
        char *words[2] = {(char *)w0, (char *)w1};

        assert_int_equal(rules_set(fx->s.rules, RULES_DOWN, words, w1 ? 2 : 1), 0);
}

static void set_ignore(struct fixture *fx, const char *text)
{
        put_file(fx->cfg.root, ".ferryignore", text);
        ignore_free(fx->s.ignore);
        assert_int_equal(ignore_load(fx->cfg.root, &fx->s.ignore), 0);
}

/* A copy of the held-down row of path. */
struct held_copy {
        int found;
        const char *want;
        int kind;
        uint64_t size;
        int64_t seq;
        char reason[256];
};

static int held_cb(const struct index_held *h, void *ud)
{
        struct held_copy *c = ud;

        if (strcmp(h->path, c->want) != 0)
                return 0;
        c->found = 1;
        c->kind = h->kind;
        c->size = h->size;
        c->seq = h->seq;
        snprintf(c->reason, sizeof(c->reason), "%s", h->reason);
        return 0;
}

static struct held_copy held(struct fixture *fx, const char *path)
{
        struct held_copy c = {.want = path};

        assert_int_equal(index_held_foreach(fx->s.idx, RULES_DOWN, path, held_cb, &c), 0);
        return c;
}

static int64_t held_count(struct fixture *fx)
{
        int64_t n = -1;

        assert_int_equal(index_held_count(fx->s.idx, RULES_DOWN, &n), 0);
        return n;
}

static void test_backup_sets_skipped_silently(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};

        assert_int_equal(apply(fx, "{\"path\":\".ferry-backup\",\"seq\":1,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply(fx, "{\"path\":\".ferry-backup/phone\",\"seq\":2,\"kind\":\"dir\"}"),
                         0);
        assert_int_equal(apply_file(fx, ".ferry-backup/phone/a.txt", 3, 5), 0);
        assert_int_equal(apply(fx, "{\"path\":\".ferry-backup/phone/a.txt\",\"seq\":4,"
                                   "\"deleted\":true}"),
                         0);
        /* a name that only starts the same is an ordinary entry */
        assert_int_equal(apply(fx, "{\"path\":\".ferry-backups\",\"seq\":5,\"kind\":\"dir\"}"), 0);
        assert_false(exists(fx->cfg.root, ".ferry-backup"));
        assert_true(exists(fx->cfg.root, ".ferry-backups"));
        assert_int_equal(fx->njobs, 0);
        assert_int_equal(held_count(fx), 0);
        assert_int_equal(index_get(fx->s.idx, ".ferry-backup", &e), -ENOENT);
        assert_int_equal(fx->s.stats.refused, 0);
}

static void test_rules_hold_down(void **state)
{
        struct fixture *fx = *state;
        struct held_copy h;

        set_down(fx, "folder", "Work");
        assert_int_equal(apply_file(fx, "Work/a.txt", 3, 5), 0);
        assert_int_equal(fx->njobs, 1);
        assert_int_equal(apply_file(fx, "Films/f.mkv", 4, 123456), 0);
        assert_int_equal(apply(fx, "{\"path\":\"Photos\",\"seq\":5,\"kind\":\"dir\"}"), 0);
        assert_int_equal(fx->njobs, 1); /* nothing queued, nothing written */
        assert_false(exists(fx->cfg.root, "Films"));
        assert_false(exists(fx->cfg.root, "Photos"));
        h = held(fx, "Films/f.mkv");
        assert_true(h.found);
        assert_int_equal(h.seq, 4);
        assert_int_equal(h.size, 123456);
        assert_int_equal(h.kind, KIND_FILE);
        assert_string_equal(h.reason, "not under Work");
        h = held(fx, "Photos");
        assert_true(h.found);
        assert_int_equal(h.kind, KIND_DIR);
        assert_int_equal(held_count(fx), 2);

        /* a new version updates the row; a delete drops it, touching nothing */
        assert_int_equal(apply_file(fx, "Films/f.mkv", 9, 777), 0);
        h = held(fx, "Films/f.mkv");
        assert_int_equal(h.seq, 9);
        assert_int_equal(h.size, 777);
        assert_int_equal(apply(fx, "{\"path\":\"Films/f.mkv\",\"seq\":10,\"deleted\":true}"), 0);
        assert_false(held(fx, "Films/f.mkv").found);
        assert_false(exists(fx->cfg.root, "Films"));
        assert_int_equal(fx->s.stats.deleted, 0);
        assert_false(fx->s.again);
}

static void test_ask_is_held(void **state)
{
        struct fixture *fx = *state;

        set_down(fx, "ask", NULL);
        assert_int_equal(apply_file(fx, "doc.pdf", 3, 10), 0);
        assert_int_equal(fx->njobs, 0);
        assert_string_equal(held(fx, "doc.pdf").reason, "ask");
}

static void test_ignored_names_held_even_with_override(void **state)
{
        struct fixture *fx = *state;

        set_ignore(fx, "*.log\nbuild/\n");
        assert_int_equal(index_override_add(fx->s.idx, "x.log"), 0);
        assert_int_equal(apply_file(fx, "x.log", 3, 5), 0);
        assert_int_equal(apply(fx, "{\"path\":\"build\",\"seq\":4,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply_file(fx, "build/out.o", 5, 5), 0);
        assert_int_equal(fx->njobs, 0);
        assert_false(exists(fx->cfg.root, "build"));
        assert_string_equal(held(fx, "x.log").reason, PULL_RULES_IGNORED);
        assert_string_equal(held(fx, "build").reason, PULL_RULES_IGNORED);
        assert_string_equal(held(fx, "build/out.o").reason, PULL_RULES_IGNORED);
}

/* A synced file that .ferryignore now names, deleted elsewhere: the local
 * copy is this device's own, it stays (and another pass is not needed). */
static void test_ignored_delete_keeps_local_copy(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};

        put_file(fx->cfg.root, "a.log", "log");
        index_as_synced(fx, "a.log", 4);
        set_ignore(fx, "*.log\n");
        assert_int_equal(apply(fx, "{\"path\":\"a.log\",\"seq\":9,\"deleted\":true}"), 0);
        assert_true(exists(fx->cfg.root, "a.log"));
        assert_int_equal(index_get(fx->s.idx, "a.log", &e), -ENOENT);
        assert_false(fx->s.again);
        assert_int_equal(fx->s.nmoved, 0);
}

/* An override, a synced file and a change of the rules all let the entry
 * down; its held row goes once it is in place (a directory at once, a
 * file when its download is done: not in this test). */
static void test_override_and_synced_go_through(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};

        set_down(fx, "folder", "Work");
        assert_int_equal(apply(fx, "{\"path\":\"Photos\",\"seq\":3,\"kind\":\"dir\"}"), 0);
        assert_int_equal(apply_file(fx, "Films/f.mkv", 4, 5), 0);
        assert_int_equal(held_count(fx), 2);

        assert_int_equal(index_override_add(fx->s.idx, "Films/f.mkv"), 0);
        assert_int_equal(apply_file(fx, "Films/f.mkv", 4, 5), 0);
        assert_int_equal(fx->njobs, 1);
        assert_string_equal(fx->jobs[0].path, "Films/f.mkv");
        assert_true(held(fx, "Films/f.mkv").found); /* until the file is here */

        set_down(fx, "all", NULL);
        assert_int_equal(apply(fx, "{\"path\":\"Photos\",\"seq\":3,\"kind\":\"dir\"}"), 0);
        assert_true(exists(fx->cfg.root, "Photos"));
        assert_int_equal(index_get(fx->s.idx, "Photos", &e), 0);
        index_entry_free(&e);
        assert_false(held(fx, "Photos").found);

        /* a synced file keeps syncing when a rule stops selecting it */
        set_down(fx, "folder", "Work");
        put_file(fx->cfg.root, "old.txt", "old");
        index_as_synced(fx, "old.txt", 2);
        assert_int_equal(apply_file(fx, "old.txt", 8, 5), 0);
        assert_int_equal(fx->njobs, 2);
        assert_string_equal(fx->jobs[1].path, "old.txt");
        assert_false(held(fx, "old.txt").found);
}

/* ---- prune ---- */

struct pruned {
        char lines[16][160];
        int n;
};

static void on_pruned(void *ud, const struct pull_prune_item *it)
{
        struct pruned *p = ud;
        static const char *what[] = {"moved", "would", "changed", "dir"};

        assert_true(p->n < 16);
        snprintf(p->lines[p->n++], sizeof(p->lines[0]), "%s %s (%s)", what[it->what], it->path,
                 it->reason);
}

static int prune(struct fixture *fx, char *const *paths, size_t n, int dry, struct pruned *out)
{
        struct pull_prune p = {.root = fx->cfg.root,
                               .idx = fx->s.idx,
                               .rules = fx->s.rules,
                               .ignore = fx->s.ignore,
                               .paths = paths,
                               .npaths = n,
                               .dry_run = dry,
                               .stamp = fx->s.stamp,
                               .report = on_pruned,
                               .ud = out};

        memset(out, 0, sizeof(*out));
        return pull_rules_prune(&p);
}

/* Work/a.txt stays; Films/ holds a clean file, an edited one and an empty
 * folder; Music/ a file with an override and an ignored one. */
static void prune_world(struct fixture *fx)
{
        const char *dirs[] = {"Work", "Films", "Films/empty", "Music"};
        char *p;

        for (size_t i = 0; i < 4; i++) {
                p = path_join(fx->cfg.root, dirs[i]);
                assert_int_equal(mkdir(p, 0755), 0);
                free(p);
                index_as_synced(fx, dirs[i], 1);
        }
        put_file(fx->cfg.root, "Work/a.txt", "a");
        put_file(fx->cfg.root, "Films/f.mkv", "film");
        put_file(fx->cfg.root, "Films/g.mkv", "film 2");
        put_file(fx->cfg.root, "Music/m.mp3", "m");
        put_file(fx->cfg.root, "Music/x.log", "x");
        index_as_synced(fx, "Work/a.txt", 2);
        index_as_synced(fx, "Films/f.mkv", 3);
        index_as_synced(fx, "Films/g.mkv", 4);
        index_as_synced(fx, "Music/m.mp3", 5);
        index_as_synced(fx, "Music/x.log", 6);
        put_file(fx->cfg.root, "Films/g.mkv", "edited here, longer");
        assert_int_equal(index_override_add(fx->s.idx, "Music/m.mp3"), 0);
        set_ignore(fx, "*.log\n");
        set_down(fx, "folder", "Work");
}

static void test_prune_dry_run_changes_nothing(void **state)
{
        struct fixture *fx = *state;
        struct pruned out;
        struct index_entry e = {0};

        prune_world(fx);
        assert_int_equal(prune(fx, NULL, 0, 1, &out), 1);
        assert_int_equal(out.n, 2);
        assert_string_equal(out.lines[0], "would Films/f.mkv (not under Work)");
        assert_string_equal(out.lines[1], "changed Films/g.mkv (not under Work)");
        assert_true(exists(fx->cfg.root, "Films/f.mkv"));
        assert_int_equal(index_get(fx->s.idx, "Films/f.mkv", &e), 0);
        index_entry_free(&e);
        assert_int_equal(held_count(fx), 0);
}

static void test_prune_moves_and_holds(void **state)
{
        struct fixture *fx = *state;
        struct index_entry e = {0};
        struct pruned out;
        struct held_copy h;

        prune_world(fx);
        assert_int_equal(prune(fx, NULL, 0, 0, &out), 1);
        assert_int_equal(out.n, 3);
        assert_string_equal(out.lines[0], "moved Films/f.mkv (not under Work)");
        assert_string_equal(out.lines[1], "changed Films/g.mkv (not under Work)");
        assert_string_equal(out.lines[2], "dir Films/empty (not under Work)");
        assert_false(exists(fx->cfg.root, "Films/f.mkv"));
        assert_true(exists(fx->cfg.root, ".ferry/trash/20261121-140205/Films/f.mkv"));
        assert_int_equal(index_get(fx->s.idx, "Films/f.mkv", &e), -ENOENT);
        h = held(fx, "Films/f.mkv");
        assert_true(h.found);
        assert_int_equal(h.seq, 3);
        assert_int_equal(h.size, 4);
        assert_string_equal(h.reason, "not under Work");
        assert_false(exists(fx->cfg.root, "Films/empty"));
        assert_true(held(fx, "Films/empty").found);
        /* kept: the edit, the folder still holding it, the override, the
         * ignored name, and what the rules select */
        assert_true(exists(fx->cfg.root, "Films/g.mkv"));
        assert_int_equal(index_get(fx->s.idx, "Films/g.mkv", &e), 0);
        index_entry_free(&e);
        assert_int_equal(index_get(fx->s.idx, "Films", &e), 0);
        index_entry_free(&e);
        assert_true(exists(fx->cfg.root, "Music/m.mp3"));
        assert_true(exists(fx->cfg.root, "Music/x.log"));
        assert_true(exists(fx->cfg.root, "Work/a.txt"));
        assert_int_equal(held_count(fx), 2);

        /* the pruned file does not come back with its next version */
        assert_int_equal(apply_file(fx, "Films/f.mkv", 12, 5), 0);
        assert_int_equal(fx->njobs, 0);
        assert_int_equal(held(fx, "Films/f.mkv").seq, 12);
        /* and a second prune finds nothing more to move */
        assert_int_equal(prune(fx, NULL, 0, 0, &out), 0);
}

static void test_prune_limited_to_paths(void **state)
{
        struct fixture *fx = *state;
        char *only[] = {"Music", "Films/empty"};
        struct pruned out;

        prune_world(fx);
        assert_int_equal(prune(fx, only, 2, 0, &out), 0);
        assert_int_equal(out.n, 1);
        assert_string_equal(out.lines[0], "dir Films/empty (not under Work)");
        assert_true(exists(fx->cfg.root, "Films/f.mkv"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_dir_and_symlink, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hostile_paths_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delete_trashes_synced_keeps_edited, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_unsynced_local_file_becomes_conflict_copy, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_identical_local_file_is_adopted, setup, teardown),
            cmocka_unit_test_setup_teardown(test_own_entry_without_chunks_is_adopted, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_backup_sets_skipped_silently, setup, teardown),
            cmocka_unit_test_setup_teardown(test_rules_hold_down, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ask_is_held, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ignored_names_held_even_with_override, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_ignored_delete_keeps_local_copy, setup, teardown),
            cmocka_unit_test_setup_teardown(test_override_and_synced_go_through, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prune_dry_run_changes_nothing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prune_moves_and_holds, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prune_limited_to_paths, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
