/* delta: patches for the changes feed (see delta.h).
 *
 * The version a device holds is found with the history listing, newest
 * first and without chunk lists, stopping at the first version with
 * seq <= since; at most DELTA_SCAN_VERSIONS are looked at, so a path edited
 * a hundred times since goes whole rather than cost a long walk. Then one
 * lookup for that version's chunk list and a linear diff (patch_diff): the
 * work per entry is bounded by the size of the list the feed would have
 * sent anyway. This runs after the page's listing is over, never from
 * inside its callback, since a store may hold its lock for the listing.
 */
#include "delta.h"

#include <errno.h>

#include "patch.h"

#define DELTA_SCAN_VERSIONS 16

struct held_ctx {
        int64_t since;
        int64_t seq; /* the version at since, 0 when not found */
        int live;    /* it is a live file */
};

static int held_cb(const struct meta_entry *v, const char *device_name, void *userdata)
{
        struct held_ctx *hc = userdata;

        (void)device_name;
        if (v->seq > hc->since)
                return 0;
        hc->seq = v->seq;
        hc->live = !v->deleted && v->kind == KIND_FILE;
        return 1;
}

/* One entry: 1 when o now carries a patch, 0 when it stays whole, or a
 * negative store code. */
static int patch_entry(struct meta *m, int64_t user, int64_t since, json_t *o)
{
        struct manifest cur = MANIFEST_INIT, base = MANIFEST_INIT;
        struct held_ctx hc = {since, 0, 0};
        struct meta_entry v = {0};
        struct patch_region d;
        const char *path = json_string_value(json_object_get(o, "path"));
        json_t *p = NULL;
        int r;

        if (!path)
                return 0;
        r = m->ops->version_list(m, user, path, DELTA_SCAN_VERSIONS, held_cb, &hc);
        if (r < 0 || hc.seq <= 0 || !hc.live)
                goto out;
        r = m->ops->version_get(m, user, path, hc.seq, &v);
        if (r == -ENOENT) { /* pruned meanwhile */
                r = 0;
                goto out;
        }
        if (r < 0 || !v.chunks_len)
                goto out;
        r = manifest_from_blob(v.chunks, v.chunks_len, &base);
        if (r == 0)
                r = manifest_from_json(json_object_get(o, "chunks"), &cur);
        if (r < 0)
                goto out;
        patch_diff(&base, &cur, &d);
        if (!patch_worth(&cur, &d))
                goto out;
        p = patch_to_json(&cur, &d);
        if (!p || json_object_set_new(o, "patch_base", json_integer(hc.seq)) < 0 ||
            json_object_set(o, "patch", p) < 0) {
                r = -ENOMEM;
                goto out;
        }
        json_object_del(o, "chunks");
        r = 1;
out:
        json_decref(p);
        meta_entry_clear(&v);
        manifest_free(&base);
        manifest_free(&cur);
        return r;
}

int delta_page(struct meta *m, int64_t user, int64_t since, json_t *entries, const size_t *idx,
               size_t n)
{
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                json_t *o = json_array_get(entries, idx[i]);

                r = o ? patch_entry(m, user, since, o) : 0;
                if (r == -EINVAL)
                        r = 0; /* a stored list we cannot read: send it whole */
        }
        return r < 0 ? r : 0;
}
