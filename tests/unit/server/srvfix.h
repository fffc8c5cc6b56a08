/* srvfix: the in-process ferryd fixture the end-to-end server unit tests
 * share (test-devices, test-transfers, test-requests) — a server on a
 * private directory and a loopback port, alice's three devices and bob's
 * one, each logged in with its own kept-alive libcurl connection (as the
 * ferry client keeps one), and the HTTP and JSON helpers the tests drive it
 * with. Every helper asserts with cmocka, so a failure points at the test. */
#ifndef FERRY_SRVFIX_H
#define FERRY_SRVFIX_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "server.h"

/* The event-stream keepalive of srvfix_setup_keepalive: parked streams are
 * checked for a gone peer every fifth of it. */
#define SRVFIX_KEEPALIVE_MS 300

struct srvfix_client {
        CURL *c; /* the kept-alive connection; NULL when the test makes its own */
        char token[65];
        char id[33];
};

struct srvfix {
        char *dir;
        char *metadata; /* the PostgreSQL database, or NULL for SQLite (srvtest.h) */
        struct server s;
        char base[64];
        struct srvfix_client a1, a2, a3, bob; /* laptop, phone, desk of alice; bob's pc */
};

/* Starts the server of f (calloc'ed by the caller) with keepalive_ms as its
 * event-stream keepalive (0: the default); no one logged in yet. */
void srvfix_start(struct srvfix *f, int keepalive_ms);
/* Stops the server, closes the clients' connections, removes the directory;
 * the caller frees f. */
void srvfix_stop(struct srvfix *f);
/* cmocka setup and teardown: srvfix_start and the four logins, *state the
 * fixture; srvfix_setup_keepalive with SRVFIX_KEEPALIVE_MS. */
int srvfix_setup(void **state);
int srvfix_setup_keepalive(void **state);
int srvfix_teardown(void **state);

int64_t srvfix_now_ms(void);
/* A CURLOPT_WRITEFUNCTION appending to the struct buf in ud. */
size_t srvfix_on_data(char *p, size_t sz, size_t n, void *ud);

long srvfix_call(struct srvfix *f, struct srvfix_client *c, const char *method, const char *path,
                 const void *body, size_t len, json_t **out);
long srvfix_req(struct srvfix *f, struct srvfix_client *c, const char *method, const char *path,
                const char *body, json_t **out);
long srvfix_req_status(struct srvfix *f, struct srvfix_client *c, const char *method,
                       const char *path, const char *body);
void srvfix_login(struct srvfix *f, struct srvfix_client *c, const char *user, const char *dev,
                  int reg);

void srvfix_hex_of(const char *content, char *hex);
int64_t srvfix_announce(struct srvfix *f, struct srvfix_client *c, const char *path,
                        const char *content, int64_t *batch);
int64_t srvfix_put_file(struct srvfix *f, struct srvfix_client *c, const char *path,
                        const char *content, int64_t base);
json_t *srvfix_transfers(struct srvfix *f, struct srvfix_client *c, const char *query);
json_t *srvfix_find_rec(json_t *t, const char *path, json_t **batch);
const char *srvfix_status_of(struct srvfix *f, const char *path, char *reason, size_t cap);

int64_t srvfix_int_of(json_t *o, const char *key);
const char *srvfix_str_of(json_t *o, const char *key);
void srvfix_keys_are(json_t *o, const char *list);

#endif
