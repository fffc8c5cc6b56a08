/* patch: chunk-list patches, diffed, applied and coded (see patch.h).
 *
 * The diff is a common prefix and a common suffix, one linear pass each:
 * it never compares every chunk with every other, so a 16-million-chunk
 * list costs what reading it costs. The decoder treats its input as
 * hostile (shape, hashes, sizes); whether the indices fit a base list is
 * patch_apply's check, made when the base is known.
 */
#include "patch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "err.h"

/* Below this many chunks a list is sent whole: a patch cannot save more
 * than a few hundred bytes there. */
#define PATCH_MIN_CHUNKS 4

static int same_chunk(const struct chunk_ref *a, const struct chunk_ref *b)
{
        return a->size == b->size && hash_equal(&a->hash, &b->hash);
}

void patch_diff(const struct manifest *base, const struct manifest *cur, struct patch_region *d)
{
        size_t p = 0, s = 0, lim = base->n < cur->n ? base->n : cur->n;

        while (p < lim && same_chunk(&base->chunks[p], &cur->chunks[p]))
                p++;
        while (s < lim - p &&
               same_chunk(&base->chunks[base->n - 1 - s], &cur->chunks[cur->n - 1 - s]))
                s++;
        d->start = p;
        d->del = base->n - p - s;
        d->ins = cur->n - p - s;
}

int patch_worth(const struct manifest *cur, const struct patch_region *d)
{
        return cur->n >= PATCH_MIN_CHUNKS && d->ins + 2 < cur->n;
}

int patch_apply(const struct manifest *base, const struct patch_edit *edits, size_t n,
                struct manifest *out)
{
        uint64_t at = 0; /* next base chunk to copy */
        size_t i, k;
        int r;

        for (i = 0; i < n; i++) {
                const struct patch_edit *ed = &edits[i];

                if (ed->start < at || ed->start > base->n || ed->del > base->n - ed->start)
                        return err_set(-EINVAL,
                                       "patch[%zu]: edit out of range or order (start %llu, "
                                       "delete %llu, %zu base chunks)",
                                       i, (unsigned long long)ed->start,
                                       (unsigned long long)ed->del, base->n);
                if (out->n + (ed->start - at) + ed->ins.n > MANIFEST_MAX_CHUNKS)
                        return err_set(-EINVAL, "too many chunks");
                for (; at < ed->start; at++)
                        if ((r = manifest_add(out, &base->chunks[at].hash, base->chunks[at].size)) <
                            0)
                                return r;
                for (k = 0; k < ed->ins.n; k++)
                        if ((r = manifest_add(out, &ed->ins.chunks[k].hash,
                                              ed->ins.chunks[k].size)) < 0)
                                return r;
                at += ed->del;
        }
        if (out->n + (base->n - at) > MANIFEST_MAX_CHUNKS)
                return err_set(-EINVAL, "too many chunks");
        for (; at < base->n; at++)
                if ((r = manifest_add(out, &base->chunks[at].hash, base->chunks[at].size)) < 0)
                        return r;
        return 0;
}

json_t *patch_to_json(const struct manifest *cur, const struct patch_region *d)
{
        struct manifest ins = MANIFEST_INIT;

        ins.chunks = cur->chunks + d->start; /* a view: not freed */
        ins.n = d->ins;
        return json_pack("[[I, I, o]]", (json_int_t)d->start, (json_int_t)d->del,
                         manifest_to_json(&ins));
}

void patch_free(struct patch_edit *edits, size_t n)
{
        for (size_t k = 0; edits && k < n; k++)
                manifest_free(&edits[k].ins);
        free(edits);
}

int patch_from_json(const json_t *v, struct patch_edit **edits, size_t *n)
{
        struct patch_edit *p = NULL;
        const json_t *ed;
        size_t k, got = 0;
        int r = 0;

        if (!json_is_array(v))
                return err_set(-EINVAL, "patch must be an array");
        if (json_array_size(v) > MANIFEST_MAX_CHUNKS)
                return err_set(-EINVAL, "patch: too many edits");
        p = calloc(json_array_size(v) ? json_array_size(v) : 1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        for (k = 0; k < json_array_size(v); k++) {
                const json_t *st, *del;

                ed = json_array_get(v, k);
                st = json_array_get(ed, 0);
                del = json_array_get(ed, 1);
                if (!json_is_array(ed) || json_array_size(ed) != 3 || !json_is_integer(st) ||
                    json_integer_value(st) < 0 || !json_is_integer(del) ||
                    json_integer_value(del) < 0) {
                        r = err_set(-EINVAL,
                                    "patch[%zu] must be [start, delete_count, chunks] with "
                                    "non-negative integers",
                                    k);
                        goto out;
                }
                p[k].start = (uint64_t)json_integer_value(st);
                p[k].del = (uint64_t)json_integer_value(del);
                got = k + 1;
                if ((r = manifest_from_json(json_array_get(ed, 2), &p[k].ins)) < 0) {
                        char why[256];

                        snprintf(why, sizeof(why), "%s", err_msg(r));
                        r = err_set(r, "patch[%zu]: %s", k, why);
                        goto out;
                }
        }
        *edits = p;
        *n = got;
        p = NULL;
out:
        patch_free(p, got);
        return r;
}
