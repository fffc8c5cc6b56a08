/* sse: the Server-Sent Events parser (see sse.h). It follows the
 * "interpreting an event stream" steps of the HTML standard: split into
 * lines, a blank line dispatches, "field: value" with one optional space
 * after the colon, unknown fields ignored, and an event with no data: line
 * is not dispatched. */
#include "sse.h"

#include <errno.h>
#include <string.h>

#include "err.h"

void sse_init(struct sse_parser *p)
{
        memset(p, 0, sizeof(*p));
}

void sse_free(struct sse_parser *p)
{
        buf_free(&p->line);
        buf_free(&p->data);
        buf_free(&p->event);
        buf_free(&p->id);
        memset(p, 0, sizeof(*p));
}

static const char *text(const struct buf *b)
{
        return b->data ? (const char *)b->data : "";
}

/* A blank line: hands the event out and starts the next one. */
static int dispatch(struct sse_parser *p, sse_event_cb cb, void *ud)
{
        int r = 0;

        if (p->have_data) {
                /* the data buffer ends with the "\n" of its last line */
                if (p->data.len > 0)
                        p->data.data[--p->data.len] = '\0';
                r = cb(ud, p->event.len ? text(&p->event) : "message", text(&p->data),
                       text(&p->id));
        }
        buf_reset(&p->data);
        buf_reset(&p->event);
        if (p->data.data)
                p->data.data[0] = '\0';
        p->have_data = 0;
        return r;
}

static int set(struct buf *b, const char *v, size_t n)
{
        buf_reset(b);
        return buf_append(b, v, n);
}

static int process_line(struct sse_parser *p, sse_event_cb cb, void *ud)
{
        const char *l = text(&p->line), *colon, *v;
        size_t n = p->line.len, namelen, vlen;

        if (n == 0)
                return dispatch(p, cb, ud);
        if (l[0] == ':') {
                p->comments++;
                return 0;
        }
        colon = memchr(l, ':', n);
        namelen = colon ? (size_t)(colon - l) : n;
        v = colon ? colon + 1 : l + n;
        vlen = (size_t)(l + n - v);
        if (vlen > 0 && v[0] == ' ') {
                v++;
                vlen--;
        }
        if (namelen == 5 && !memcmp(l, "event", 5))
                return set(&p->event, v, vlen);
        if (namelen == 4 && !memcmp(l, "data", 4)) {
                if (p->data.len + vlen + 1 > SSE_MAX_DATA)
                        return err_set(-E2BIG, "event stream: an event's data is over %d bytes",
                                       SSE_MAX_DATA);
                p->have_data = 1;
                if (buf_append(&p->data, v, vlen) < 0 || buf_append(&p->data, "\n", 1) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (namelen == 2 && !memcmp(l, "id", 2) && !memchr(v, '\0', vlen))
                return set(&p->id, v, vlen);
        return 0; /* retry: and unknown fields */
}

int sse_feed(struct sse_parser *p, const char *bytes, size_t n, sse_event_cb cb, void *ud)
{
        size_t i = 0, start;
        int r;

        while (i < n) {
                if (p->after_cr && bytes[i] == '\n') {
                        p->after_cr = 0;
                        i++;
                        continue;
                }
                p->after_cr = 0;
                start = i;
                while (i < n && bytes[i] != '\n' && bytes[i] != '\r')
                        i++;
                if (p->line.len + (i - start) > SSE_MAX_LINE)
                        return err_set(-E2BIG, "event stream: a line is over %d bytes",
                                       SSE_MAX_LINE);
                if (i > start && buf_append(&p->line, bytes + start, i - start) < 0)
                        return -ENOMEM;
                if (i == n)
                        break; /* the line goes on in the next chunk */
                p->after_cr = bytes[i] == '\r';
                i++;
                r = process_line(p, cb, ud);
                buf_reset(&p->line);
                if (r < 0)
                        return r;
        }
        return 0;
}
