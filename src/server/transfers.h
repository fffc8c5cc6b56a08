/* transfers: the transfer records of a space — what each device announced
 * it is uploading (pending, uploading with bytes done, complete, failed with
 * a reason), the download records of each device, and the rules that move a
 * record from one status to the next. The HTTP side is api_transfers.c; the
 * rows live behind the metadata store (meta.h). See docs/api.md,
 * "Transfer records".
 *
 * The functions below are the hooks the rest of ferryd calls when something
 * happens that changes records. All are safe from any thread, log their own
 * failures and never fail the request that triggered them.
 */
#ifndef FERRY_TRANSFERS_H
#define FERRY_TRANSFERS_H

#include <stdint.h>

#include "hash.h"

struct server;

/* A put of device's for path landed as seq: its open record (if any) is
 * complete. hash is NULL for anything but a regular file. */
void transfers_on_commit(struct server *s, int64_t user, const char *device, const char *path,
                         const struct hash *hash, int64_t seq);

/* An upload of device's was refused (a chunk failed its check, ...): its
 * records still pending or uploading become failed with reason. */
void transfers_on_upload_rejected(struct server *s, int64_t user, const char *device,
                                  const char *reason);

/* A request of device's ended before it was handled (the connection was
 * lost in the middle of it), or its last connection closed. */
void transfers_on_connection_lost(struct server *s, int64_t user, const char *device);

/* Called about once a second by the server's housekeeping thread: fails
 * the open records of devices silent for longer than the session timeout. */
void transfers_tick(struct server *s, int64_t now);

#endif
