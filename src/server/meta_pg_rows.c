/* meta_pg_rows: reading the rows of the PostgreSQL metadata backend (see
 * meta_pg.h): results come back in text form, so integers are parsed,
 * booleans read as 1/0, and bytea values ("\\x" and hex digits) decoded;
 * entries are filled from MPG_ENTRY_COLS; mpg_query_int reads the one
 * integer a query returns. Split from meta_pg.c, which runs the
 * statements, to keep each file to one concern.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta_pg.h"

int64_t mpg_int(const PGresult *res, int row, int col)
{
        const char *v = PQgetvalue(res, row, col);

        if (*v == 't') /* a boolean */
                return 1;
        return strtoll(v, NULL, 10);
}

const char *mpg_text(const PGresult *res, int row, int col)
{
        return PQgetvalue(res, row, col); /* "" for null */
}

int mpg_null(const PGresult *res, int row, int col)
{
        return PQgetisnull(res, row, col);
}

static int nibble(char ch)
{
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

/* Decodes a bytea in hex text form ("\x..."), whose length is n bytes,
 * into dst. 0, or -1 when it is not that. */
static int unhex(const char *s, size_t n, uint8_t *dst)
{
        size_t i;
        int hi, lo;

        if (s[0] != '\\' || s[1] != 'x' || strlen(s) != 2 + 2 * n)
                return -1;
        for (i = 0; i < n; i++) {
                hi = nibble(s[2 + 2 * i]);
                lo = nibble(s[3 + 2 * i]);
                if (hi < 0 || lo < 0)
                        return -1;
                dst[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

int mpg_hash(const PGresult *res, int row, int col, struct hash *h)
{
        return !mpg_null(res, row, col) && unhex(PQgetvalue(res, row, col), HASH_LEN, h->b) == 0;
}

int mpg_bytea(const PGresult *res, int row, int col, uint8_t **out, size_t *len)
{
        const char *v = PQgetvalue(res, row, col);
        unsigned char *u;
        size_t n;

        *out = NULL;
        *len = 0;
        if (mpg_null(res, row, col))
                return 0;
        n = strlen(v) >= 2 ? (strlen(v) - 2) / 2 : 0;
        if (n && (*out = malloc(n)) && unhex(v, n, *out) == 0) {
                *len = n;
                return 0;
        }
        free(*out);
        *out = NULL;
        if (!n && strcmp(v, "\\x") == 0)
                return 0; /* empty */
        /* Not hex (bytea_output = escape): let libpq decode it. */
        u = PQunescapeBytea((const unsigned char *)v, &n);
        if (!u)
                return -ENOMEM;
        if (n && (*out = malloc(n))) {
                memcpy(*out, u, n);
                *len = n;
        }
        PQfreemem(u);
        return n && !*out ? -ENOMEM : 0;
}

void mpg_copy_text(char *dst, size_t cap, const PGresult *res, int row, int col)
{
        snprintf(dst, cap, "%s", PQgetvalue(res, row, col));
}

int mpg_read_entry(const PGresult *res, int row, int col, struct meta_entry *e)
{
        memset(e, 0, sizeof(*e));
        if (!(e->path = strdup(mpg_text(res, row, col))))
                goto nomem;
        e->seq = mpg_int(res, row, col + 1);
        e->deleted = mpg_int(res, row, col + 2) != 0;
        e->kind = (int)mpg_int(res, row, col + 3);
        e->size = (uint64_t)mpg_int(res, row, col + 4);
        e->mtime_ns = mpg_int(res, row, col + 5);
        e->mode = (uint32_t)mpg_int(res, row, col + 6);
        e->has_hash = mpg_hash(res, row, col + 7, &e->hash);
        if (!mpg_null(res, row, col + 8) && !(e->target = strdup(mpg_text(res, row, col + 8))))
                goto nomem;
        mpg_copy_text(e->device, sizeof(e->device), res, row, col + 9);
        if (mpg_bytea(res, row, col + 10, &e->chunks, &e->chunks_len) < 0)
                goto nomem;
        e->time = mpg_int(res, row, col + 11);
        return 0;
nomem:
        meta_entry_clear(e);
        return -ENOMEM;
}

int mpg_each_entry(const PGresult *res, meta_entry_cb cb, void *userdata)
{
        struct meta_entry e;
        int i, r = 0;

        for (i = 0; r == 0 && i < PQntuples(res); i++) {
                r = mpg_read_entry(res, i, 0, &e);
                if (r < 0)
                        break;
                r = cb(&e, userdata);
                meta_entry_clear(&e);
        }
        return r > 0 ? 0 : r;
}

int mpg_query_int(struct meta *m, const char *what, int64_t dflt, int64_t *v, const char *sql,
                  const char *fmt, ...)
{
        PGresult *res;
        int64_t n;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = mpg_vexec(m, what, &res, &n, sql, fmt, ap);
        va_end(ap);
        if (r < 0)
                return r;
        *v = n > 0 && !mpg_null(res, 0, 0) ? mpg_int(res, 0, 0) : dflt;
        PQclear(res);
        return 0;
}
