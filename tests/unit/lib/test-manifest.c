/* Unit tests for manifest: one-pass cutting and hashing of real files
 * (empty, small, multi-chunk, large with hashes on the helper thread, from
 * a pipe with short reads, from the current offset), the callback contract, and the JSON and blob
 * codecs with hostile input; plus kind_name/kind_parse. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "chunker.h"
#include "hash.h"
#include "manifest.h"
#include "testutil.h"

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char tmpdir[512];

static int setup(void **state)
{
        (void)state;
        return testutil_mkdtemp(tmpdir, sizeof(tmpdir), "manifest");
}

static int teardown(void **state)
{
        char p[600];

        (void)state;
        snprintf(p, sizeof(p), "%s/f", tmpdir);
        unlink(p);
        return rmdir(tmpdir);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
        uint64_t x = seed;

        for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p[i] = (uint8_t)(x >> 24);
        }
}

/* Writes data to tmpdir/f and returns it opened for reading. */
static int make_file(const uint8_t *data, size_t n)
{
        char p[600];
        int fd;

        snprintf(p, sizeof(p), "%s/f", tmpdir);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t)n);
        close(fd);
        fd = open(p, O_RDONLY);
        assert_true(fd >= 0);
        return fd;
}

struct seen {
        const uint8_t *file;
        uint64_t next_offset;
        size_t calls; /* chunks seen */
        size_t windows;
        size_t abort_at; /* 0: never; else after the window that reaches this many chunks */
};

/* Each window: the next chunks in file order, their bytes and their hashes
 * already done. */
static int check_cb(const struct manifest *m, size_t first, size_t n, uint64_t offset,
                    const uint8_t *data, void *u)
{
        struct seen *s = u;

        assert_int_equal(offset, s->next_offset);
        assert_int_equal(first, s->calls);
        assert_true(n > 0 && first + n <= m->n);
        for (size_t i = first; i < first + n; i++) {
                const struct chunk_ref *c = &m->chunks[i];
                struct hash h;

                assert_memory_equal(data, s->file + offset, c->size);
                hash_buf(data, c->size, &h);
                assert_true(hash_equal(&h, &c->hash));
                assert_true(c->has_fp && c->fp == manifest_fp(data, c->size));
                data += c->size;
                offset += c->size;
        }
        s->next_offset = offset;
        s->calls += n;
        s->windows++;
        if (s->abort_at && s->calls >= s->abort_at)
                return -ECANCELED;
        return 0;
}

/* The chunks a file of these bytes must get: the chunker's cuts over the
 * whole buffer. */
static void check_against_chunker(const struct manifest *m, const uint8_t *p, size_t n)
{
        size_t off = 0, i = 0;
        uint8_t *digests = malloc(n / CHUNK_MIN * HASH_LEN + 2 * HASH_LEN);
        struct hash whole;

        assert_non_null(digests);
        while (off < n) {
                size_t k = chunker_cut(p + off, n - off, 1);
                struct hash h;

                assert_true(i < m->n);
                hash_buf(p + off, k, &h);
                assert_int_equal(m->chunks[i].size, k);
                assert_true(hash_equal(&m->chunks[i].hash, &h));
                /* the fingerprint is that of the same bytes */
                assert_int_equal(m->chunks[i].has_fp, 1);
                assert_true(m->chunks[i].fp == manifest_fp(p + off, k));
                memcpy(digests + i * HASH_LEN, h.b, HASH_LEN);
                off += k;
                i++;
        }
        assert_int_equal(i, m->n);
        assert_int_equal(m->size, n);
        /* the file hash: SHA-256 of the chunk digests end to end */
        hash_buf(digests, i * HASH_LEN, &whole);
        assert_true(hash_equal(&whole, &m->file_hash));
        free(digests);
}

static void test_from_fd_empty(void **state)
{
        struct manifest m = MANIFEST_INIT;
        char hex[HASH_HEX_LEN + 1];
        int fd = make_file((const uint8_t *)"", 0);

        (void)state;
        assert_int_equal(manifest_from_fd(fd, &m, NULL, NULL), 0);
        assert_int_equal(m.n, 0);
        assert_int_equal(m.size, 0);
        hash_to_hex(&m.file_hash, hex);
        assert_string_equal(hex, SHA_EMPTY);
        close(fd);
        manifest_free(&m);
}

static void test_from_fd_small_and_large(void **state)
{
        size_t sizes[] = {1, CHUNK_MIN - 1, CHUNK_MAX, 3 * 1024 * 1024 + 17};
        uint8_t *p = malloc(sizes[3]);

        (void)state;
        fill_random(p, sizes[3], 21);
        for (size_t i = 0; i < 4; i++) {
                struct manifest m = MANIFEST_INIT;
                struct seen s = {p, 0, 0, 0, 0};
                int fd = make_file(p, sizes[i]);

                assert_int_equal(manifest_from_fd(fd, &m, check_cb, &s), 0);
                check_against_chunker(&m, p, sizes[i]);
                assert_int_equal(s.calls, m.n);
                assert_int_equal(s.next_offset, sizes[i]);
                if (sizes[i] < CHUNK_MIN)
                        assert_int_equal(m.n, 1);
                if (sizes[i] > 3 * CHUNK_MAX)
                        assert_true(m.n > 3);
                assert_true(s.windows >= 1 && s.windows <= m.n);
                close(fd);
                manifest_free(&m);
        }
        free(p);
}

/* Without a callback, past HASH_BG_INLINE: most chunk hashes come from the
 * helper thread, across several moves of the growing chunk list and several
 * swaps of the two read buffers; the result is the same as hashing inline. */
static void test_from_fd_large_threaded(void **state)
{
        size_t n = 9 * 1024 * 1024 + 333;
        uint8_t *p = malloc(n);
        struct manifest m = MANIFEST_INIT;
        int fd;

        (void)state;
        fill_random(p, n, 24);
        fd = make_file(p, n);
        assert_int_equal(manifest_from_fd(fd, &m, NULL, NULL), 0);
        assert_true(m.n > 64);
        check_against_chunker(&m, p, n);
        manifest_free(&m);
        /* with a window callback: the same list, handed over in several
         * windows (one per read buffer) covering every chunk once */
        {
                struct seen s = {p, 0, 0, 0, 0};

                assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
                assert_int_equal(manifest_from_fd(fd, &m, check_cb, &s), 0);
                check_against_chunker(&m, p, n);
                assert_int_equal(s.calls, m.n);
                assert_int_equal(s.next_offset, n);
                assert_true(s.windows >= 3);
        }
        close(fd);
        manifest_free(&m);
        free(p);
}

static void test_from_fd_current_offset(void **state)
{
        size_t n = 100000;
        uint8_t *p = malloc(n);
        struct manifest m = MANIFEST_INIT;
        int fd;

        (void)state;
        fill_random(p, n, 22);
        fd = make_file(p, n);
        assert_int_equal(lseek(fd, 1000, SEEK_SET), 1000);
        assert_int_equal(manifest_from_fd(fd, &m, NULL, NULL), 0);
        check_against_chunker(&m, p + 1000, n - 1000);
        close(fd);
        manifest_free(&m);
        free(p);
}

static void test_from_fd_pipe(void **state)
{
        size_t n = 2 * 1024 * 1024 + 5;
        uint8_t *p = malloc(n);
        struct manifest m = MANIFEST_INIT;
        int fds[2], status;
        pid_t pid;

        (void)state;
        fill_random(p, n, 23);
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* small writes so the reader sees many short reads */
                close(fds[0]);
                for (size_t off = 0; off < n;) {
                        size_t k = n - off < 3000 ? n - off : 3000;
                        ssize_t w = write(fds[1], p + off, k);

                        if (w <= 0)
                                _exit(1);
                        off += (size_t)w;
                }
                _exit(0);
        }
        close(fds[1]);
        assert_int_equal(manifest_from_fd(fds[0], &m, NULL, NULL), 0);
        close(fds[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        check_against_chunker(&m, p, n);
        manifest_free(&m);
        free(p);
}

static void test_from_fd_callback_abort_and_bad_fd(void **state)
{
        size_t n = 1024 * 1024;
        uint8_t *p = malloc(n);
        struct manifest m = MANIFEST_INIT;
        struct seen s = {p, 0, 0, 0, 2};
        int fd;

        (void)state;
        fill_random(p, n, 24);
        fd = make_file(p, n);
        assert_int_equal(manifest_from_fd(fd, &m, check_cb, &s), -ECANCELED);
        assert_true(s.calls >= 2);
        assert_int_equal(s.windows, 1);
        assert_int_equal(m.n, 0);
        close(fd);
        assert_int_equal(manifest_from_fd(-1, &m, NULL, NULL), -EBADF);
        assert_int_equal(m.n, 0);
        manifest_free(&m);
        free(p);
}

static void make_manifest(struct manifest *m, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                struct hash h;
                uint32_t size = (uint32_t)(i * 1000 % CHUNK_MAX) + 1;

                hash_buf(&i, sizeof(i), &h);
                assert_int_equal(manifest_add(m, &h, size), 0);
        }
}

static void assert_same_chunks(const struct manifest *a, const struct manifest *b)
{
        assert_int_equal(a->n, b->n);
        assert_int_equal(a->size, b->size);
        for (size_t i = 0; i < a->n; i++) {
                assert_int_equal(a->chunks[i].size, b->chunks[i].size);
                assert_true(hash_equal(&a->chunks[i].hash, &b->chunks[i].hash));
        }
}

static void test_add_sums(void **state)
{
        struct manifest m = MANIFEST_INIT;

        (void)state;
        make_manifest(&m, 100);
        assert_int_equal(m.n, 100);
        assert_true(m.cap >= 100);
        uint64_t sum = 0;
        for (size_t i = 0; i < m.n; i++)
                sum += m.chunks[i].size;
        assert_int_equal(m.size, sum);
        manifest_free(&m);
        assert_null(m.chunks);
        assert_int_equal(m.n, 0);
        assert_int_equal(m.size, 0);
}

static void test_json_roundtrip(void **state)
{
        struct manifest m = MANIFEST_INIT, back = MANIFEST_INIT;
        json_t *j;
        char *text;

        (void)state;
        make_manifest(&m, 50);
        j = manifest_to_json(&m);
        assert_non_null(j);
        assert_int_equal(json_array_size(j), 50);
        text = json_dumps(j, JSON_COMPACT);
        assert_non_null(text);
        assert_int_equal(strncmp(text, "[[\"", 3), 0);
        free(text);
        memset(&back.file_hash, 7, sizeof(back.file_hash));
        assert_int_equal(manifest_from_json(j, &back), 0);
        assert_same_chunks(&m, &back);
        assert_int_equal(back.file_hash.b[0], 7); /* left alone */
        json_decref(j);
        manifest_free(&back);
        /* empty */
        manifest_free(&m);
        j = manifest_to_json(&m);
        assert_int_equal(json_array_size(j), 0);
        assert_int_equal(manifest_from_json(j, &back), 0);
        assert_int_equal(back.n, 0);
        json_decref(j);
        manifest_free(&back);
}

static void json_bad(const char *text)
{
        struct manifest m = MANIFEST_INIT;
        json_error_t e;
        json_t *j = json_loads(text, JSON_DECODE_ANY, &e);

        if (!j)
                fail_msg("test input does not parse: %s", text);
        if (manifest_from_json(j, &m) != -EINVAL)
                fail_msg("accepted bad manifest %s", text);
        assert_int_equal(m.n, 0);
        assert_null(m.chunks);
        json_decref(j);
}

#define H64 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_json_hostile(void **state)
{
        (void)state;
        json_bad("{}");
        json_bad("\"x\"");
        json_bad("null");
        json_bad("[1]");
        json_bad("[[]]");
        json_bad("[[\"" H64 "\"]]");
        json_bad("[[\"" H64 "\", 1, 2]]");
        json_bad("[[1, \"" H64 "\"]]");
        json_bad("[[\"" H64 "0\", 1]]");
        json_bad("[[\"" H64 "\"], [\"" H64 "\", 1]]");
        json_bad("[[\"zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\", 1]]");
        json_bad("[[\"" H64 "\", 0]]");
        json_bad("[[\"" H64 "\", -1]]");
        json_bad("[[\"" H64 "\", 262145]]");
        json_bad("[[\"" H64 "\", 9999999999999]]");
        json_bad("[[\"" H64 "\", 1.5]]");
        json_bad("[[\"" H64 "\", \"1\"]]");
        json_bad("[[\"" H64 "\", null]]");
        json_bad("[[\"" H64 "\", 1], [\"" H64 "\", 0]]");
}

static void test_json_accepts_limits(void **state)
{
        struct manifest m = MANIFEST_INIT;
        json_t *j = json_loads("[[\"" H64 "\", 1], [\"" H64 "\", 262144]]", 0, NULL);

        (void)state;
        assert_non_null(j);
        assert_int_equal(manifest_from_json(j, &m), 0);
        assert_int_equal(m.n, 2);
        assert_int_equal(m.size, 1 + CHUNK_MAX);
        json_decref(j);
        manifest_free(&m);
}

static void test_blob_roundtrip(void **state)
{
        struct manifest m = MANIFEST_INIT, back = MANIFEST_INIT;
        uint8_t *blob = NULL;
        size_t len = 0;

        (void)state;
        make_manifest(&m, 77);
        assert_int_equal(manifest_to_blob(&m, &blob, &len), 0);
        assert_int_equal(len, 77 * 36);
        /* big-endian size after the hash */
        assert_int_equal(blob[35], m.chunks[0].size & 0xff);
        assert_int_equal(manifest_from_blob(blob, len, &back), 0);
        assert_same_chunks(&m, &back);
        free(blob);
        manifest_free(&back);
        manifest_free(&m);
        assert_int_equal(manifest_to_blob(&m, &blob, &len), 0);
        assert_int_equal(len, 0);
        assert_int_equal(manifest_from_blob(blob, len, &back), 0);
        assert_int_equal(back.n, 0);
        free(blob);
}

static void test_blob_hostile(void **state)
{
        struct manifest m = MANIFEST_INIT;
        uint8_t blob[72];

        (void)state;
        memset(blob, 0, sizeof(blob));
        blob[35] = 1;
        blob[71] = 1;
        assert_int_equal(manifest_from_blob(blob, 72, &m), 0);
        manifest_free(&m);
        assert_int_equal(manifest_from_blob(blob, 71, &m), -EINVAL);
        assert_int_equal(manifest_from_blob(blob, 37, &m), -EINVAL);
        blob[71] = 0; /* size 0 */
        assert_int_equal(manifest_from_blob(blob, 72, &m), -EINVAL);
        assert_int_equal(m.n, 0);
        blob[68] = 0xff; /* size way over CHUNK_MAX */
        assert_int_equal(manifest_from_blob(blob, 72, &m), -EINVAL);
        blob[68] = 0;
        blob[69] = 0x04; /* 0x040000 = CHUNK_MAX: allowed */
        assert_int_equal(manifest_from_blob(blob, 72, &m), 0);
        assert_int_equal(m.chunks[1].size, CHUNK_MAX);
        manifest_free(&m);
        blob[71] = 1; /* CHUNK_MAX + 1 */
        assert_int_equal(manifest_from_blob(blob, 72, &m), -EINVAL);
        assert_null(m.chunks);
}

static void test_kinds(void **state)
{
        (void)state;
        assert_string_equal(kind_name(KIND_FILE), "file");
        assert_string_equal(kind_name(KIND_DIR), "dir");
        assert_string_equal(kind_name(KIND_SYMLINK), "symlink");
        assert_non_null(kind_name(99));
        assert_int_equal(kind_parse("file"), KIND_FILE);
        assert_int_equal(kind_parse("dir"), KIND_DIR);
        assert_int_equal(kind_parse("symlink"), KIND_SYMLINK);
        assert_int_equal(kind_parse("File"), -EINVAL);
        assert_int_equal(kind_parse(""), -EINVAL);
        assert_int_equal(kind_parse("directory"), -EINVAL);
        assert_int_equal(kind_parse(NULL), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_from_fd_empty),
            cmocka_unit_test(test_from_fd_small_and_large),
            cmocka_unit_test(test_from_fd_large_threaded),
            cmocka_unit_test(test_from_fd_current_offset),
            cmocka_unit_test(test_from_fd_pipe),
            cmocka_unit_test(test_from_fd_callback_abort_and_bad_fd),
            cmocka_unit_test(test_add_sums),
            cmocka_unit_test(test_json_roundtrip),
            cmocka_unit_test(test_json_hostile),
            cmocka_unit_test(test_json_accepts_limits),
            cmocka_unit_test(test_blob_roundtrip),
            cmocka_unit_test(test_blob_hostile),
            cmocka_unit_test(test_kinds),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
