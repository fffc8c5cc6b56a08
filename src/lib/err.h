/* err: the one error convention of Ferry.
 *
 * Every fallible function returns 0 (or a non-negative count) on success and
 * a negative errno-style code on failure (-EINVAL, -ENOENT, ...). When the
 * failure is something a user should read, the function that detects it
 * records a one-line message with err_set(); whoever finally reports the
 * failure (the CLI, an HTTP handler) prints err_msg().
 *
 * The message lives in a thread-local buffer: that is the only mutable
 * global of this module, and it is per thread so that ferryd's worker
 * threads never see each other's messages.
 *
 * Codes with a project-wide meaning:
 *   -EINVAL     bad input (usage, malformed JSON, invalid path)
 *   -ENOENT     no such file / user / chunk
 *   -EACCES     not authenticated (bad token, bad password)
 *   -EPERM      authenticated but not allowed (registration closed)
 *   -EEXIST     already exists (user name taken)
 *   -ESTALE     commit refused: the base version is not the current one
 *   -EBADMSG    data does not match its hash
 *   -E2BIG      request or item over a size limit
 *   -ECONNREFUSED  the server cannot be reached
 *   -ECANCELED  an operation refused to run for safety (mass delete)
 *   -EPROTO     the peer spoke something we do not understand
 *   -EHOSTDOWN  a store behind ferryd (PostgreSQL, the S3 bucket) cannot be
 *               reached for now: the request may be tried again (HTTP 503)
 *   -EIO        storage or other internal failure
 */
#ifndef FERRY_ERR_H
#define FERRY_ERR_H

#include <errno.h>

/* Records a message for the current thread and returns code (negative), so
 * that `return err_set(-EINVAL, "bad path %s", p);` reads naturally. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message set on this thread, or a strerror() text for code when no
 * message was set since the last err_clear(). Never NULL. */
const char *err_msg(int code);

void err_clear(void);

#endif
