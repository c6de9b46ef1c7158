/*
 * fo_writer: the write-gap probe of bench/failover.
 *
 *   fo_writer --conninfo STR --out FILE [--table T] [--retry-ms 10]
 *   fo_writer --now
 *
 * Writer mode: one libpq connection (synchronous API) that loops
 * `INSERT INTO T DEFAULT VALUES RETURNING id` and, for every acknowledged
 * commit, appends "MS ID" to FILE, where MS is CLOCK_MONOTONIC in
 * milliseconds (three decimals) taken right after the reply arrived, and
 * "E MS" for every failed statement or connection attempt. On any
 * failure it drops the connection and reconnects (the conninfo is meant to be
 * a multi-host string with target_session_attrs=read-write connect_timeout=1),
 * waiting --retry-ms between failed attempts so that a dead cluster does not
 * cost a core. The file is flushed at least every 100 ms; SIGTERM or SIGINT
 * ends the loop after the statement in flight, flushes and prints
 * "commits=N errors=E connects=C" to stderr.
 *
 * --now prints CLOCK_MONOTONIC in ms (three decimals): the driver takes its
 * event times on the same clock as the commits.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop)
		;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: fo_writer --conninfo STR --out FILE [--table T] "
		   "[--retry-ms MS]\n       fo_writer --now\n");
}

int main(int argc, char **argv)
{
	const char *conninfo = NULL, *out = NULL, *table = "fo_bench";
	long retry_ms = 10;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--now") == 0) {
			printf("%.3f\n", now_ms());
			return 0;
		} else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc) {
			conninfo = argv[++i];
		} else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else if (strcmp(argv[i], "--table") == 0 && i + 1 < argc) {
			table = argv[++i];
		} else if (strcmp(argv[i], "--retry-ms") == 0 && i + 1 < argc) {
			retry_ms = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!conninfo || !out || retry_ms < 0 || retry_ms > 10000) {
		usage(stderr);
		return 2;
	}
	for (const char *p = table; *p; p++) {
		if (!(*p == '_' || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9'))) {
			fprintf(stderr, "fo_writer: bad table name\n");
			return 2;
		}
	}
	FILE *f = fopen(out, "a");
	if (!f) {
		fprintf(stderr, "fo_writer: %s: %s\n", out, strerror(errno));
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char sql[128];
	snprintf(sql, sizeof sql, "INSERT INTO %s DEFAULT VALUES RETURNING id",
		 table);
	PGconn *c = NULL;
	long commits = 0, errors = 0, connects = 0;
	double last_flush = now_ms();
	char lasterr[256] = "";
	while (!stop) {
		if (!c) {
			c = PQconnectdb(conninfo);
			if (PQstatus(c) != CONNECTION_OK) {
				snprintf(lasterr, sizeof lasterr, "%s",
					 PQerrorMessage(c));
				PQfinish(c);
				c = NULL;
				errors++;
				fprintf(f, "E %.3f\n", now_ms());
				sleep_ms(retry_ms);
				continue;
			}
			connects++;
		}
		PGresult *r = PQexec(c, sql);
		double t = now_ms();
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			fprintf(f, "%.3f %s\n", t, PQgetvalue(r, 0, 0));
			commits++;
		} else {
			snprintf(lasterr, sizeof lasterr, "%s",
				 PQerrorMessage(c));
			errors++;
			fprintf(f, "E %.3f\n", t);
			PQfinish(c);
			c = NULL;
		}
		PQclear(r);
		if (t - last_flush >= 100) {
			fflush(f);
			last_flush = t;
		}
	}
	if (c)
		PQfinish(c);
	fflush(f);
	fclose(f);
	lasterr[strcspn(lasterr, "\n")] = 0;
	fprintf(stderr, "commits=%ld errors=%ld connects=%ld last_error=\"%s\"\n",
		commits, errors, connects, lasterr);
	return 0;
}
