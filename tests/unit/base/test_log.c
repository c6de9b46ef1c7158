/* test_log.c - unit tests of the log sink (base/log.c, base/log.h):
 *   - order and completeness: every line written, in order, once, each
 *     whole, after log_sink_stop (the flush at exit);
 *   - each write(2) holds whole lines only, at most PIPE_BUF bytes (seen
 *     through a SOCK_SEQPACKET socket, which keeps write boundaries);
 *   - a stderr that does not drain: log_write does not wait for it; the
 *     lines that do not fit are dropped and counted, and the notes
 *     "log: N line(s) dropped" stand exactly where the dropped lines were
 *     (walking the output, every id is either present in order or counted
 *     by the note that follows the last line before it), and
 *     log_dropped_total() agrees;
 *   - lines from several threads keep their per-thread order;
 *   - before log_sink_start and after log_sink_stop, a line is on fd 2 at
 *     once (synchronous).
 * Every wait is capped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "log.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A reader thread collecting everything from fd, message by message. */
struct reader {
	int fd;
	pthread_t th;
	char *buf;     /* everything read */
	size_t len, cap;
	size_t nmsg;   /* read() calls that returned data */
	bool bad_msg;  /* a message not made of whole lines, or too long */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char msg[65536];
	for (;;) {
		ssize_t n = read(r->fd, msg, sizeof msg);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((size_t)n > PIPE_BUF || msg[n - 1] != '\n')
			r->bad_msg = true;
		if (r->len + (size_t)n + 1 > r->cap) {
			size_t nc = r->cap ? r->cap * 2 : 1 << 20;
			while (nc < r->len + (size_t)n + 1)
				nc *= 2;
			r->buf = realloc(r->buf, nc);
			assert_non_null(r->buf);
			r->cap = nc;
		}
		memcpy(r->buf + r->len, msg, (size_t)n);
		r->len += (size_t)n;
		r->buf[r->len] = '\0';
		r->nmsg++;
	}
	return NULL;
}

static void reader_start(struct reader *r, int fd)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	assert_int_equal(pthread_create(&r->th, NULL, reader_main, r), 0);
}

static void reader_join(struct reader *r)
{
	pthread_join(r->th, NULL);
	if (!r->buf) {
		r->buf = calloc(1, 1);
		assert_non_null(r->buf);
	}
}

/* Walk out: lines "... I t=T id=N pad" and notes "... W log: N line(s)
 * dropped ...". Each thread's ids must run 0..count-1 in order, each
 * either present or covered by a note. With one thread the note's count
 * must equal the ids skipped right before the next present one (or the
 * end). Returns the dropped lines the notes count. */
static uint64_t check_stream(const char *out, int threads, int count)
{
	int next[8] = { 0 };
	uint64_t noted = 0, pending = 0;
	const char *p = out;
	while (*p) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl); /* every line whole */
		char line[LOG_LINE_MAX + 1];
		size_t n = (size_t)(nl - p);
		assert_true(n < sizeof line);
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		/* "2026-01-02T03:04:05.678Z X " */
		assert_true(n > 27);
		assert_int_equal(line[23], 'Z');
		unsigned long long k;
		int t, id;
		if (sscanf(line + 27, "log: %llu line(s) dropped", &k) == 1) {
			assert_int_equal(line[25], 'W');
			assert_true(k > 0);
			noted += k;
			pending += k;
			continue;
		}
		if (sscanf(line + 27, "t=%d id=%d", &t, &id) != 2)
			fail_msg("unexpected line '%s'", line);
		assert_true(t >= 0 && t < threads);
		if (threads == 1) {
			/* the ids skipped are exactly those the notes since
			 * the last present line counted */
			assert_int_equal((uint64_t)(id - next[t]), pending);
			pending = 0;
		} else {
			assert_true(id >= next[t]);
		}
		next[t] = id + 1;
	}
	if (threads == 1)
		assert_int_equal((uint64_t)(count - next[0]), pending);
	return noted;
}

static void log_lines(int t, int count, int pad)
{
	static const char xs[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
				 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	for (int i = 0; i < count; i++)
		log_info("t=%d id=%d %.*s", t, i, (i * 7 + pad) % 90, xs);
}

static void test_order_and_flush(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct reader r;
	reader_start(&r, sv[1]);
	/* room for all of it (~2 MB): nothing may be dropped */
	assert_int_equal(log_sink_start_fd(sv[0], 8 << 20), 0);
	assert_int_equal(log_sink_start_fd(sv[0], 8 << 20), ERR_INVAL);
	uint64_t d0 = log_dropped_total();
	log_lines(0, 20000, 3);
	log_sink_stop(); /* everything out before it returns */
	close(sv[0]);
	reader_join(&r);
	close(sv[1]);
	assert_false(r.bad_msg);
	assert_int_equal(check_stream(r.buf, 1, 20000), 0);
	assert_int_equal(log_dropped_total(), d0);
	/* all 20000 lines, several to a write */
	size_t lines = 0;
	for (const char *p = r.buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 20000);
	assert_true(r.nmsg < lines);
	free(r.buf);
}

static void fill_socket(int fd)
{
	/* make writes block: fill the socket until it would block */
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	char junk[512];
	memset(junk, 'j', sizeof junk);
	junk[sizeof junk - 1] = '\n';
	while (write(fd, junk, sizeof junk) > 0)
		;
	fcntl(fd, F_SETFL, fl);
}

static void test_blocked_fd_drops_counted(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	fill_socket(sv[0]);
	assert_int_equal(log_sink_start_fd(sv[0], 8192), 0);
	uint64_t d0 = log_dropped_total();
	uint64_t t0 = mono_ms();
	log_lines(0, 3000, 11);
	/* nobody reads: the caller did not wait for the descriptor */
	assert_true(mono_ms() - t0 < 1000);
	uint64_t dropped = log_dropped_total() - d0;
	assert_true(dropped > 0);
	struct reader r;
	reader_start(&r, sv[1]);
	log_sink_stop();
	close(sv[0]);
	reader_join(&r);
	close(sv[1]);
	assert_false(r.bad_msg);
	/* skip the filler */
	const char *p = r.buf;
	while (*p == 'j') {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	assert_int_equal(check_stream(p, 1, 3000), dropped);
	free(r.buf);
}

struct thr {
	int t;
};

static void *thr_main(void *arg)
{
	struct thr *a = arg;
	log_lines(a->t, 3000, a->t);
	return NULL;
}

static void test_threads_keep_order(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct reader r;
	reader_start(&r, sv[1]);
	assert_int_equal(log_sink_start_fd(sv[0], 1 << 20), 0);
	uint64_t d0 = log_dropped_total();
	pthread_t th[4];
	struct thr a[4];
	for (int i = 0; i < 4; i++) {
		a[i].t = i;
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &a[i]),
				 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	log_sink_stop();
	close(sv[0]);
	reader_join(&r);
	close(sv[1]);
	assert_false(r.bad_msg);
	uint64_t dropped = log_dropped_total() - d0;
	assert_int_equal(check_stream(r.buf, 4, 3000), dropped);
	size_t lines = 0;
	for (const char *q = r.buf; *q; q++)
		lines += *q == '\n';
	if (dropped == 0)
		assert_int_equal(lines, 12000);
	free(r.buf);
}

/* fd 2 onto a pipe; a line logged synchronously is there at once */
static void test_synchronous_outside_the_sink(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(2);
	assert_true(saved >= 0);
	dup2(p[1], 2);
	char buf[4096];
	log_warn("before the sink");
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 0), 1);
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, " W before the sink\n"));

	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_int_equal(log_sink_start_fd(sv[0], 4096), 0);
	log_sink_stop();
	log_error("after the sink");
	assert_int_equal(poll(&pf, 1, 0), 1);
	n = read(p[0], buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, " E after the sink\n"));
	dup2(saved, 2);
	close(saved);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void test_long_line_truncated_whole(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct reader r;
	reader_start(&r, sv[1]);
	assert_int_equal(log_sink_start_fd(sv[0], 1 << 16), 0);
	char big[3000];
	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_info("%s", big);
	log_info("t=0 id=0 after");
	log_sink_stop();
	close(sv[0]);
	reader_join(&r);
	close(sv[1]);
	assert_false(r.bad_msg);
	char *nl = strchr(r.buf, '\n');
	assert_non_null(nl);
	assert_int_equal((size_t)(nl - r.buf) + 1, LOG_LINE_MAX);
	assert_non_null(strstr(nl + 1, " I t=0 id=0 after\n"));
	free(r.buf);
}

int main(void)
{
	log_set_level(LOG_DEBUG);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_flush),
		cmocka_unit_test(test_blocked_fd_drops_counted),
		cmocka_unit_test(test_threads_keep_order),
		cmocka_unit_test(test_synchronous_outside_the_sink),
		cmocka_unit_test(test_long_line_truncated_whole),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
