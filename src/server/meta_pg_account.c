/* meta_pg_account: (being written) the account rows of the PostgreSQL backend. */
#include <errno.h>

#include "err.h"
#include "meta_pg.h"

int mpg_user_add(struct meta *m, const char *name, const char *email, const char *pwhash,
                 int64_t now, int64_t *id)
{
        (void)m;
        (void)name;
        (void)email;
        (void)pwhash;
        (void)now;
        (void)id;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_user_add not written yet");
}

int mpg_user_get(struct meta *m, const char *name, struct meta_user *out)
{
        (void)m;
        (void)name;
        (void)out;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_user_get not written yet");
}

int mpg_device_add(struct meta *m, const struct meta_device *d, const struct hash *token_hash)
{
        (void)m;
        (void)d;
        (void)token_hash;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_add not written yet");
}

int mpg_device_by_token(struct meta *m, const struct hash *token_hash, struct meta_device *out)
{
        (void)m;
        (void)token_hash;
        (void)out;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_by_token not written yet");
}

int mpg_device_touch(struct meta *m, const char *device_id, int64_t now, const char *address)
{
        (void)m;
        (void)device_id;
        (void)now;
        (void)address;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_touch not written yet");
}

int mpg_device_list(struct meta *m, int64_t user, meta_device_cb cb, void *userdata)
{
        (void)m;
        (void)user;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_list not written yet");
}

int mpg_chunk_add(struct meta *m, int64_t user, const struct hash *h, uint32_t size)
{
        (void)m;
        (void)user;
        (void)h;
        (void)size;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_chunk_add not written yet");
}

int mpg_chunk_held(struct meta *m, int64_t user, const struct hash *h, uint32_t *size)
{
        (void)m;
        (void)user;
        (void)h;
        (void)size;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_chunk_held not written yet");
}

int mpg_chunk_touch(struct meta *m, int64_t user, const struct hash *h, int64_t now, uint32_t *size)
{
        (void)m;
        (void)user;
        (void)h;
        (void)now;
        (void)size;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_chunk_touch not written yet");
}
