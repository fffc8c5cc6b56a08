/* meta: helpers shared by every metadata backend (see meta.h): choosing a
 * backend from its name, freeing and copying entries, so that backends
 * only deal with rows. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "meta.h"

void meta_entry_clear(struct meta_entry *e)
{
        free(e->path);
        free(e->target);
        free(e->chunks);
        memset(e, 0, sizeof(*e));
}

int meta_entry_copy(struct meta_entry *dst, const struct meta_entry *src)
{
        struct meta_entry t = *src;
        int r = -ENOMEM;

        t.path = NULL;
        t.target = NULL;
        t.chunks = NULL;
        if (src->path && !(t.path = strdup(src->path)))
                goto out;
        if (src->target && !(t.target = strdup(src->target)))
                goto out;
        if (src->chunks && src->chunks_len) {
                t.chunks = malloc(src->chunks_len);
                if (!t.chunks)
                        goto out;
                memcpy(t.chunks, src->chunks, src->chunks_len);
        } else {
                t.chunks_len = 0;
        }
        *dst = t;
        return 0;
out:
        meta_entry_clear(&t);
        return r;
}

static int is_pg(const char *spec)
{
        return strncmp(spec, "postgresql://", 13) == 0 || strncmp(spec, "postgres://", 11) == 0;
}

int meta_is_shared(const char *spec)
{
        return spec && is_pg(spec);
}

int meta_open(const char *spec, const char *data_dir, struct meta **out)
{
        char path[PATH_MAX];

        if (!spec) {
                if (snprintf(path, sizeof(path), "%s/meta.db", data_dir) >= (int)sizeof(path))
                        return err_set(-ENAMETOOLONG, "data directory path too long");
                return meta_sqlite_open(path, out);
        }
        if (strncmp(spec, "sqlite:", 7) == 0 && spec[7])
                return meta_sqlite_open(spec + 7, out);
        if (is_pg(spec))
                return meta_pg_open(spec, out);
        return err_set(-EINVAL, "--metadata must be sqlite:PATH or a postgresql:// URI, not \"%s\"",
                       spec);
}
