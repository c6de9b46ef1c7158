/* log.c - leveled logging (log.h): a synchronous path and the sink, a
 * double buffer filled by log_write and emptied by one writer thread.
 *
 * The sink: `front` collects lines under the mutex; the writer swaps it
 * with `back` (both cap bytes), takes the count of lines dropped since the
 * last swap, and writes `back` outside the mutex, in chunks of whole lines
 * of at most PIPE_BUF bytes, then the drop note. A line that does not fit
 * into `front` is dropped, and so is every line after it until the next
 * swap (`dropping`): the dropped lines all lie between the last line of
 * the buffer and the first line after the swap, where the note goes. */
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

enum log_level log_threshold = LOG_INFO;

struct sink {
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* front got a line, or stop */
	pthread_t thread;
	bool running;       /* the thread exists (start..stop) */
	bool stop;          /* the writer drains, then exits */
	int fd;             /* borrowed */
	size_t cap;         /* bytes of each buffer */
	char *front;        /* owned; lines being added */
	size_t front_len;
	char *back;         /* owned; the writer's */
	bool dropping;      /* a line was dropped since the last swap */
	uint64_t dropped;   /* since the last swap */
	uint64_t dropped_total;
};

static struct sink S = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.fd = 2,
};

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

int log_level_parse(const char *s)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* "2026-01-02T03:04:05.678Z X " into buf; returns its length */
static size_t stamp(char *buf, size_t cap, char tag)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec,
			 ts.tv_nsec / 1000000, tag);
	return n < 0 ? 0 : (size_t)n;
}

/* write all of buf to fd (a blocking write in the calling thread); false
 * when the fd fails for good */
static bool write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* someone made the descriptor non-blocking:
				 * wait for room (this is the writer thread or
				 * a synchronous caller, never the sink's
				 * producer) */
				struct pollfd p = { .fd = fd, .events = POLLOUT };
				(void)poll(&p, 1, 1000);
				continue;
			}
			return false;
		}
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

/* the lines of buf[0..len) in chunks of whole lines, each at most PIPE_BUF
 * bytes (a write of up to PIPE_BUF bytes to a pipe is never interleaved
 * with another process's) */
static void write_lines(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		size_t end = off, last_nl = off;
		while (end < len && end - off < PIPE_BUF) {
			if (buf[end] == '\n')
				last_nl = end + 1;
			end++;
		}
		size_t chunk = end == len ? len - off
			       : last_nl > off ? last_nl - off
					       : end - off;
		if (!write_all(fd, buf + off, chunk))
			return;
		off += chunk;
	}
}

static void write_drop_note(int fd, uint64_t n)
{
	char line[160];
	size_t k = stamp(line, sizeof line, 'W');
	int m = snprintf(line + k, sizeof line - k,
			 "log: %llu line(s) dropped: stderr did not keep "
			 "up\n",
			 (unsigned long long)n);
	if (m > 0)
		write_all(fd, line, k + (size_t)m);
}

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&S.mu);
	for (;;) {
		while (S.front_len == 0 && S.dropped == 0 && !S.stop)
			pthread_cond_wait(&S.cv, &S.mu);
		if (S.front_len == 0 && S.dropped == 0 && S.stop)
			break;
		char *buf = S.front;
		size_t len = S.front_len;
		uint64_t dropped = S.dropped;
		S.front = S.back;
		S.front_len = 0;
		S.back = buf;
		S.dropped = 0;
		S.dropping = false;
		int fd = S.fd;
		pthread_mutex_unlock(&S.mu);
		write_lines(fd, buf, len);
		if (dropped)
			write_drop_note(fd, dropped);
		pthread_mutex_lock(&S.mu);
	}
	pthread_mutex_unlock(&S.mu);
	return NULL;
}

int log_sink_start_fd(int fd, size_t cap)
{
	if (cap < LOG_LINE_MAX)
		return ERR_INVAL;
	pthread_mutex_lock(&S.mu);
	bool running = S.running;
	pthread_mutex_unlock(&S.mu);
	if (running)
		return ERR_INVAL;
	char *a = malloc(cap), *b = malloc(cap);
	if (!a || !b) {
		free(a);
		free(b);
		return ERR_NOMEM;
	}
	pthread_mutex_lock(&S.mu);
	S.front = a;
	S.back = b;
	S.front_len = 0;
	S.cap = cap;
	S.fd = fd;
	S.stop = false;
	S.dropping = false;
	S.dropped = 0;
	/* the producer sees running only once the buffers are in place; it
	 * holds the mutex for that */
	S.running = true;
	int rc = pthread_create(&S.thread, NULL, writer_main, NULL);
	if (rc != 0) {
		S.running = false;
		S.front = S.back = NULL;
		S.fd = 2;
	}
	pthread_mutex_unlock(&S.mu);
	if (rc != 0) {
		free(a);
		free(b);
		return ERR_IO;
	}
	return 0;
}

int log_sink_start(void)
{
	return log_sink_start_fd(2, LOG_SINK_BYTES);
}

void log_sink_stop(void)
{
	pthread_mutex_lock(&S.mu);
	if (!S.running) {
		pthread_mutex_unlock(&S.mu);
		return;
	}
	S.stop = true;
	pthread_cond_signal(&S.cv);
	pthread_mutex_unlock(&S.mu);
	pthread_join(S.thread, NULL);
	pthread_mutex_lock(&S.mu);
	S.running = false;
	/* a line another thread added after the writer's last look */
	write_lines(S.fd, S.front, S.front_len);
	if (S.dropped)
		write_drop_note(S.fd, S.dropped);
	S.dropped = 0;
	free(S.front);
	free(S.back);
	S.front = S.back = NULL;
	S.front_len = 0;
	S.fd = 2;
	pthread_mutex_unlock(&S.mu);
}

uint64_t log_dropped_total(void)
{
	pthread_mutex_lock(&S.mu);
	uint64_t n = S.dropped_total;
	pthread_mutex_unlock(&S.mu);
	return n;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	static const char tag[] = "EWID";
	char line[LOG_LINE_MAX];
	size_t n = stamp(line, sizeof line, tag[level]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
	va_end(ap);
	/* a longer line is cut to LOG_LINE_MAX bytes, its '\n' in place of
	 * the NUL */
	if (m > 0)
		n = (size_t)m < sizeof line - n ? n + (size_t)m
						: sizeof line - 1;
	line[n++] = '\n';

	pthread_mutex_lock(&S.mu);
	if (!S.running) {
		/* synchronous: one write per line so lines of concurrent
		 * processes never mix. (While log_sink_stop drains, lines
		 * still go to the buffer, behind the ones waiting there.) */
		pthread_mutex_unlock(&S.mu);
		(void)write_all(2, line, n);
		return;
	}
	if (S.dropping || S.front_len + n > S.cap) {
		S.dropping = true;
		S.dropped++;
		S.dropped_total++;
	} else {
		memcpy(S.front + S.front_len, line, n);
		S.front_len += n;
	}
	pthread_cond_signal(&S.cv);
	pthread_mutex_unlock(&S.mu);
}
