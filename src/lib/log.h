/* log: the one logging API of Ferry.
 *
 * Lines go to stderr (or a file chosen with log_open) as
 * "2026-11-21T21:52:36.123Z ferryd[123] warn: message". The level and the
 * output stream are process-wide settings made once at start-up by main();
 * they are the documented global state of this module. Writing a line is
 * thread-safe (one fprintf under the stream's lock).
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_init(const char *program, enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *out);
/* Appends to path instead of stderr. Returns 0 or -errno. */
int log_open(const char *path);
void log_close(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
