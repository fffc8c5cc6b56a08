/* srvtest: helpers the ferryd unit tests share — a private temporary
 * directory under $TMPDIR that is removed afterwards, a chunk hash, and the
 * metadata store a test runs on: SQLite in the directory by default, or,
 * with FERRY_TEST_METADATA=pg, a fresh PostgreSQL database on the server
 * FERRY_TEST_PG names (a conninfo URI as scripts/pg.sh prints), so that
 * the same tests prove both backends. */
#ifndef FERRY_SRVTEST_H
#define FERRY_SRVTEST_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "meta.h"

static inline char *srvtest_tmpdir(void)
{
        const char *base = getenv("TMPDIR");
        char tmpl[4096];

        snprintf(tmpl, sizeof(tmpl), "%s/ferry-srvtest-XXXXXX", base && *base ? base : "/tmp");
        return strdup(mkdtemp(tmpl) ? tmpl : "");
}

static inline int srvtest_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
        (void)st;
        (void)flag;
        (void)f;
        return remove(p);
}

static inline void srvtest_rmtree(char *dir)
{
        if (dir && *dir)
                nftw(dir, srvtest_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
}

/* The SHA-256 of a string, the way a chunk is named. */
static inline struct hash srvtest_hash(const char *s)
{
        struct hash h;

        hash_buf(s, strlen(s), &h);
        return h;
}

/* Runs sql on the server of FERRY_TEST_PG (its own database). 0, or -1
 * with the message printed; *state (may be NULL): the SQLSTATE. */
static inline int srvtest_pg_admin(const char *sql, char state[6])
{
        PGconn *c = PQconnectdb(getenv("FERRY_TEST_PG"));
        PGresult *res = PQexec(c, sql);
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;

        if (state)
                snprintf(state, 6, "%s", st ? st : "");
        if (r < 0 && (!st || strcmp(st, "42P04") != 0))
                fprintf(stderr, "srvtest: %s: %s%s", sql, PQerrorMessage(c),
                        PQstatus(c) == CONNECTION_OK ? "" : "(is FERRY_TEST_PG's server up?)\n");
        PQclear(res);
        PQfinish(c);
        return r;
}

/* NULL unless FERRY_TEST_METADATA=pg; then a new, empty database on the
 * server of FERRY_TEST_PG, as a URI (malloc'd; srvtest_metadata_drop()
 * drops and frees it). Exits 77 (a skip, for meson) when FERRY_TEST_PG is
 * unset, and fails (exit 1) when the server cannot be used. */
static inline char *srvtest_metadata(void)
{
        const char *mode = getenv("FERRY_TEST_METADATA"), *pg = getenv("FERRY_TEST_PG");
        const char *host, *slash, *query;
        static unsigned counter; /* one per test file: a taken name is retried */
        char sql[128], name[64], state[6], *uri;
        size_t len;
        int tries;

        if (!mode || strcmp(mode, "pg") != 0)
                return NULL;
        if (!pg || !*pg) {
                fprintf(stderr, "SKIP: FERRY_TEST_METADATA=pg but FERRY_TEST_PG is unset: no"
                                " PostgreSQL to test on (start one with scripts/pg.sh)\n");
                exit(77);
        }
        for (tries = 0; tries < 100; tries++) {
                snprintf(name, sizeof(name), "ferry_t_%d_%u", (int)getpid(), counter++);
                snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
                if (srvtest_pg_admin(sql, state) == 0)
                        break;
                if (strcmp(state, "42P04") != 0) /* not "exists already" */
                        exit(1);
        }
        /* FERRY_TEST_PG with its database replaced by name. */
        host = strstr(pg, "://");
        host = host ? host + 3 : pg;
        slash = strchr(host, '/');
        query = strchr(host, '?');
        if (!slash || (query && query < slash))
                slash = query ? query : host + strlen(host);
        len = (size_t)(slash - pg) + 1 + strlen(name) + (query ? strlen(query) : 0) + 1;
        uri = malloc(len);
        if (!uri)
                exit(1);
        snprintf(uri, len, "%.*s/%s%s", (int)(slash - pg), pg, name, query ? query : "");
        return uri;
}

/* Drops the database of srvtest_metadata() (NULL: nothing) and frees uri. */
static inline void srvtest_metadata_drop(char *uri)
{
        char sql[128];
        const char *name;
        size_t n;

        if (!uri)
                return;
        name = strstr(uri, "/ferry_t_") + 1;
        n = strcspn(name, "?");
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %.*s WITH (FORCE)", (int)n, name);
        srvtest_pg_admin(sql, NULL);
        free(uri);
}

/* Opens the test's metadata store: *uri = srvtest_metadata(), then the
 * PostgreSQL database *uri, or SQLite at dir/meta.db when *uri is NULL.
 * 0 or -errno. */
static inline int srvtest_meta_open(const char *dir, char **uri, struct meta **out)
{
        char path[4200];

        *uri = srvtest_metadata();
        if (*uri)
                return meta_pg_open(*uri, out);
        snprintf(path, sizeof(path), "%s/meta.db", dir);
        return meta_sqlite_open(path, out);
}

#endif
