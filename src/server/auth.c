/* auth: password hashing, device tokens and account field rules for ferryd
 * (see auth.h). All randomness and constant-time comparison come from
 * libsodium. */
#include <sodium.h>
#include <string.h>

#include "auth.h"
#include "err.h"
#include "meta.h"

int auth_init(void)
{
        if (sodium_init() < 0)
                return err_set(-EIO, "cannot initialise libsodium");
        return 0;
}

int auth_password_hash(const char *password, size_t len, char *out)
{
        if (crypto_pwhash_str_alg(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0)
                return err_set(-ENOMEM, "password hashing ran out of memory");
        return 0;
}

int auth_password_verify(const char *hash, const char *password, size_t len)
{
        if (crypto_pwhash_str_verify(hash, password, len) != 0)
                return -EACCES;
        return 0;
}

int auth_token_new(char *out)
{
        unsigned char raw[AUTH_TOKEN_HEX_LEN / 2];

        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(out, AUTH_TOKEN_HEX_LEN + 1, raw, sizeof(raw));
        sodium_memzero(raw, sizeof(raw));
        return 0;
}

static int is_lower_hex(const char *s, size_t n)
{
        size_t i;

        for (i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return 0;
        }
        return s[n] == '\0';
}

int auth_token_hash(const char *token, struct hash *out)
{
        if (!token || strlen(token) != AUTH_TOKEN_HEX_LEN ||
            !is_lower_hex(token, AUTH_TOKEN_HEX_LEN))
                return err_set(-EACCES, "malformed token");
        hash_buf(token, AUTH_TOKEN_HEX_LEN, out);
        return 0;
}

int auth_parse_bearer(const char *header, char *out)
{
        const char *p;

        if (!header)
                return err_set(-EACCES, "missing bearer token");
        if (strncasecmp(header, "Bearer ", 7) != 0)
                return err_set(-EACCES, "authorization is not a bearer token");
        p = header + 7;
        while (*p == ' ')
                p++;
        if (strlen(p) != AUTH_TOKEN_HEX_LEN || !is_lower_hex(p, AUTH_TOKEN_HEX_LEN))
                return err_set(-EACCES, "malformed token");
        memcpy(out, p, AUTH_TOKEN_HEX_LEN + 1);
        return 0;
}

int auth_hash_equal(const struct hash *a, const struct hash *b)
{
        return sodium_memcmp(a->b, b->b, HASH_LEN) == 0;
}

int auth_check_user_name(const char *name)
{
        size_t i, n;

        if (!name)
                return err_set(-EINVAL, "user name missing");
        n = strlen(name);
        if (n < 1 || n > META_NAME_MAX)
                return err_set(-EINVAL, "user name must be 1-64 characters");
        if (name[0] == '.' || name[0] == '-')
                return err_set(-EINVAL, "user name must not start with '.' or '-'");
        for (i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return err_set(-EINVAL, "user name may hold only A-Z a-z 0-9 . _ -");
        }
        return 0;
}

/* 1 if s has no control characters (C0, DEL). */
static int printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return 0;
        return 1;
}

int auth_check_email(const char *email)
{
        size_t n;

        if (!email)
                return err_set(-EINVAL, "email missing");
        n = strlen(email);
        if (n < 3 || n > META_EMAIL_MAX || !strchr(email, '@') || !printable(email))
                return err_set(-EINVAL, "email must contain '@' and be at most 254 bytes");
        return 0;
}

int auth_check_password(const char *password, size_t len)
{
        if (!password)
                return err_set(-EINVAL, "password missing");
        if (len < AUTH_PASSWORD_MIN || len > AUTH_PASSWORD_MAX)
                return err_set(-EINVAL, "password must be 8-1024 bytes");
        return 0;
}

/* Number of UTF-8 characters in s, or -1 when s is not valid UTF-8. */
static long utf8_chars(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        long n = 0;

        while (*p) {
                int extra;
                if (*p < 0x80)
                        extra = 0;
                else if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
                        extra = 1;
                else if ((*p & 0xf0) == 0xe0)
                        extra = 2;
                else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
                        extra = 3;
                else
                        return -1;
                p++;
                while (extra--) {
                        if ((*p & 0xc0) != 0x80)
                                return -1;
                        p++;
                }
                n++;
        }
        return n;
}

int auth_check_device_name(const char *name)
{
        long n;

        if (!name)
                return err_set(-EINVAL, "device_name missing");
        n = utf8_chars(name);
        if (n < 1 || n > 64 || strlen(name) > META_DEVICE_NAME_MAX || !printable(name))
                return err_set(-EINVAL, "device_name must be 1-64 printable characters");
        return 0;
}

int auth_check_platform(const char *platform)
{
        long n = utf8_chars(platform);

        if (n < 0 || n > 64 || strlen(platform) > META_PLATFORM_MAX || !printable(platform))
                return err_set(-EINVAL, "platform must be at most 64 printable characters");
        return 0;
}
