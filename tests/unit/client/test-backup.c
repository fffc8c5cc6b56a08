/* Unit tests for the backup module's local half (backup.h) and the small
 * parsers of its commands: set names, intervals (watch --check-backup),
 * restore points (restore --at), a set's sources (resolved, kept across a
 * save and a load, name clashes refused, Ferry's own folders refused), the
 * sets of a folder, the check's report against the set's index (new,
 * modified, deleted, renamed, bytes; .ferry folders and the ignore
 * defaults left out; a missing source reported, never turned into
 * deletes), the set's lock, and notify-send (run when on PATH with the
 * report, quietly skipped when not). Each test has its own linked folder
 * (only .ferry/ is needed: nothing here talks to a server). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup.h"
#include "config.h"
#include "err.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "restore.h"
#include "testutil.h"

struct fix {
        char *top; /* holds the linked folder "linked" and the sources "src" */
        char linked[1200], src[1200];
        struct config cfg;
};

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void pathf(char *out, size_t len, const char *a, const char *b)
{
        snprintf(out, len, "%s/%s", a, b);
}

static int setup(void **state)
{
        struct fix *f = calloc(1, sizeof(*f));
        char p[1300];

        if (!f || !(f->top = testutil_mkdtemp_alloc("backup")))
                return -1;
        pathf(f->linked, sizeof(f->linked), f->top, "linked");
        pathf(f->src, sizeof(f->src), f->top, "src");
        pathf(p, sizeof(p), f->linked, ".ferry");
        if (mkdir(f->linked, 0755) < 0 || mkdir(p, 0700) < 0 || mkdir(f->src, 0755) < 0)
                return -1;
        f->cfg.root = f->linked;
        f->cfg.mass_delete_count = 50;
        f->cfg.mass_delete_percent = 25;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fix *f = *state;

        testutil_rm_rf(f->top);
        free(f->top);
        free(f);
        return 0;
}

static void test_names(void **state)
{
        char long_name[BACKUP_NAME_MAX + 2];

        (void)state;
        assert_int_equal(backup_name_check("phone"), 0);
        assert_int_equal(backup_name_check("my laptop-2"), 0);
        assert_int_equal(backup_name_check(""), -EINVAL);
        assert_int_equal(backup_name_check("a/b"), -EINVAL);
        assert_int_equal(backup_name_check(".hidden"), -EINVAL);
        assert_int_equal(backup_name_check(".."), -EINVAL);
        assert_int_equal(backup_name_check("tab\there"), -EINVAL);
        memset(long_name, 'x', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        assert_int_equal(backup_name_check(long_name), -EINVAL);
        long_name[BACKUP_NAME_MAX] = '\0';
        assert_int_equal(backup_name_check(long_name), 0);
}

static void test_interval(void **state)
{
        int64_t s = 0;

        (void)state;
        assert_int_equal(backup_parse_interval("90", &s), 0);
        assert_int_equal(s, 90);
        assert_int_equal(backup_parse_interval("90s", &s), 0);
        assert_int_equal(s, 90);
        assert_int_equal(backup_parse_interval("15m", &s), 0);
        assert_int_equal(s, 900);
        assert_int_equal(backup_parse_interval("2h", &s), 0);
        assert_int_equal(s, 7200);
        assert_int_equal(backup_parse_interval("1d", &s), 0);
        assert_int_equal(s, 86400);
        assert_int_equal(backup_parse_interval("366d", &s), 0);
        assert_int_equal(backup_parse_interval("367d", &s), -EINVAL);
        assert_int_equal(backup_parse_interval("0", &s), -EINVAL);
        assert_int_equal(backup_parse_interval("", &s), -EINVAL);
        assert_int_equal(backup_parse_interval("m", &s), -EINVAL);
        assert_int_equal(backup_parse_interval("5w", &s), -EINVAL);
        assert_int_equal(backup_parse_interval("5mm", &s), -EINVAL);
        assert_int_equal(backup_parse_interval("-5", &s), -EINVAL);
        assert_int_equal(backup_parse_interval("99999999999999999999", &s), -EINVAL);
}

static void test_points(void **state)
{
        int64_t seq, t;
        struct tm tm = {0};

        (void)state;
        assert_int_equal(restore_parse_point("42", &seq, &t), 0);
        assert_int_equal(seq, 42);
        assert_int_equal(t, -1);
        assert_int_equal(restore_parse_point("0", &seq, &t), -EINVAL);
        tm.tm_year = 2026 - 1900;
        tm.tm_mon = 10;
        tm.tm_mday = 21;
        tm.tm_hour = 14;
        tm.tm_min = 2;
        tm.tm_sec = 5;
        tm.tm_isdst = -1;
        assert_int_equal(restore_parse_point("2026-11-21 14:02:05", &seq, &t), 0);
        assert_int_equal(seq, -1);
        assert_int_equal(t, (int64_t)mktime(&tm));
        assert_int_equal(restore_parse_point("2026-11-21T14:02:05", &seq, &t), 0);
        assert_int_equal(t, (int64_t)mktime(&tm));
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        assert_int_equal(restore_parse_point("2026-11-21 14:02", &seq, &t), 0);
        assert_int_equal(t, (int64_t)mktime(&tm));
        tm.tm_hour = tm.tm_min = 0;
        tm.tm_isdst = -1;
        assert_int_equal(restore_parse_point("2026-11-21", &seq, &t), 0);
        assert_int_equal(t, (int64_t)mktime(&tm));
        assert_int_equal(restore_parse_point("2026-02-30", &seq, &t), -EINVAL);
        assert_int_equal(restore_parse_point("2026-11-21 25:00", &seq, &t), -EINVAL);
        assert_int_equal(restore_parse_point("yesterday", &seq, &t), -EINVAL);
        assert_int_equal(restore_parse_point("12a", &seq, &t), -EINVAL);
        assert_int_equal(restore_parse_point("2026-11-21 14:02 x", &seq, &t), -EINVAL);
}

static void test_sources(void **state)
{
        struct fix *f = *state;
        struct backup_set set = {0}, again = {0};
        char docs[1300], other[1300], clash[1400], state_dir[1300], rel[64], cwd[4096];
        char *abs = NULL, **names = NULL;
        size_t n = 0;

        pathf(docs, sizeof(docs), f->src, "docs");
        pathf(other, sizeof(other), f->top, "other");
        pathf(clash, sizeof(clash), other, "docs");
        assert_int_equal(mkdir(docs, 0755), 0);
        assert_int_equal(mkdir(other, 0755), 0);
        assert_int_equal(mkdir(clash, 0755), 0);
        assert_int_equal(backup_set_load(&f->cfg, "phone", &set), 0);
        assert_false(set.exists);
        assert_int_equal(set.nsources, 0);

        /* a relative path is resolved; adding it twice keeps one */
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(f->src), 0);
        snprintf(rel, sizeof(rel), "./docs/../docs");
        assert_int_equal(backup_set_add(&set, rel, &abs), 0);
        assert_string_equal(abs, docs);
        free(abs);
        assert_int_equal(chdir(cwd), 0);
        assert_int_equal(backup_set_add(&set, docs, NULL), 0);
        assert_int_equal(set.nsources, 1);
        /* another folder named docs would land in the same place */
        assert_int_equal(backup_set_add(&set, clash, NULL), -EEXIST);
        assert_int_equal(backup_set_add(&set, other, NULL), 0);
        assert_int_equal(backup_set_add(&set, "nope", NULL), -ENOENT);
        assert_int_equal(backup_set_add(&set, "/", NULL), -EINVAL);
        pathf(state_dir, sizeof(state_dir), f->linked, ".ferry");
        assert_int_equal(backup_set_add(&set, state_dir, NULL), -EINVAL);
        assert_int_equal(set.nsources, 2);

        assert_int_equal(backup_set_save(&f->cfg, &set), 0);
        assert_int_equal(backup_set_load(&f->cfg, "phone", &again), 0);
        assert_true(again.exists);
        assert_int_equal(again.nsources, 2);
        assert_string_equal(again.sources[0], docs);
        assert_string_equal(again.sources[1], other);
        backup_set_free(&again);
        free(set.name);
        set.name = strdup("laptop");
        assert_int_equal(backup_set_save(&f->cfg, &set), 0);
        assert_int_equal(backup_sets_local(&f->cfg, &names, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(names[0], "laptop");
        assert_string_equal(names[1], "phone");
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        backup_set_free(&set);
        /* a set file that is not one */
        pathf(state_dir, sizeof(state_dir), f->linked, ".ferry/backup-bad.json");
        write_file(state_dir, "[1, 2]");
        assert_int_equal(backup_set_load(&f->cfg, "bad", &set), -EINVAL);
        assert_int_equal(backup_set_load(&f->cfg, "a/b", &set), -EINVAL);
}

/* Records path in the set's index as backed up with content text (a file)
 * or as a directory (text NULL), as a backup would have. */
static void indexed(struct fix *f, const char *name, const char *path, const char *text,
                    int64_t seq)
{
        struct index_entry e = {0};
        struct index *idx = NULL;
        char db[1300];

        snprintf(db, sizeof(db), "%s/.ferry/backup-%s.db", f->linked, name);
        assert_int_equal(index_open(db, &idx), 0);
        e.path = (char *)path;
        e.kind = text ? KIND_FILE : KIND_DIR;
        e.size = text ? strlen(text) : 0;
        e.mode = text ? 0644 : 0;
        if (text)
                assert_int_equal(manifest_file_hash_of(text, strlen(text), &e.hash), 0);
        e.seq = seq;
        e.mtime_ns = 1;
        assert_int_equal(index_put(idx, &e, NULL), 0);
        assert_int_equal(index_state_set(idx, "backup_last_ns", 1763733725000000000LL), 0);
        index_close(idx);
}

/* The report's line for path: "new", "modified", ... or NULL. */
static const char *what_of(const struct backup_report *rep, const char *path, const char **from)
{
        static const char *const names[] = {"new", "modified", "deleted", "renamed"};

        for (size_t i = 0; i < rep->n; i++)
                if (!strcmp(rep->items[i].path, path)) {
                        if (from)
                                *from = rep->items[i].from;
                        return names[rep->items[i].what];
                }
        return NULL;
}

static void test_check(void **state)
{
        struct fix *f = *state;
        struct backup_report rep = {0};
        struct backup_set set = {0};
        char p[1400], notes[1300], gone[1300];
        const char *from = NULL;

        pathf(p, sizeof(p), f->src, "docs");
        assert_int_equal(mkdir(p, 0755), 0);
        pathf(p, sizeof(p), f->src, "docs/a.txt");
        write_file(p, "changed");
        pathf(p, sizeof(p), f->src, "docs/moved.txt");
        write_file(p, "same content");
        pathf(p, sizeof(p), f->src, "docs/b.txt");
        write_file(p, "brand new");
        pathf(p, sizeof(p), f->src, "docs/.DS_Store"); /* an ignore default */
        write_file(p, "x");
        pathf(p, sizeof(p), f->src, "docs/inner"); /* a linked folder inside */
        assert_int_equal(mkdir(p, 0755), 0);
        pathf(p, sizeof(p), f->src, "docs/inner/.ferry");
        assert_int_equal(mkdir(p, 0700), 0);
        pathf(p, sizeof(p), f->src, "docs/inner/.ferry/config.json");
        write_file(p, "{\"token\": \"secret\"}");
        pathf(notes, sizeof(notes), f->src, "notes.txt");
        write_file(notes, "notes");
        pathf(gone, sizeof(gone), f->src, "photos");
        assert_int_equal(mkdir(gone, 0755), 0);

        assert_int_equal(backup_set_load(&f->cfg, "phone", &set), 0);
        pathf(p, sizeof(p), f->src, "docs");
        assert_int_equal(backup_set_add(&set, p, NULL), 0);
        assert_int_equal(backup_set_add(&set, notes, NULL), 0);
        assert_int_equal(backup_set_add(&set, gone, NULL), 0);
        assert_int_equal(rmdir(gone), 0);
        /* the last backup had docs/, a.txt (other content), old.txt (gone
         * since, renamed to moved.txt), deleted.txt, notes.txt as is, and
         * two files of photos/ (now missing) */
        indexed(f, "phone", "docs", NULL, 1);
        indexed(f, "phone", "docs/a.txt", "original", 2);
        indexed(f, "phone", "docs/deleted.txt", "bye", 3);
        indexed(f, "phone", "photos", NULL, 4);
        indexed(f, "phone", "photos/p1.jpg", "jpeg", 5);
        assert_int_equal(backup_check(&f->cfg, &set, &rep), 0);
        assert_int_equal(rep.last_ns, 1763733725000000000LL);
        assert_string_equal(what_of(&rep, "docs/a.txt", NULL), "modified");
        assert_string_equal(what_of(&rep, "docs/b.txt", NULL), "new");
        assert_string_equal(what_of(&rep, "docs/moved.txt", NULL), "new");
        assert_string_equal(what_of(&rep, "docs/inner", NULL), "new");
        assert_string_equal(what_of(&rep, "docs/deleted.txt", NULL), "deleted");
        assert_string_equal(what_of(&rep, "notes.txt", NULL), "new");
        assert_null(what_of(&rep, "docs/.DS_Store", NULL));
        assert_null(what_of(&rep, "docs/inner/.ferry", NULL));
        assert_null(what_of(&rep, "docs/inner/.ferry/config.json", NULL));
        assert_null(what_of(&rep, "photos/p1.jpg", NULL)); /* missing, not deleted */
        assert_int_equal(rep.n, 6);
        assert_int_equal(rep.count[BACKUP_NEW], 4);
        assert_int_equal(rep.count[BACKUP_MODIFIED], 1);
        assert_int_equal(rep.count[BACKUP_DELETED], 1);
        assert_int_equal(rep.count[BACKUP_RENAMED], 0);
        assert_int_equal(rep.bytes, strlen("changed") + strlen("same content") +
                                        strlen("brand new") + strlen("notes"));
        assert_int_equal(rep.nmissing, 1);
        assert_string_equal(rep.missing[0], gone);
        backup_report_free(&rep);

        /* a file moved since the last backup is a rename (mode and mtime
         * kept, as mv does) */
        {
                struct index_entry e = {0};
                struct index *idx = NULL;
                struct stat st;
                char db[1300];

                pathf(p, sizeof(p), f->src, "docs/moved.txt");
                assert_int_equal(stat(p, &st), 0);
                snprintf(db, sizeof(db), "%s/.ferry/backup-phone.db", f->linked);
                assert_int_equal(index_open(db, &idx), 0);
                e.path = "docs/old.txt";
                e.kind = KIND_FILE;
                e.size = strlen("same content");
                e.mode = 0644;
                e.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
                assert_int_equal(manifest_file_hash_of("same content", e.size, &e.hash), 0);
                e.seq = 6;
                assert_int_equal(index_put(idx, &e, NULL), 0);
                index_close(idx);
        }
        assert_int_equal(backup_check(&f->cfg, &set, &rep), 0);
        assert_string_equal(what_of(&rep, "docs/moved.txt", &from), "renamed");
        assert_string_equal(from, "docs/old.txt");
        assert_null(what_of(&rep, "docs/old.txt", NULL));
        assert_int_equal(rep.count[BACKUP_RENAMED], 1);
        assert_int_equal(rep.count[BACKUP_NEW], 3);
        backup_report_free(&rep);
        backup_set_free(&set);
}

static void test_lock(void **state)
{
        struct fix *f = *state;
        struct backup_report rep = {0};
        struct backup_set set = {0};
        char p[1300];
        int fd;

        assert_int_equal(backup_set_load(&f->cfg, "phone", &set), 0);
        assert_int_equal(backup_set_add(&set, f->src, NULL), 0);
        snprintf(p, sizeof(p), "%s/.ferry/backup-phone.lock", f->linked);
        fd = open(p, O_RDWR | O_CREAT, 0600);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
        assert_int_equal(backup_check(&f->cfg, &set, &rep), -EBUSY);
        backup_report_free(&rep);
        close(fd);
        assert_int_equal(backup_check(&f->cfg, &set, &rep), 0);
        assert_int_equal(rep.n, 1); /* src/ itself, new */
        assert_int_equal(rep.last_ns, 0);
        backup_report_free(&rep);
        backup_set_free(&set);
}

static void test_notify(void **state)
{
        struct fix *f = *state;
        char bin[1300], script[1400], out[1400], want[1600], got[512] = "";
        const char *old = getenv("PATH");
        char *saved = old ? strdup(old) : NULL;
        FILE *fp;

        pathf(bin, sizeof(bin), f->top, "bin");
        assert_int_equal(mkdir(bin, 0755), 0);
        assert_int_equal(setenv("PATH", bin, 1), 0);
        assert_int_equal(backup_notify("s", "b"), 0); /* none on PATH */

        pathf(script, sizeof(script), bin, "notify-send");
        pathf(out, sizeof(out), f->top, "notified");
        snprintf(want, sizeof(want), "#!/bin/sh\nprintf '%%s|' \"$@\" > '%s'\n", out);
        write_file(script, want);
        assert_int_equal(chmod(script, 0755), 0);
        assert_int_equal(backup_notify("Ferry: backup set phone has changes", "2 new"), 1);
        fp = fopen(out, "r");
        assert_non_null(fp);
        assert_non_null(fgets(got, sizeof(got), fp));
        fclose(fp);
        assert_string_equal(got, "--app-name=ferry|Ferry: backup set phone has changes|2 new|");
        write_file(script, "#!/bin/sh\nexit 3\n");
        assert_true(backup_notify("s", "b") < 0);
        if (saved)
                setenv("PATH", saved, 1);
        free(saved);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_names),
            cmocka_unit_test(test_interval),
            cmocka_unit_test(test_points),
            cmocka_unit_test_setup_teardown(test_sources, setup, teardown),
            cmocka_unit_test_setup_teardown(test_check, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
            cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
