/* chunkfix: see chunkfix.h. */
#include "chunkfix.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "frame.h"
#include "path.h"

void chunkfix_init(struct chunkfix *cf, size_t len, uint64_t seed, const char *dir)
{
        char *p = path_join(dir, "chunkfix.src");
        uint64_t off = 0, rnd = seed;
        int fd;

        memset(cf, 0, sizeof(*cf));
        cf->len = len;
        cf->data = malloc(len);
        assert_non_null(cf->data);
        assert_non_null(p);
        for (size_t i = 0; i < len; i++) { /* no repeats: every chunk distinct */
                rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
                cf->data[i] = (uint8_t)(rnd >> 56);
        }
        fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, cf->data, len), (ssize_t)len);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(manifest_from_fd(fd, &cf->m, NULL, NULL), 0);
        close(fd);
        unlink(p);
        free(p);
        cf->offs = calloc(cf->m.n ? cf->m.n : 1, sizeof(*cf->offs));
        assert_non_null(cf->offs);
        for (size_t i = 0; i < cf->m.n; i++) {
                cf->offs[i] = off;
                off += cf->m.chunks[i].size;
        }
}

size_t chunkfix_find(const struct chunkfix *cf, const struct hash *h)
{
        for (size_t i = 0; i < cf->m.n; i++)
                if (hash_equal(&cf->m.chunks[i].hash, h))
                        return i;
        return SIZE_MAX;
}

void chunkfix_frame(const struct chunkfix *cf, struct buf *out, const struct hash *h, size_t k,
                    int compress)
{
        assert_true(k < cf->m.n);
        assert_int_equal(
            frame_append(out, h, cf->data + cf->offs[k], cf->m.chunks[k].size, compress), 0);
}

int chunkfix_fetch(struct chunkfix *cf, const char *body, struct buf *out, size_t compress_every)
{
        json_t *j = json_loads(body, 0, NULL), *v;
        size_t i;

        if (!j)
                return 404;
        json_array_foreach(json_object_get(j, "hashes"), i, v)
        {
                struct hash h;
                size_t k;

                if (hash_from_hex(json_string_value(v), &h) < 0 ||
                    (k = chunkfix_find(cf, &h)) == SIZE_MAX) {
                        json_decref(j);
                        return 404;
                }
                cf->asked++;
                cf->asked_even += k % 2 == 0;
                chunkfix_frame(cf, out, &h, k, compress_every && k % compress_every == 0);
        }
        json_decref(j);
        return 200;
}

void chunkfix_free(struct chunkfix *cf)
{
        manifest_free(&cf->m);
        free(cf->offs);
        free(cf->data);
        memset(cf, 0, sizeof(*cf));
}
