/* meta_pg_transfers: (being written) transfer and download records of the PostgreSQL backend. */
#include <errno.h>

#include "err.h"
#include "meta_pg.h"

int mpg_xfer_version(struct meta *m, int64_t user, int64_t *version)
{
        (void)m;
        (void)user;
        (void)version;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_version not written yet");
}

int mpg_xfer_version_bump(struct meta *m, int64_t user, int64_t *version)
{
        (void)m;
        (void)user;
        (void)version;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_version_bump not written yet");
}

int mpg_xfer_batch_add(struct meta *m, int64_t user, const char *device, int64_t now,
                       int64_t *batch)
{
        (void)m;
        (void)user;
        (void)device;
        (void)now;
        (void)batch;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_batch_add not written yet");
}

int mpg_xfer_records(struct meta *m, int64_t user, const struct meta_record_filter *f,
                     meta_record_cb cb, void *userdata)
{
        (void)m;
        (void)user;
        (void)f;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_records not written yet");
}

int mpg_xfer_record_put(struct meta *m, int64_t user, struct meta_record *rec)
{
        (void)m;
        (void)user;
        (void)rec;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_record_put not written yet");
}

int mpg_xfer_record_delete(struct meta *m, int64_t user, int64_t id)
{
        (void)m;
        (void)user;
        (void)id;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_record_delete not written yet");
}

int mpg_xfer_records_fail(struct meta *m, int64_t user, const char *device, unsigned from,
                          const char *reason, int64_t now, int64_t *n)
{
        (void)m;
        (void)user;
        (void)device;
        (void)from;
        (void)reason;
        (void)now;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_records_fail not written yet");
}

int mpg_xfer_batches(struct meta *m, int64_t user, meta_batch_cb cb, void *userdata)
{
        (void)m;
        (void)user;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_batches not written yet");
}

int mpg_xfer_prune(struct meta *m, int64_t before, int64_t *n)
{
        (void)m;
        (void)before;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_prune not written yet");
}

int mpg_xfer_active_devices(struct meta *m, meta_active_cb cb, void *userdata)
{
        (void)m;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_xfer_active_devices not written yet");
}

int mpg_dl_put(struct meta *m, int64_t user, const struct meta_download *d)
{
        (void)m;
        (void)user;
        (void)d;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_dl_put not written yet");
}

int mpg_dl_list(struct meta *m, int64_t user, const char *device, const char *path,
                unsigned statuses, meta_download_cb cb, void *userdata)
{
        (void)m;
        (void)user;
        (void)device;
        (void)path;
        (void)statuses;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_dl_list not written yet");
}

int mpg_dl_ready(struct meta *m, int64_t user, const char *path, int64_t seq, const char *reason,
                 int64_t now, int64_t *n)
{
        (void)m;
        (void)user;
        (void)path;
        (void)seq;
        (void)reason;
        (void)now;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_dl_ready not written yet");
}

int mpg_dl_applied(struct meta *m, const char *device, int64_t applied_seq, int64_t now, int64_t *n)
{
        (void)m;
        (void)device;
        (void)applied_seq;
        (void)now;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_dl_applied not written yet");
}

int mpg_dl_delete(struct meta *m, const char *device, const char *path, unsigned statuses,
                  int64_t *n)
{
        (void)m;
        (void)device;
        (void)path;
        (void)statuses;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_dl_delete not written yet");
}

int mpg_device_find(struct meta *m, int64_t user, const char *id_or_name, int with_removed,
                    struct meta_device *out, int64_t *removed)
{
        (void)m;
        (void)user;
        (void)id_or_name;
        (void)with_removed;
        (void)out;
        (void)removed;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_find not written yet");
}

int mpg_device_set_policy(struct meta *m, const char *device, int policy)
{
        (void)m;
        (void)device;
        (void)policy;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_set_policy not written yet");
}

int mpg_device_set_applied(struct meta *m, const char *device, int64_t seq)
{
        (void)m;
        (void)device;
        (void)seq;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_set_applied not written yet");
}

int mpg_device_remove(struct meta *m, const char *device, int64_t now)
{
        (void)m;
        (void)device;
        (void)now;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_remove not written yet");
}

int mpg_device_open_records(struct meta *m, const char *device, int64_t *n)
{
        (void)m;
        (void)device;
        (void)n;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_open_records not written yet");
}

int mpg_device_event_add(struct meta *m, int64_t user, const struct meta_device *d,
                         const char *event, int64_t now, int64_t *files)
{
        (void)m;
        (void)user;
        (void)d;
        (void)event;
        (void)now;
        (void)files;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_event_add not written yet");
}

int mpg_device_events(struct meta *m, int64_t user, const char *device, meta_device_event_cb cb,
                      void *userdata)
{
        (void)m;
        (void)user;
        (void)device;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_events not written yet");
}

int mpg_device_event_files(struct meta *m, int64_t event, meta_held_file_cb cb, void *userdata)
{
        (void)m;
        (void)event;
        (void)cb;
        (void)userdata;
        return err_set(-ENOSYS, "PostgreSQL backend: mpg_device_event_files not written yet");
}
