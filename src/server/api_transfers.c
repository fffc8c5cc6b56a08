/* api_transfers: transfer records, download records and device management
 * over HTTP (docs/api.md, "Transfer records" and "Devices").
 * (Being written: issue 5.) */
#include "api.h"

void api_transfers_announce(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_transfers_list(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_transfers_progress(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_transfers_forget(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_downloads_report(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_device_update(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_devices_remove(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}

void api_devices_history(void *ctx, struct http_request *req, struct http_reply *rep)
{
        (void)ctx, (void)req;
        http_reply_error(rep, 501, "not implemented yet");
}
