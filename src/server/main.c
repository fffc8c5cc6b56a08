/* main: the ferryd command line. Either runs the server until SIGINT or
 * SIGTERM, or administers its stores (`user add`, `gc`, `migrate`). The
 * stores are the defaults under --data DIR (meta.db, chunks/) or named with
 * --metadata and --blobs (a PostgreSQL database and an S3 bucket that
 * several instances share, see docs/deploy.md). The signals are blocked in
 * every thread and taken synchronously with sigwait() here, so no handler
 * and no global flag are needed. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "err.h"
#include "gc.h"
#include "log.h"
#include "schema.h"
#include "server.h"

#define DEFAULT_LISTEN "127.0.0.1:8700"
#define INSTANCE_ID_MAX 48

static const char usage_text[] =
    "usage: ferryd [--data DIR] [--metadata SPEC] [--blobs SPEC] [--listen ADDR:PORT]\n"
    "              [--registration open|closed] [--instance-id NAME]\n"
    "              [--log-level debug|info|warn|error]\n"
    "              [--keep-days N] [--keep-versions N] [--gc-interval SECONDS]\n"
    "              [--gc-grace SECONDS] [--session-timeout SECONDS]\n"
    "       ferryd STORES user add NAME --email EMAIL   (password on stdin)\n"
    "       ferryd STORES gc [--keep-days N] [--keep-versions N] [--gc-grace SECONDS]\n"
    "       ferryd STORES migrate\n"
    "\n"
    "Runs the Ferry server until SIGINT or SIGTERM. Defaults: --listen " DEFAULT_LISTEN
    ", --registration closed.\n"
    "\n"
    "Stores (STORES above: --data, --metadata, --blobs):\n"
    "  --data DIR        the default stores: DIR/meta.db and DIR/chunks/ (created\n"
    "                    if missing); needed unless both stores below are named\n"
    "  --metadata SPEC   sqlite:PATH, or a postgresql://USER@HOST:PORT/DB URI that\n"
    "                    several ferryd instances share (put the password in\n"
    "                    PGPASSWORD or ~/.pgpass, not on the command line)\n"
    "  --blobs SPEC      a directory, or s3://BUCKET?endpoint=URL&region=R with the\n"
    "                    credentials in FERRY_S3_ACCESS_KEY and FERRY_S3_SECRET_KEY\n"
    "  --instance-id NAME  names this instance in the logs (default HOST:PID when\n"
    "                    the metadata is shared)\n"
    "The metadata schema is brought up to date whenever ferryd opens it; `migrate`\n"
    "does only that and prints the schema version. See docs/deploy.md.\n"
    "`user add` creates an account; the password is the first line of stdin.\n"
    "\n"
    "History: every committed version is kept; a superseded version goes once it\n"
    "was superseded more than --keep-days days ago (default 30; 0: no limit) or\n"
    "has at least --keep-versions newer ones (default 0: no limit). The GC runs\n"
    "every --gc-interval seconds (default 3600; 0 never) and frees chunks no kept\n"
    "version uses and that were not touched for --gc-grace seconds (default 3600).\n"
    "With several instances one of them collects at a time. `gc` runs it once: on\n"
    "a stopped server's --data (it refuses while a ferryd runs on DIR), or next to\n"
    "running instances when the metadata is PostgreSQL.\n"
    "An uploading device silent for --session-timeout seconds (default 30) has\n"
    "its transfers marked failed.\n";

static const char user_add_usage[] =
    "usage: ferryd STORES user add NAME --email EMAIL\n"
    "\n"
    "Creates the account NAME in the stores named as for the server (--data DIR,\n"
    "--metadata SPEC, --blobs SPEC). The password is read from the first line of\n"
    "standard input (8-1024 bytes), so it never appears on a command line.\n";

/* Where the stores are, from the command line. */
struct stores {
        const char *data;
        const char *metadata;
        const char *blobs;
};

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

/* A store spec for the logs: a URI's password (user:PASSWORD@host) is
 * replaced by "***". */
static void spec_for_log(const char *spec, char *out, size_t cap)
{
        const char *scheme = strstr(spec, "://"), *at, *colon;

        snprintf(out, cap, "%s", spec);
        if (!scheme)
                return;
        at = strchr(scheme + 3, '@');
        colon = strchr(scheme + 3, ':');
        if (at && colon && colon < at && !memchr(scheme + 3, '/', (size_t)(at - scheme - 3)))
                snprintf(out, cap, "%.*s:***%s", (int)(colon - spec), spec, at);
}

static int open_stores(struct server *s, const struct stores *st, int registration_open)
{
        int r = server_open_stores(s, st->data, st->metadata, st->blobs, registration_open);

        if (r < 0)
                fprintf(stderr, "ferryd: %s\n", err_msg(r));
        return r;
}

static int cmd_user_add(const struct stores *st, const char *name, const char *email)
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
        if (open_stores(&s, st, 0) < 0) {
                memset(pw, 0, sizeof(pw));
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

/* Opening the stores applies the schema steps they lack (each logged by
 * the backend); what is left is to say where the schema stands. */
static int cmd_migrate(const struct stores *st)
{
        char shown[512];
        struct server s;

        if (open_stores(&s, st, 0) < 0)
                return 1;
        server_close(&s);
        spec_for_log(st->metadata ? st->metadata : "sqlite:DATA/meta.db", shown, sizeof(shown));
        printf("ferryd: metadata %s at schema version %d\n", shown, schema_version());
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

static int cmd_gc(const struct stores *stores, const struct server_settings *set)
{
        struct server s;
        struct gc_stats st;
        int r;

        if (open_stores(&s, stores, 0) < 0)
                return 1;
        /* A running ferryd collects on its own (every --gc-interval). On a
         * store one process serves, its uploads are kept out of the way by
         * its gc_lock, which another process cannot see: never run next to
         * one. On a shared store the uploads of every instance hold the
         * store-wide GC lock, which this run takes like an instance. */
        if (!s.shared) {
                r = s.blob->ops->claim(s.blob);
                if (r < 0) {
                        fprintf(stderr,
                                "ferryd: gc: %s\n"
                                "ferryd: gc: refusing to collect while a ferryd runs on %s: stop "
                                "it first (a running ferryd collects every --gc-interval "
                                "seconds)\n",
                                err_msg(r), stores->data ? stores->data : stores->blobs);
                        server_close(&s);
                        return 1;
                }
        }
        s.settings = *set;
        r = gc_run(&s, server_now(), &st);
        server_close(&s);
        if (r == -EBUSY) {
                fprintf(stderr, "ferryd: gc: %s; nothing done\n", err_msg(r));
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "ferryd: gc: %s\n", err_msg(r));
                return 1;
        }
        printf("ferryd: gc: %lld versions pruned, %lld chunks freed (%lld bytes)\n",
               (long long)st.versions_pruned, (long long)st.chunks_freed,
               (long long)st.bytes_freed);
        return 0;
}

/* A non-negative whole number of at most 10 digits for option opt. */
static int parse_count(const char *opt, const char *val, int64_t *out)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(val, &end, 10);
        if (errno || end == val || *end || v < 0 || v > 9999999999LL || val[0] == '-' ||
            val[0] == '+' || val[0] == ' ') {
                fprintf(stderr, "ferryd: %s needs a whole number from 0 (got '%s')\n", opt, val);
                return -1;
        }
        *out = v;
        return 0;
}

static int cmd_serve(const struct stores *st, const char *listen, int registration_open,
                     const struct server_settings *settings, const char *instance)
{
        char shown[512];
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

        if (open_stores(&s, st, registration_open) < 0)
                return 1;
        s.settings = *settings;
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
        if (instance)
                log_info("instance %s", instance);
        spec_for_log(st->metadata ? st->metadata : "sqlite:DATA/meta.db", shown, sizeof(shown));
        log_info("data in %s, metadata %s, chunks in %s, registration %s",
                 st->data ? st->data : "(none)", shown, st->blobs ? st->blobs : "DATA/chunks",
                 registration_open ? "open" : "closed");
        do {
                r = sigwait(&set, &sig);
        } while (r != 0);
        log_info("signal %d: shutting down", sig);
        server_close(&s);
        log_info("stopped");
        return 0;
}

/* The default instance id, HOST:PID. */
static void default_instance(char *out, size_t cap)
{
        char host[256];

        if (gethostname(host, sizeof(host)) < 0)
                snprintf(host, sizeof(host), "%s", "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(out, cap, "%.32s:%ld", host, (long)getpid());
}

/* Names are for the logs: letters, digits and . _ : - only. */
static int instance_ok(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n > INSTANCE_ID_MAX)
                return 0;
        for (; *id; id++)
                if (!(*id >= 'a' && *id <= 'z') && !(*id >= 'A' && *id <= 'Z') &&
                    !(*id >= '0' && *id <= '9') && !strchr("._:-", *id))
                        return 0;
        return 1;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"data", required_argument, NULL, 'd'},
            {"metadata", required_argument, NULL, 'M'},
            {"blobs", required_argument, NULL, 'B'},
            {"instance-id", required_argument, NULL, 'I'},
            {"listen", required_argument, NULL, 'l'},
            {"registration", required_argument, NULL, 'r'},
            {"log-level", required_argument, NULL, 'L'},
            {"email", required_argument, NULL, 'e'},
            {"keep-days", required_argument, NULL, 'K'},
            {"keep-versions", required_argument, NULL, 'V'},
            {"gc-interval", required_argument, NULL, 'G'},
            {"gc-grace", required_argument, NULL, 'g'},
            {"session-timeout", required_argument, NULL, 'T'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *listen = DEFAULT_LISTEN, *email = NULL, *instance = NULL;
        struct stores st = {NULL, NULL, NULL};
        enum log_level level = LOG_LEVEL_INFO;
        int registration_open = 0, help = 0, c;
        char inst[INSTANCE_ID_MAX + 1], tag[INSTANCE_ID_MAX + 16];
        struct server_settings set;
        char **pos;
        int npos;

        server_settings_default(&set);
        opterr = 0;
        /* GNU getopt permutes: options may come before or after the
         * command words, which end up in argv[optind..]. */
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        st.data = optarg;
                        break;
                case 'M':
                        st.metadata = optarg;
                        break;
                case 'B':
                        st.blobs = optarg;
                        break;
                case 'I':
                        instance = optarg;
                        if (!instance_ok(instance))
                                return usage_error("--instance-id must be 1-48 letters, digits, "
                                                   "'.', '_', ':' or '-'");
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
                case 'K':
                        if (parse_count("--keep-days", optarg, &set.keep_days) < 0)
                                return 2;
                        break;
                case 'V':
                        if (parse_count("--keep-versions", optarg, &set.keep_versions) < 0)
                                return 2;
                        break;
                case 'G':
                        if (parse_count("--gc-interval", optarg, &set.gc_interval) < 0)
                                return 2;
                        break;
                case 'g':
                        if (parse_count("--gc-grace", optarg, &set.gc_grace) < 0)
                                return 2;
                        break;
                case 'T':
                        if (parse_count("--session-timeout", optarg, &set.session_timeout) < 0)
                                return 2;
                        if (set.session_timeout == 0)
                                return usage_error("--session-timeout must be at least 1");
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
        if (st.metadata && !meta_is_shared(st.metadata) &&
            !(strncmp(st.metadata, "sqlite:", 7) == 0 && st.metadata[7]))
                return usage_error("--metadata must be sqlite:PATH or a postgresql:// URI");
        if (st.blobs && !*st.blobs)
                return usage_error("--blobs must be a directory or an s3:// URL");
        /* Nothing but the default stores lives in the data directory. */
        if (!st.data && !(st.metadata && st.blobs))
                return usage_error("--data DIR is required unless both --metadata and --blobs "
                                   "are given");
        if (!instance && meta_is_shared(st.metadata)) {
                default_instance(inst, sizeof(inst));
                instance = inst;
        }
        snprintf(tag, sizeof(tag), "ferryd%s%s", instance ? "/" : "", instance ? instance : "");
        log_init(tag, level);
        /* The data directory holds password hashes and everyone's files. */
        umask(077);
        if (npos == 0) {
                if (email)
                        return usage_error("--email belongs to `user add`");
                return cmd_serve(&st, listen, registration_open, &set, instance);
        }
        if (strcmp(pos[0], "gc") == 0) {
                if (npos != 1)
                        return usage_error("usage: gc (no arguments)");
                return cmd_gc(&st, &set);
        }
        if (strcmp(pos[0], "migrate") == 0) {
                if (npos != 1)
                        return usage_error("usage: migrate (no arguments)");
                return cmd_migrate(&st);
        }
        if (strcmp(pos[0], "user") != 0)
                return usage_error("unknown command");
        if (npos != 3 || strcmp(pos[1], "add") != 0)
                return usage_error("usage: user add NAME --email EMAIL");
        if (!email)
                return usage_error("user add needs --email EMAIL");
        return cmd_user_add(&st, pos[2], email);
}
