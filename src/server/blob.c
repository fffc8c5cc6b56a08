/* blob: helpers shared by every chunk store backend (see blob.h). */
#include "blob.h"
#include "err.h"
#include "frame.h"

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
