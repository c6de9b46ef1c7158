/* base/log.h - leveled logging to stderr (journald picks it up).
 *
 * Lines start with the module and object, then key=value pairs:
 *   "rs[node1] state=follower->leader term=4".
 * The level check happens before the arguments are evaluated.
 *
 * Two ways a line reaches stderr:
 *   - synchronous (the default, before log_sink_start and after
 *     log_sink_stop): one write(2) per line in the calling thread, so a
 *     startup error or a last line is never lost;
 *   - the sink (between log_sink_start and log_sink_stop, i.e. while the
 *     daemon's loop runs): log_write formats the line and copies it into a
 *     bounded in-memory buffer; a writer thread writes whole lines to
 *     stderr, several per write(2) but never more than PIPE_BUF bytes, so
 *     lines of processes sharing the pipe (the fencer) never mix. A stderr
 *     that blocks (journald stalled, a terminal on hold) stalls the writer
 *     thread, never the caller: when the buffer is full, lines are dropped
 *     and counted, and the writer then writes "log: N line(s) dropped ..."
 *     where they would have been (everything from the first dropped line
 *     on is dropped until the writer has taken the buffer, so the note's
 *     place in the stream is exact).
 * log_write is thread-safe in both modes.
 */
#ifndef PGW_LOG_H
#define PGW_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

#define LOG_LINE_MAX 1024          /* bytes of one line, with its '\n' */
#define LOG_SINK_BYTES (256 * 1024) /* default buffer of the sink */

extern enum log_level log_threshold;

void log_set_level(enum log_level level);
/* Parse "error", "warn", "info", "debug"; returns -1 for anything else. */
int log_level_parse(const char *s);
void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Start the sink on stderr with a buffer of LOG_SINK_BYTES. 0, or
 * ERR_NOMEM / ERR_IO (no thread) and logging stays synchronous; ERR_INVAL
 * when a sink runs already. Call from one thread, paired with
 * log_sink_stop. */
int log_sink_start(void);
/* The same on fd (borrowed; it must stay open until log_sink_stop) with a
 * buffer of cap bytes (at least LOG_LINE_MAX); for tests. */
int log_sink_start_fd(int fd, size_t cap);
/* Write out everything buffered (and the count of dropped lines), join the
 * writer thread; logging is synchronous again on return. Blocks as long as
 * the fd does. No-op when no sink runs. */
void log_sink_stop(void);
/* Lines dropped because the buffer was full, since the process started. */
uint64_t log_dropped_total(void);

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
