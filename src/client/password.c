/* password: the password sources of the command line (see password.h). The
 * prompt turns echo off with termios and always restores the terminal,
 * even when reading fails. */
#include "password.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "err.h"

enum password_source password_pick(const char *env, int stdin_flag, int stdin_tty)
{
        if (env)
                return PASSWORD_FROM_ENV;
        if (stdin_flag)
                return PASSWORD_FROM_STDIN;
        if (stdin_tty)
                return PASSWORD_FROM_PROMPT;
        return PASSWORD_FROM_NOWHERE;
}

int password_read_line(FILE *f, char **out)
{
        char *line = malloc(PASSWORD_MAX + 3);
        size_t n;
        int r = 0;

        if (!line)
                return -ENOMEM;
        if (!fgets(line, PASSWORD_MAX + 3, f)) {
                r = err_set(-EINVAL, "no password given on stdin");
                goto out;
        }
        n = strlen(line);
        if (n > 0 && line[n - 1] == '\n')
                line[--n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
                line[--n] = '\0';
        if (n > PASSWORD_MAX) {
                r = err_set(-EINVAL, "the password is longer than %d bytes", PASSWORD_MAX);
                goto out;
        }
        if (n == 0) {
                r = err_set(-EINVAL, "the password is empty");
                goto out;
        }
        *out = line;
        line = NULL;
out:
        if (line) {
                explicit_bzero(line, PASSWORD_MAX + 3);
                free(line);
        }
        return r;
}

static int prompt(char **out)
{
        struct termios old, quiet;
        int r;

        if (tcgetattr(STDIN_FILENO, &old) < 0)
                return err_set(-errno, "cannot read the terminal settings: %s", strerror(errno));
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        fputs("Password: ", stderr);
        fflush(stderr);
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
                return err_set(-errno, "cannot turn off the echo: %s", strerror(errno));
        r = password_read_line(stdin, out);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        return r;
}

int password_get(int stdin_flag, char **out)
{
        const char *env = getenv("FERRY_PASSWORD");

        switch (password_pick(env, stdin_flag, isatty(STDIN_FILENO))) {
        case PASSWORD_FROM_ENV:
                if (!*env || strlen(env) > PASSWORD_MAX)
                        return err_set(-EINVAL, "FERRY_PASSWORD is empty or too long");
                *out = strdup(env);
                return *out ? 0 : -ENOMEM;
        case PASSWORD_FROM_STDIN:
                return password_read_line(stdin, out);
        case PASSWORD_FROM_PROMPT:
                return prompt(out);
        default:
                return err_set(-EINVAL, "no password: set FERRY_PASSWORD, pass --password-stdin, "
                                        "or run on a terminal");
        }
}
