/* log: Ferry's one logging sink. Lines look like
 * "2026-11-21T21:52:36.123Z ferryd[123] warn: message" and go to stderr or
 * a file opened with log_open(). The program name, level and stream are set
 * once by main() at start-up: they are this module's documented global
 * state. Each line is written with a single fprintf so that lines from
 * concurrent threads never interleave (stdio locks the stream). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

#define LOG_LINE_MAX 2048

static char log_program[64] = "ferry";
static enum log_level log_min_level = LOG_LEVEL_INFO;
static FILE *log_file; /* NULL means stderr */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *program, enum log_level level)
{
        snprintf(log_program, sizeof(log_program), "%s", program ? program : "ferry");
        log_min_level = level;
}

int log_level_parse(const char *s, enum log_level *out)
{
        for (int i = 0; i < 4; i++) {
                if (s && strcmp(s, level_names[i]) == 0) {
                        *out = (enum log_level)i;
                        return 0;
                }
        }
        return err_set(-EINVAL, "unknown log level '%s' (debug, info, warn, error)", s ? s : "");
}

int log_open(const char *path)
{
        FILE *f = fopen(path, "ae");

        if (!f) {
                int r = -errno;
                return err_set(r, "cannot open log file %s: %s", path, strerror(-r));
        }
        setvbuf(f, NULL, _IOLBF, 0);
        log_close();
        log_file = f;
        return 0;
}

void log_close(void)
{
        if (log_file)
                fclose(log_file);
        log_file = NULL;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
        char msg[LOG_LINE_MAX];
        char stamp[32];
        struct timespec ts;
        struct tm tm;
        va_list ap;
        int saved = errno; /* logging must not disturb the caller's errno */

        if (level < log_min_level)
                return;
        if ((int)level < 0 || (int)level > LOG_LEVEL_ERROR)
                level = LOG_LEVEL_ERROR;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(log_file ? log_file : stderr, "%s.%03ldZ %s[%ld] %s: %s\n", stamp,
                ts.tv_nsec / 1000000, log_program, (long)getpid(), level_names[level], msg);
        errno = saved;
}
