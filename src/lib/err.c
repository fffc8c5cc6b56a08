/* err: the per-thread error message behind Ferry's error convention (see
 * err.h). A failing function records a readable line with err_set(); the
 * reporter prints err_msg(). The buffer is thread-local so that ferryd's
 * worker threads never mix up each other's messages. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERR_MSG_MAX 512

static _Thread_local char err_buf[ERR_MSG_MAX];
static _Thread_local int err_has_msg;
/* strerror() may use a static buffer; keep a per-thread copy instead. */
static _Thread_local char err_strbuf[128];

int err_set(int code, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
        va_end(ap);
        err_has_msg = 1;
        return code;
}

const char *err_msg(int code)
{
        if (err_has_msg)
                return err_buf;
        if (code < 0)
                code = -code;
        snprintf(err_strbuf, sizeof(err_strbuf), "%s",
                 strerrordesc_np(code) ? strerrordesc_np(code) : "unknown error");
        return err_strbuf;
}

void err_clear(void)
{
        err_has_msg = 0;
        err_buf[0] = '\0';
}
