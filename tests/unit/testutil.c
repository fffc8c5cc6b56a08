/* testutil: temporary folders for the unit tests (see testutil.h). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int testutil_mkdtemp(char *out, size_t cap, const char *name)
{
        const char *t = getenv("TMPDIR");
        int n;

        n = snprintf(out, cap, "%s/ferry-%s-XXXXXX", t && *t ? t : "/tmp", name);
        if (n < 0 || (size_t)n >= cap)
                return -ENAMETOOLONG;
        return mkdtemp(out) ? 0 : -errno;
}

char *testutil_mkdtemp_alloc(const char *name)
{
        char buf[4096];

        if (testutil_mkdtemp(buf, sizeof(buf), name) < 0)
                return NULL;
        return strdup(buf);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

int testutil_rm_rf(const char *path)
{
        return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

int testutil_count_names(const char *dir, const char *prefix, int (*skip)(const char *name))
{
        struct dirent *de;
        DIR *d = opendir(dir);
        int n = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d)) != NULL)
                if (!strncmp(de->d_name, prefix, strlen(prefix)) && !(skip && skip(de->d_name)))
                        n++;
        closedir(d);
        return n;
}
