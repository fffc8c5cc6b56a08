/* api_history: the version history of a space over HTTP — history of a
 * path, the trash, restoring a version (docs/api.md, "History and trash").
 * (Being written: issue 5.) */
#include "api.h"

void api_history(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_trash(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_restore(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}
