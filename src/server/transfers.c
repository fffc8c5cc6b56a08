/* transfers: the transfer records of a space (see transfers.h).
 * (Being written: issue 5.) */
#include "server.h"
#include "transfers.h"

void transfers_on_commit(struct server *s, int64_t user, const char *device, const char *path,
                         const struct hash *hash, int64_t seq)
{
        (void)s, (void)user, (void)device, (void)path, (void)hash, (void)seq;
}

void transfers_on_upload_rejected(struct server *s, int64_t user, const char *device,
                                  const char *reason)
{
        (void)s, (void)user, (void)device, (void)reason;
}

void transfers_on_connection_lost(struct server *s, int64_t user, const char *device)
{
        (void)s, (void)user, (void)device;
}

void transfers_tick(struct server *s, int64_t now)
{
        (void)s, (void)now;
}
