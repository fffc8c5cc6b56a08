/* api_requests: upload requests between devices of one account and the
 * account's LAN key (docs/api.md, "Upload requests"). (Being written: issue 7.) */
#include "api.h"

void api_requests_create(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_requests_list(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_requests_update(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_lan_key(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_devices_rename(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}
