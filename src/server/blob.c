/* blob: helpers shared by every chunk store backend (see blob.h): choosing
 * a backend from its name, one-chunk puts, decoded gets. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "blob.h"
#include "err.h"
#include "frame.h"

int blob_put(struct blob *b, const struct hash *h, uint8_t enc, const uint8_t *payload, size_t len)
{
        struct blob_batch *bb = NULL;
        int r;

        r = b->ops->batch_new(b, &bb);
        if (r < 0)
                return r;
        r = b->ops->put(b, bb, h, enc, payload, len);
        if (r == 0)
                r = b->ops->flush(b, bb);
        b->ops->batch_free(b, bb);
        return r;
}

int blob_get_raw(struct blob *b, const struct hash *h, struct buf *out)
{
        struct buf stored = BUF_INIT;
        struct frame f;
        uint8_t enc;
        int r;

        r = b->ops->get(b, h, &stored, &enc);
        if (r < 0)
                goto out;
        if (stored.len > FRAME_MAX_PAYLOAD) {
                r = err_set(-EBADMSG, "stored chunk too large");
                goto out;
        }
        f.hash = *h;
        f.encoding = enc;
        f.payload = stored.data;
        f.len = (uint32_t)stored.len;
        r = frame_decode(&f, out);
out:
        buf_free(&stored);
        return r;
}

int blob_open(const char *spec, const char *data_dir, struct blob **out)
{
        char path[PATH_MAX];

        if (spec && strncmp(spec, "s3://", 5) == 0)
                return blob_s3_open(spec, out);
        if (spec && *spec)
                return blob_fs_open(spec, out);
        if (snprintf(path, sizeof(path), "%s/chunks", data_dir) >= (int)sizeof(path))
                return err_set(-ENAMETOOLONG, "data directory path too long");
        return blob_fs_open(path, out);
}
