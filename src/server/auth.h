/* auth: how ferryd checks who is calling. Passwords are kept as Argon2id
 * hashes (libsodium crypto_pwhash_str, interactive limits); device tokens are
 * 32 random bytes shown once as 64 hex digits and stored only as their
 * SHA-256, so a copy of the database does not let anyone log in. Also the
 * validation rules for account fields (docs/api.md, "register", "login").
 */
#ifndef FERRY_AUTH_H
#define FERRY_AUTH_H

#include <stddef.h>

#include "hash.h"

#define AUTH_TOKEN_HEX_LEN 64
#define AUTH_PWHASH_LEN 128 /* crypto_pwhash_STRBYTES */
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024

/* Initialises libsodium (once per process; safe to call again). 0 or -EIO. */
int auth_init(void);

/* Argon2id hash of password (len bytes) into out[AUTH_PWHASH_LEN]. Uses
 * about 64 MiB of memory for a fraction of a second. 0 or -ENOMEM. */
int auth_password_hash(const char *password, size_t len, char *out);
/* 0 if password matches hash, -EACCES if not. */
int auth_password_verify(const char *hash, const char *password, size_t len);

/* A new token: 64 hex digits into out (which holds 65). 0 or -errno. */
int auth_token_new(char *out);
/* The stored form of a token. -EACCES unless token is 64 hex digits. */
int auth_token_hash(const char *token, struct hash *out);
/* Parses an "Authorization" header value "Bearer <token>" into out (65
 * bytes). -EACCES when missing or malformed. */
int auth_parse_bearer(const char *header, char *out);
/* Constant-time equality of two hashes. */
int auth_hash_equal(const struct hash *a, const struct hash *b);

/* Field rules; each returns 0 or -EINVAL with a message. */
int auth_check_user_name(const char *name);
int auth_check_email(const char *email);
int auth_check_password(const char *password, size_t len);
int auth_check_device_name(const char *name);
int auth_check_platform(const char *platform);

#endif
