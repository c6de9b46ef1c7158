/* fo_writer.c - the writer of the failover system tests
 * (tests/integration/fo_*.sh, tests/lib/failover.sh).
 *
 * One sequential client that inserts rows with unique ids and records each
 * INSERT's outcome with the client's CLOCK_MONOTONIC times of send and
 * answer and the server that answered, so that the tests can check that no
 * acknowledged row was lost and that no two servers accepted writes in
 * overlapping windows.
 *
 *   fo_writer --out FILE --targets HOST:PORT[,HOST:PORT...]
 *             [--user postgres] [--dbname postgres] [--table fo_w]
 *             [--first-id N] [--max-rows N] [--max-ms N] [--stop-file F]
 *             [--stmt-timeout-ms 1000] [--connect-timeout-ms 1000]
 *             [--down-backoff-ms 200] [--pause-ms 5] [--options OPTS]
 *   fo_writer --now       prints CLOCK_MONOTONIC in microseconds
 *
 * Passwords come from libpq's usual sources (PGPASSFILE). --options is
 * libpq's "options" (e.g. "-c synchronous_commit=local" for a writer whose
 * rows are not meant to survive a failover).
 *
 * Each id is offered to the targets in turn, starting with target
 * (id mod n), over one connection per target kept open between rows:
 *   - success: the row is acknowledged; the statement itself returns the
 *     answering server's port and postmaster start time, so a record names
 *     the PostgreSQL instance (one writable window per instance: a server
 *     becomes writable again only after a restart);
 *   - an error answer (read-only replica 25006, shutting down 57P01, ...):
 *     not committed; the same id goes to the next target;
 *   - no answer (connection lost after the send, or no answer within
 *     --stmt-timeout-ms): the outcome is unknown (it may have committed);
 *     the connection is dropped and the next id is used;
 *   - a target that cannot be connected to is skipped for
 *     --down-backoff-ms.
 * Because every row is offered to every writable server in rotation, two
 * servers writable at the same time show up as interleaved acknowledgements
 * from both.
 *
 * Output: one line per event, each written with one write(2) to FILE
 * (O_APPEND), times in microseconds of CLOCK_MONOTONIC (the clock of
 * wdfifo's "mono=" in ms and of every process on the machine, network
 * namespaces included):
 *   A id send_us ack_us port pmstart_us target   acknowledged
 *   R id send_us end_us target sqlstate          refused (not committed)
 *   U id send_us end_us target reason            unknown outcome
 *   D t_us target message                        target went down
 *   S t_us targets / E t_us rows_acked           start / end
 * Bounded: stops after --max-rows ids, --max-ms, or when --stop-file
 * exists (checked before every offer of a row). Exit 0; 2 on a usage
 * error; 1 when the record is incomplete (a line could not be written to
 * FILE), with the reason on stderr: the tests must not check a record
 * with holes, so tests/lib/failover.sh fails a test whose writer exits
 * non-zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 8

struct target {
	char host[128];
	char port[16];
	PGconn *conn;     /* NULL when not connected */
	int64_t retry_us; /* down until then */
	bool down;        /* last connect failed (logged once) */
};

static struct target targets[MAX_TARGETS];
static int ntargets;
static int out_fd = -1;
static const char *user = "postgres";
static const char *dbname = "postgres";
static const char *table = "fo_w";
static int64_t stmt_timeout_us = 1000 * 1000;
static int64_t connect_timeout_us = 1000 * 1000;
static int64_t backoff_us = 200 * 1000;
static const char *pg_options = "";

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

__attribute__((format(printf, 1, 2))) static void out(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	ssize_t w = write(out_fd, line, (size_t)n);
	if (w != n) {
		/* a hole in the record: the checks on it would be wrong */
		fprintf(stderr, "fo_writer: cannot write the record: %s\n",
			w < 0 ? strerror(errno) : "short write");
		exit(1);
	}
}

/* one word for a log line: spaces and newlines become '_' */
static const char *word(const char *s, char *buf, size_t len)
{
	size_t i = 0;
	for (; s && s[i] && i + 1 < len; i++)
		buf[i] = (s[i] == ' ' || s[i] == '\n' || s[i] == '\t')
				 ? '_'
				 : s[i];
	buf[i] = '\0';
	while (i > 0 && buf[i - 1] == '_')
		buf[--i] = '\0';
	return i ? buf : "-";
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fo_writer --out FILE --targets HOST:PORT[,...] "
		"[--user U] [--dbname D] [--table T] [--first-id N] "
		"[--max-rows N] [--max-ms N] [--stop-file F] "
		"[--stmt-timeout-ms N] [--connect-timeout-ms N] "
		"[--down-backoff-ms N] [--pause-ms N] [--options OPTS]\n"
		"       fo_writer --now\n");
	exit(2);
}

static long long num(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		usage();
	return v;
}

static void parse_targets(const char *s)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", s);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(t, ':');
		if (!colon || ntargets == MAX_TARGETS)
			usage();
		*colon = '\0';
		struct target *g = &targets[ntargets++];
		snprintf(g->host, sizeof g->host, "%s", t);
		snprintf(g->port, sizeof g->port, "%s", colon + 1);
	}
	if (ntargets == 0)
		usage();
}

/* wait for `events` on fd until deadline; >0 ready, 0 timeout, <0 error */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_us();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, (int)((left + 999) / 1000));
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

static void mark_down(int ti, const char *why)
{
	struct target *g = &targets[ti];
	char w[256];
	if (!g->down)
		out("D %lld %d %s", (long long)now_us(), ti,
		    word(why, w, sizeof w));
	g->down = true;
	g->retry_us = now_us() + backoff_us;
}

static void drop(int ti)
{
	if (targets[ti].conn)
		PQfinish(targets[ti].conn);
	targets[ti].conn = NULL;
}

/* connect target ti within connect_timeout; true when connected */
static bool connect_target(int ti)
{
	struct target *g = &targets[ti];
	const char *keys[] = { "host",	     "port",	 "user",
			       "dbname",     "sslmode",	 "gssencmode",
			       "application_name", "options", NULL };
	const char *vals[] = { g->host,	  g->port,   user,
			       dbname,	  "disable", "disable",
			       "fo_writer", pg_options, NULL };
	int64_t deadline = now_us() + connect_timeout_us;
	PGconn *c = PQconnectStartParams(keys, vals, 0);
	if (!c) {
		mark_down(ti, "out of memory");
		return false;
	}
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED || PQstatus(c) == CONNECTION_BAD) {
			mark_down(ti, PQerrorMessage(c));
			PQfinish(c);
			return false;
		}
		int fd = PQsocket(c);
		int r = wait_fd(fd,
				st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
				deadline);
		if (r <= 0) {
			mark_down(ti, r == 0 ? "connect timeout"
					     : "connect poll failed");
			PQfinish(c);
			return false;
		}
		st = PQconnectPoll(c);
	}
	g->conn = c;
	g->down = false;
	return true;
}

enum outcome { ACKED, REFUSED, UNKNOWN, NOTSENT };

/* offer id to target ti */
static enum outcome try_insert(int ti, long long id)
{
	struct target *g = &targets[ti];
	char sql[256], idbuf[32], w[256];
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (id, port) VALUES ($1, inet_server_port()) "
		 "RETURNING inet_server_port(), "
		 "(extract(epoch FROM pg_postmaster_start_time()) * 1000000)"
		 "::bigint",
		 table);
	snprintf(idbuf, sizeof idbuf, "%lld", id);
	const char *params[] = { idbuf };
	int64_t send = now_us();
	if (!PQsendQueryParams(g->conn, sql, 1, NULL, params, NULL, NULL, 0)) {
		/* nothing (complete) went out: a dead connection */
		drop(ti);
		return NOTSENT;
	}
	int64_t deadline = send + stmt_timeout_us;
	PGresult *res = NULL, *r;
	bool lost = false, timeout = false;
	for (;;) {
		while (!PQisBusy(g->conn)) {
			r = PQgetResult(g->conn);
			if (!r)
				goto done;
			if (res)
				PQclear(res);
			res = r;
		}
		int n = wait_fd(PQsocket(g->conn), POLLIN, deadline);
		if (n == 0) {
			timeout = true;
			break;
		}
		if (n < 0 || !PQconsumeInput(g->conn)) {
			lost = true;
			break;
		}
	}
done:;
	int64_t end = now_us();
	enum outcome o;
	if (timeout || lost || !res) {
		out("U %lld %lld %lld %d %s", id, (long long)send,
		    (long long)end, ti,
		    timeout ? "timeout"
			    : word(PQerrorMessage(g->conn), w, sizeof w));
		drop(ti);
		if (timeout)
			mark_down(ti, "statement timeout");
		o = UNKNOWN;
	} else if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		   PQntuples(res) == 1) {
		out("A %lld %lld %lld %s %s %d", id, (long long)send,
		    (long long)end, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1), ti);
		o = ACKED;
	} else {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (!state) {
			/* an error libpq made up: the connection broke */
			out("U %lld %lld %lld %d %s", id, (long long)send,
			    (long long)end, ti,
			    word(PQresultErrorMessage(res), w, sizeof w));
			o = UNKNOWN;
		} else {
			out("R %lld %lld %lld %d %s", id, (long long)send,
			    (long long)end, ti, state);
			o = REFUSED;
		}
		if (PQstatus(g->conn) != CONNECTION_OK)
			drop(ti);
	}
	if (res)
		PQclear(res);
	return o;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int main(int argc, char **argv)
{
	const char *outp = NULL, *stop = NULL, *tg = NULL;
	long long first = 1, max_rows = 1000000, max_ms = 60000, pause = 5;
	if (argc == 2 && !strcmp(argv[1], "--now")) {
		printf("%lld\n", (long long)now_us());
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--out"))
			outp = v;
		else if (!strcmp(a, "--targets"))
			tg = v;
		else if (!strcmp(a, "--user"))
			user = v;
		else if (!strcmp(a, "--dbname"))
			dbname = v;
		else if (!strcmp(a, "--table"))
			table = v;
		else if (!strcmp(a, "--first-id"))
			first = num(v);
		else if (!strcmp(a, "--max-rows"))
			max_rows = num(v);
		else if (!strcmp(a, "--max-ms"))
			max_ms = num(v);
		else if (!strcmp(a, "--stop-file"))
			stop = v;
		else if (!strcmp(a, "--stmt-timeout-ms"))
			stmt_timeout_us = num(v) * 1000;
		else if (!strcmp(a, "--connect-timeout-ms"))
			connect_timeout_us = num(v) * 1000;
		else if (!strcmp(a, "--down-backoff-ms"))
			backoff_us = num(v) * 1000;
		else if (!strcmp(a, "--options"))
			pg_options = v;
		else if (!strcmp(a, "--pause-ms"))
			pause = num(v);
		else
			usage();
	}
	if (!outp || !tg)
		usage();
	parse_targets(tg);
	out_fd = open(outp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (out_fd < 0) {
		fprintf(stderr, "fo_writer: %s: %s\n", outp, strerror(errno));
		return 2;
	}
	int64_t t0 = now_us(), end = t0 + max_ms * 1000;
	long long acked = 0;
	out("S %lld %s", (long long)t0, tg);
	for (long long id = first; id < first + max_rows; id++) {
		struct stat sb;
		if (now_us() >= end || (stop && stat(stop, &sb) == 0))
			break;
		enum outcome o = NOTSENT;
		for (int k = 0; k < ntargets; k++) {
			if (k > 0 && stop && stat(stop, &sb) == 0)
				break;
			int ti = (int)((id + k) % ntargets);
			struct target *g = &targets[ti];
			if (!g->conn) {
				if (g->down && now_us() < g->retry_us)
					continue;
				if (!connect_target(ti))
					continue;
			}
			o = try_insert(ti, id);
			if (o == NOTSENT && connect_target(ti))
				o = try_insert(ti, id);
			if (o == ACKED || o == UNKNOWN)
				break;
		}
		if (o == ACKED) {
			acked++;
			if (pause)
				sleep_ms((long)pause);
		} else if (o != UNKNOWN) {
			sleep_ms(10); /* nobody writable: do not spin */
		}
	}
	out("E %lld %lld", (long long)now_us(), acked);
	for (int i = 0; i < ntargets; i++)
		drop(i);
	return 0;
}
