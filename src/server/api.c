/* api: what the API handlers share — parsing JSON request bodies and hash
 * lists, and rendering entries as the JSON of docs/api.md. */
#include <stdlib.h>

#include "api.h"
#include "err.h"
#include "log.h"
#include "manifest.h"

json_t *api_body_object(struct http_request *req, struct http_reply *rep)
{
        json_error_t jerr;
        json_t *j;

        if (!req->body || req->body_len == 0) {
                http_reply_error(rep, 400, "request body must be a JSON object");
                return NULL;
        }
        j = json_loadb((const char *)req->body, req->body_len, 0, &jerr);
        if (!j) {
                http_reply_error(rep, 400, "malformed JSON: %s (line %d)", jerr.text, jerr.line);
                return NULL;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                http_reply_error(rep, 400, "request body must be a JSON object");
                return NULL;
        }
        return j;
}

json_t *api_entry_json(const struct meta_entry *e, int with_chunks)
{
        char hex[HASH_HEX_LEN + 1];
        json_t *j, *chunks = NULL;
        int r;

        if (with_chunks) {
                struct manifest m = MANIFEST_INIT;
                if (e->chunks_len) {
                        r = manifest_from_blob(e->chunks, e->chunks_len, &m);
                        if (r < 0) {
                                log_error("entry %s: corrupt stored manifest", e->path);
                                return NULL;
                        }
                }
                chunks = manifest_to_json(&m);
                manifest_free(&m);
                if (!chunks)
                        return NULL;
        }
        if (e->has_hash)
                hash_to_hex(&e->hash, hex);
        j = json_pack("{s:s, s:I, s:b, s:s, s:I, s:I, s:I, s:o, s:o, s:s, s:I}", "path", e->path,
                      "seq", (json_int_t)e->seq, "deleted", e->deleted, "kind", kind_name(e->kind),
                      "size", (json_int_t)e->size, "mtime_ns", (json_int_t)e->mtime_ns, "mode",
                      (json_int_t)e->mode, "hash", e->has_hash ? json_string(hex) : json_null(),
                      "target", e->target ? json_string(e->target) : json_null(), "device",
                      e->device, "time", (json_int_t)e->time);
        if (j && chunks && json_object_set_new(j, "chunks", chunks) < 0) {
                json_decref(j);
                return NULL;
        }
        if (!j)
                json_decref(chunks);
        return j;
}

int api_parse_hashes(json_t *body, size_t max, struct hash **out, struct http_reply *rep)
{
        json_t *arr = json_object_get(body, "hashes"), *v;
        struct hash *hs;
        size_t i, n;

        if (!json_is_array(arr)) {
                http_reply_error(rep, 400, "\"hashes\" must be an array");
                return -1;
        }
        n = json_array_size(arr);
        if (n > max) {
                http_reply_error(rep, 413, "at most %zu hashes per request", max);
                return -1;
        }
        hs = calloc(n ? n : 1, sizeof(*hs));
        if (!hs) {
                http_reply_error(rep, 500, "out of memory");
                return -1;
        }
        json_array_foreach(arr, i, v)
        {
                if (!json_is_string(v) || hash_from_hex(json_string_value(v), &hs[i]) < 0) {
                        free(hs);
                        http_reply_error(rep, 400, "hashes[%zu] is not 64 hex digits", i);
                        return -1;
                }
        }
        *out = hs;
        return (int)n;
}

void api_internal(struct http_reply *rep, const char *what, int code)
{
        log_error("%s: %s", what, err_msg(code));
        /* The user learns that it is temporary and whose; the details (an
         * endpoint, a database message) stay in the server's log. */
        if (code == -EHOSTDOWN) {
                http_reply_error(
                    rep, 503, "%s: the server's storage is unreachable for now; try again", what);
                return;
        }
        http_reply_error(rep, 500, "internal error");
}
