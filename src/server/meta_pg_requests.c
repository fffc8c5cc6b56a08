/* meta_pg_requests: (being written) requests, LAN keys, registry versions of the PostgreSQL
 * backend. */
#include <errno.h>

#include "err.h"
#include "meta_pg.h"

int mpg_registry_version(struct meta *m, int64_t user, int counter, int64_t *version)
{
        (void)m;
        (void)user;
        (void)counter;
        (void)version;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_registry_version not written yet");
}

int mpg_registry_version_bump(struct meta *m, int64_t user, int counter, int64_t *version)
{
        (void)m;
        (void)user;
        (void)counter;
        (void)version;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_registry_version_bump not written yet");
}

int mpg_device_set_info(struct meta *m, const struct meta_device *d, int *changed)
{
        (void)m;
        (void)d;
        (void)changed;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_set_info not written yet");
}

int mpg_device_rename(struct meta *m, const char *device, const char *name)
{
        (void)m;
        (void)device;
        (void)name;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_rename not written yet");
}

int mpg_lan_key_get(struct meta *m, int64_t user, const char *fresh, char key[META_LAN_KEY_HEX + 1],
                    int64_t *version)
{
        (void)m;
        (void)user;
        (void)fresh;
        (void)key;
        (void)version;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_lan_key_get not written yet");
}

int mpg_lan_key_rotate(struct meta *m, int64_t user, const char *fresh, int64_t *version)
{
        (void)m;
        (void)user;
        (void)fresh;
        (void)version;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_lan_key_rotate not written yet");
}

int mpg_request_add(struct meta *m, int64_t user, struct meta_request *r)
{
        (void)m;
        (void)user;
        (void)r;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_request_add not written yet");
}

int mpg_requests_list(struct meta *m, int64_t user, const struct meta_request_filter *f,
                      meta_request_cb cb, void *userdata)
{
        (void)m;
        (void)user;
        (void)f;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_requests_list not written yet");
}

int mpg_request_set(struct meta *m, int64_t user, const struct meta_request *r)
{
        (void)m;
        (void)user;
        (void)r;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_request_set not written yet");
}

int mpg_requests_expire(struct meta *m, int64_t now, int64_t **users, size_t *n)
{
        (void)m;
        (void)now;
        (void)users;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_requests_expire not written yet");
}

int mpg_requests_fail_target(struct meta *m, int64_t user, const char *target, const char *reason,
                             int64_t now, int64_t *n)
{
        (void)m;
        (void)user;
        (void)target;
        (void)reason;
        (void)now;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_requests_fail_target not written yet");
}
