/* base/log.h - leveled logging to stderr (journald picks it up).
 *
 * Lines start with the module and object, then key=value pairs:
 *   "rs[node1] state=follower->leader term=4".
 * The level check happens before the arguments are evaluated.
 * Loop thread only (the daemon has no other thread that logs).
 */
#ifndef PGW_LOG_H
#define PGW_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

void log_set_level(enum log_level level);
/* Parse "error", "warn", "info", "debug"; returns -1 for anything else. */
int log_level_parse(const char *s);
void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                                              \
	do {                                                            \
		if ((level) <= log_threshold)                           \
			log_write((level), __VA_ARGS__);                \
	} while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
