/* xferlog: this device's side of the server's transfer records (docs/api.md
 * "Transfer records"), which let every device of the account see what is
 * on its way: before a push uploads, it announces the files it is about to
 * send (POST /api/v1/transfers); after each chunk body it reports how far
 * each file got (POST /api/v1/transfers/progress); the commit of a file
 * completes its record on the server; and what the push announced but did
 * not commit (the file vanished or changed, became a conflict copy, was
 * refused) it reports cancelled or failed. The download half reports what
 * the device applied and what it could not (POST /api/v1/downloads), and
 * the device's download policy goes to the server with POST
 * /api/v1/device.
 *
 * Records describe transfers; they never decide what is synced. So a report
 * the server refuses is logged and dropped, and only a server that cannot
 * be reached at all fails the round (as the upload would anyway).
 */
#ifndef FERRY_XFERLOG_H
#define FERRY_XFERLOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "remote.h"
#include "scan.h"
#include "transfer.h"

/* At most this many files in one announce (the server's limit). */
#define XFERLOG_ANNOUNCE_BATCH 10000
/* At most this many records in one progress report. */
#define XFERLOG_PROGRESS_BATCH 10000
/* Progress reports are at least this far apart (a body that comes sooner
 * is reported with the next one). */
#define XFERLOG_PROGRESS_MIN_MS 250

/* The records one push pass announced. */
struct xferlog;

int xferlog_new(struct xferlog **out);
void xferlog_free(struct xferlog *xl);

/* Announces the file puts among changes[0..n) whose skip flag is 0 (skip
 * may be NULL), in batches of XFERLOG_ANNOUNCE_BATCH, and remembers the
 * record ids by path. Returns 0 (also when the server refused: the push
 * goes on without records, with a warning) or a negative code when the
 * server cannot be reached. */
int xferlog_announce(struct xferlog *xl, struct remote *rem, struct local_change *const *changes,
                     size_t n, const int *skip);

/* Changes the gap between progress reports (the tests). */
void xferlog_set_progress_gap(struct xferlog *xl, int64_t ms);

/* Announced records (for the tests and the debug log). */
size_t xferlog_count(const struct xferlog *xl);

/* The id of path's record, 0 when it has none. */
int64_t xferlog_id(const struct xferlog *xl, const char *path);

/* Reports the bytes done that marks (one chunk body's files) advanced, in
 * one request, together with what earlier bodies advanced and no report
 * carried yet; unless the last report is less than XFERLOG_PROGRESS_MIN_MS
 * old (the first one always goes). A file whose bytes have all been sent is
 * left to its commit (complete), not reported. Safe on the thread that posted the body
 * (transfer.body_sent) while nothing else uses rem. Failures are logged,
 * never returned. */
void xferlog_progress(struct xferlog *xl, struct remote *rem, const struct transfer_mark *marks,
                      size_t n);

/* path was committed: the server completed its record. */
void xferlog_committed(struct xferlog *xl, const char *path);

/* path will not be committed by this pass: its record is reported
 * cancelled (reason NULL: the server deletes it) or failed with reason, at
 * xferlog_finish. */
void xferlog_drop(struct xferlog *xl, const char *path, const char *reason);

/* Sends the drops, and for every record neither committed nor dropped,
 * cancelled (open_reason NULL) or failed with open_reason. Returns 0 or a
 * negative code when the server cannot be reached; a refusal is logged.
 * Records reported are not reported again. */
int xferlog_finish(struct xferlog *xl, struct remote *rem, const char *open_reason);

/* POST /api/v1/downloads: applied_seq (< 0: left out), failed and done
 * (JSON arrays of {"path", "seq"[, "reason"]}, may be NULL or empty). */
int xferlog_report_downloads(struct remote *rem, int64_t applied_seq, const json_t *failed,
                             const json_t *done);

/* POST /api/v1/device {"download_incomplete": "skip"|"wait"}. */
int xferlog_send_policy(struct remote *rem, int policy);

#endif
