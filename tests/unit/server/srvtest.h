/* srvtest: helpers the ferryd unit tests share — a private temporary
 * directory under $TMPDIR that is removed afterwards, and a chunk hash. */
#ifndef FERRY_SRVTEST_H
#define FERRY_SRVTEST_H

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"

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

#endif
