/* password: where `ferry register` and `ferry init` get the account
 * password from, never the command line (it would show in ps and in shell
 * history): the FERRY_PASSWORD environment variable, else one line of stdin
 * with --password-stdin, else a prompt without echo when stdin is a
 * terminal. Anything else is a usage error.
 */
#ifndef FERRY_PASSWORD_H
#define FERRY_PASSWORD_H

#include <stdio.h>

#define PASSWORD_MAX 1024

enum password_source {
        PASSWORD_FROM_ENV,
        PASSWORD_FROM_STDIN,
        PASSWORD_FROM_PROMPT,
        PASSWORD_FROM_NOWHERE,
};

/* The source to use, given the FERRY_PASSWORD value (NULL when unset), the
 * --password-stdin flag and whether stdin is a terminal. */
enum password_source password_pick(const char *env, int stdin_flag, int stdin_tty);

/* Reads one line from f (without its newline) into a malloc'd string.
 * -EINVAL with a message when there is none, it is empty or longer than
 * PASSWORD_MAX. */
int password_read_line(FILE *f, char **out);

/* Gets the password from the chosen source; -EINVAL with a message (a usage
 * error) when there is no source. */
int password_get(int stdin_flag, char **out);

#endif
