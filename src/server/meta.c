/* meta: helpers shared by every metadata backend (see meta.h): freeing and
 * copying entries, so that backends only deal with rows. */
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
