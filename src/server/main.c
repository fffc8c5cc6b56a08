/* main: the ferryd command line. Either runs the server until SIGINT or
 * SIGTERM, or administers the data directory (`user add`). The signals are
 * blocked in every thread and taken synchronously with sigwait() here, so
 * no handler and no global flag are needed. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "auth.h"
#include "err.h"
#include "log.h"
#include "server.h"

#define DEFAULT_LISTEN "127.0.0.1:8700"

static const char usage_text[] =
    "usage: ferryd --data DIR [--listen ADDR:PORT] [--registration open|closed]\n"
    "              [--log-level debug|info|warn|error]\n"
    "       ferryd --data DIR user add NAME --email EMAIL   (password on stdin)\n"
    "\n"
    "Runs the Ferry server with its data (meta.db, chunks/) in DIR, created if\n"
    "missing, until SIGINT or SIGTERM. Defaults: --listen " DEFAULT_LISTEN
    ", --registration closed.\n"
    "`user add` creates an account; the password is the first line of stdin.\n";

static const char user_add_usage[] =
    "usage: ferryd --data DIR user add NAME --email EMAIL\n"
    "\n"
    "Creates the account NAME. The password is read from the first line of\n"
    "standard input (8-1024 bytes), so it never appears on a command line.\n";

static int usage_error(const char *msg)
{
        fprintf(stderr, "ferryd: %s (see ferryd --help)\n", msg);
        return 2;
}

/* Reads the first line of stdin (without its newline) into pw. Returns its
 * length or -1. */
static long read_password(char *pw, size_t cap)
{
        size_t n;

        if (!fgets(pw, (int)cap, stdin))
                return -1;
        n = strlen(pw);
        if (n && pw[n - 1] == '\n')
                pw[--n] = '\0';
        else if (n == cap - 1)
                return -1; /* longer than any valid password */
        return (long)n;
}

static int cmd_user_add(const char *data, const char *name, const char *email)
{
        char pw[AUTH_PASSWORD_MAX + 2];
        struct server s;
        long n;
        int r;

        n = read_password(pw, sizeof(pw));
        if (n < 0) {
                fprintf(stderr, "ferryd: user add: cannot read a password (8-1024 bytes) from "
                                "stdin\n");
                return 1;
        }
        r = server_open(&s, data, 0);
        if (r < 0) {
                fprintf(stderr, "ferryd: %s\n", err_msg(r));
                return 1;
        }
        r = server_user_add(&s, name, email, pw, (size_t)n);
        memset(pw, 0, sizeof(pw));
        server_close(&s);
        if (r < 0) {
                fprintf(stderr, "ferryd: user add: %s\n", err_msg(r));
                return 1;
        }
        printf("ferryd: user %s created\n", name);
        return 0;
}

/* Each connected device holds a socket for its event stream: raise the
 * open-file limit to what the system allows us. */
static void raise_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur < rl.rlim_max) {
                rlim_t old = rl.rlim_cur;
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        log_warn("cannot raise the open-file limit from %llu: %s",
                                 (unsigned long long)old, strerror(errno));
                        return;
                }
        }
        log_info("open-file limit %llu (at most about that many connected devices)",
                 (unsigned long long)rl.rlim_cur);
}

static int cmd_serve(const char *data, const char *listen, int registration_open)
{
        struct server s;
        sigset_t set;
        int sig, r;

        /* Blocked before any thread starts, so that the workers inherit the
         * mask and only sigwait() below sees these. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        raise_nofile();

        r = server_open(&s, data, registration_open);
        if (r < 0) {
                fprintf(stderr, "ferryd: %s\n", err_msg(r));
                return 1;
        }
        r = server_start(&s, listen, 4);
        if (r < 0) {
                fprintf(stderr, "ferryd: %s\n", err_msg(r));
                server_close(&s);
                return 1;
        }
        /* The port actually bound, which differs from the one asked for
         * with port 0. */
        fprintf(stderr, "ferryd: listening on http://%.*s:%u\n",
                (int)(strrchr(listen, ':') - listen), listen, server_port(&s));
        log_info("data in %s, registration %s", data, registration_open ? "open" : "closed");
        do {
                r = sigwait(&set, &sig);
        } while (r != 0);
        log_info("signal %d: shutting down", sig);
        server_close(&s);
        log_info("stopped");
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"data", required_argument, NULL, 'd'},
            {"listen", required_argument, NULL, 'l'},
            {"registration", required_argument, NULL, 'r'},
            {"log-level", required_argument, NULL, 'L'},
            {"email", required_argument, NULL, 'e'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *data = NULL, *listen = DEFAULT_LISTEN, *email = NULL;
        enum log_level level = LOG_LEVEL_INFO;
        int registration_open = 0, help = 0, c;
        char **pos;
        int npos;

        opterr = 0;
        /* GNU getopt permutes: options may come before or after the
         * command words, which end up in argv[optind..]. */
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        data = optarg;
                        break;
                case 'l':
                        listen = optarg;
                        break;
                case 'r':
                        if (strcmp(optarg, "open") == 0)
                                registration_open = 1;
                        else if (strcmp(optarg, "closed") == 0)
                                registration_open = 0;
                        else
                                return usage_error("--registration must be open or closed");
                        break;
                case 'L':
                        if (log_level_parse(optarg, &level) < 0)
                                return usage_error(
                                    "--log-level must be debug, info, warn or error");
                        break;
                case 'e':
                        email = optarg;
                        break;
                case 'h':
                        help = 1;
                        break;
                default:
                        return usage_error("unknown option or missing value");
                }
        }
        pos = argv + optind;
        npos = argc - optind;
        if (help) {
                fputs(npos > 0 && strcmp(pos[0], "user") == 0 ? user_add_usage : usage_text,
                      stdout);
                return 0;
        }
        log_init("ferryd", level);
        /* The data directory holds password hashes and everyone's files. */
        umask(077);
        if (!data)
                return usage_error("--data DIR is required");
        if (npos == 0) {
                if (email)
                        return usage_error("--email belongs to `user add`");
                return cmd_serve(data, listen, registration_open);
        }
        if (strcmp(pos[0], "user") != 0)
                return usage_error("unknown command");
        if (npos != 3 || strcmp(pos[1], "add") != 0)
                return usage_error("usage: user add NAME --email EMAIL");
        if (!email)
                return usage_error("user add needs --email EMAIL");
        return cmd_user_add(data, pos[2], email);
}
