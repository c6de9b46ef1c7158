/* pgctl_system.c - pgctl against real PostgreSQL 15, as the postgres user
 * (run through pgctl_system.sh, which switches user when run as root).
 *
 * initdb -> start primary A -> probe (primary, timeline 1, system id) ->
 * slot -> pg_basebackup B -> start B as replica -> streaming, LSNs advance
 * after a write on A -> promote B -> timeline 2 -> write on both (diverge)
 * -> stop A -> pg_rewind A from B -> start A as B's replica -> streaming
 * -> restart A -> kill -9 A's postmaster -> on_exit fires -> a failed
 * pg_rewind marks A unusable and start refuses it -> demote B -> adopt:
 * drop B's node without stopping, a new node adopts the same pid and
 * stops it.
 *
 * Every postmaster started is recorded; on any failure (and at exit) each
 * one still alive is SIGQUIT/SIGKILLed by pid and the directory removed.
 * Prints the timings of each step.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "pgc.h"

#define BIN "/usr/lib/postgresql/15/bin"

static uv_loop_t loop;
static char base[64];
static pid_t started[16];
static int nstarted;

static void record_pid(pid_t p)
{
	for (int i = 0; i < nstarted; i++)
		if (started[i] == p)
			return;
	if (p > 0 && nstarted < 16)
		started[nstarted++] = p;
}

static bool alive(pid_t p)
{
	if (kill(p, 0) < 0)
		return false;
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	if (rp && rp[2] == 'Z') {
		waitpid(p, NULL, WNOHANG);
		return false;
	}
	return true;
}

/* Test cleanup, not the daemon: plain sleeping is fine here. */
static void cleanup(void)
{
	const char *dirs[] = {"a", "b"};
	for (int d = 0; d < 2; d++) {
		char path[128];
		snprintf(path, sizeof path, "%s/%s/postmaster.pid", base,
			 dirs[d]);
		FILE *f = fopen(path, "r");
		int pid;
		if (f && fscanf(f, "%d", &pid) == 1)
			record_pid(pid);
		if (f)
			fclose(f);
	}
	for (int i = 0; i < nstarted; i++) {
		if (!alive(started[i]))
			continue;
		fprintf(stderr, "cleanup: SIGQUIT postmaster %d\n",
			(int)started[i]);
		kill(started[i], SIGQUIT);
		for (int k = 0; k < 50 && alive(started[i]); k++)
			usleep(100000);
		if (alive(started[i]))
			kill(started[i], SIGKILL);
	}
	if (base[0]) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup: %s failed\n", cmd);
	}
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	char logs[128];
	snprintf(logs, sizeof logs, "tail -n 15 %s/*.log >&2", base);
	if (system(logs) != 0)
		fprintf(stderr, "(no logs)\n");
	cleanup();
	exit(1);
}

#define CHECK(c, ...)                                                   \
	do {                                                            \
		if (!(c)) {                                             \
			fprintf(stderr, "%s:%d: %s:", __FILE__,         \
				__LINE__, #c);                          \
			fail(" " __VA_ARGS__);                          \
		}                                                       \
	} while (0)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_until(const bool *flag, unsigned cap_ms, const char *what)
{
	uint64_t end = uv_now(&loop) + cap_ms;
	while (!*flag) {
		if (uv_now(&loop) > end)
			fail("%s: not done after %u ms", what, cap_ms);
		uv_run(&loop, UV_RUN_ONCE);
	}
}

/* ---- awaiting operations ---- */

struct done {
	bool done;
	int err;
	char msg[PGC_ERRMSG_MAX];
};

static void on_done(void *arg, int err, const char *errmsg)
{
	struct done *d = arg;
	d->done = true;
	d->err = err;
	snprintf(d->msg, sizeof d->msg, "%s", errmsg);
}

static double t_op;

static void await_done(int rc, struct done *d, const char *what)
{
	if (rc < 0)
		fail("%s: returned %s", what, err_name(rc));
	CHECK(!d->done, "callback before the call returned");
	run_until(&d->done, 90000, what);
	if (d->err)
		fail("%s: %s: %s", what, err_name(d->err), d->msg);
}

#define AWAIT(what, call)                                               \
	do {                                                            \
		struct done d_ = {0};                                   \
		double t0_ = now_s();                                   \
		await_done(call(&d_), &d_, what);                       \
		t_op = now_s() - t0_;                                   \
		printf("  %-34s %6.3f s\n", what, t_op);                \
	} while (0)

struct probe_res {
	bool done;
	int err;
	char msg[PGC_ERRMSG_MAX];
	struct pgc_probe p;
	struct pgc_repl repl[4];
};

static void on_probe(void *arg, int err, const char *errmsg,
		     const struct pgc_probe *p)
{
	struct probe_res *r = arg;
	r->done = true;
	r->err = err;
	snprintf(r->msg, sizeof r->msg, "%s", errmsg);
	if (!err) {
		r->p = *p;
		size_t n = p->nrepl < 4 ? p->nrepl : 4;
		if (n)
			memcpy(r->repl, p->repl, n * sizeof *p->repl);
		r->p.repl = r->repl;
		r->p.nrepl = n;
	}
}

static struct pgc_probe probe(struct pgc_node *n, const char *what)
{
	struct probe_res r = {0};
	int rc = pgc_node_probe(n, 3000, on_probe, &r);
	if (rc < 0)
		fail("probe %s: %s", what, err_name(rc));
	run_until(&r.done, 5000, what);
	if (r.err)
		fail("probe %s: %s", what, r.msg);
	return r.p;
}

static void on_tick(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Let the loop run for ms (timers and I/O keep going). */
static void delay(unsigned ms)
{
	bool tick = false;
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	t.data = &tick;
	uv_timer_start(&t, on_tick, ms, 0);
	run_until(&tick, ms + 5000, "delay");
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
}

/* Probe every 50 ms until pred holds, at most cap_ms. */
static struct pgc_probe probe_until(struct pgc_node *n,
				    bool (*pred)(const struct pgc_probe *,
						 uint64_t),
				    uint64_t arg, unsigned cap_ms,
				    const char *what)
{
	uint64_t end = uv_now(&loop) + cap_ms;
	for (;;) {
		struct probe_res r = {0};
		if (pgc_node_probe(n, 2000, on_probe, &r) < 0)
			fail("probe %s", what);
		run_until(&r.done, 5000, what);
		if (!r.err && pred(&r.p, arg))
			return r.p;
		if (uv_now(&loop) > end)
			fail("%s: not reached after %u ms (%s): rec=%d tli=%u "
			     "streaming=%d wal=%llX recv=%llX replay=%llX "
			     "arg=%llX",
			     what, cap_ms, r.err ? r.msg : "condition false",
			     r.p.in_recovery, r.p.timeline, r.p.streaming,
			     (unsigned long long)r.p.wal_lsn,
			     (unsigned long long)r.p.receive_lsn,
			     (unsigned long long)r.p.replay_lsn,
			     (unsigned long long)arg);
		delay(50);
	}
}

static bool is_streaming(const struct pgc_probe *p, uint64_t arg)
{
	(void)arg;
	return p->in_recovery && p->streaming;
}

static bool replayed(const struct pgc_probe *p, uint64_t lsn)
{
	/* Not receive_lsn: after a restart of streaming it stays at the
	 * segment start until new WAL arrives (see pgc.h). */
	return p->replay_lsn >= lsn;
}

static bool is_primary(const struct pgc_probe *p, uint64_t tli)
{
	return !p->in_recovery && p->timeline == tli;
}

static bool has_repl(const struct pgc_probe *p, uint64_t arg)
{
	(void)arg;
	return p->nrepl == 1 && strcmp(p->repl[0].state, "streaming") == 0;
}

/* ---- queries ---- */

struct qres {
	bool done;
	int err;
	char msg[PGC_ERRMSG_MAX];
	char v[128];
};

static void on_query(void *arg, int err, const char *errmsg,
		     const struct pgc_rows *rows)
{
	struct qres *q = arg;
	q->done = true;
	q->err = err;
	snprintf(q->msg, sizeof q->msg, "%s", errmsg);
	const char *v = err ? NULL : pgc_rows_value(rows, 0, 0);
	snprintf(q->v, sizeof q->v, "%s", v ? v : "");
}

static const char *sql(struct pgc_node *n, const char *q)
{
	static struct qres r;
	memset(&r, 0, sizeof r);
	if (pgc_node_query(n, q, 0, NULL, 5000, on_query, &r) < 0)
		fail("query %s", q);
	run_until(&r.done, 8000, q);
	if (r.err)
		fail("query %s: %s", q, r.msg);
	return r.v;
}

/* ---- controldata ---- */

struct cdres {
	bool done;
	int err;
	char msg[PGC_ERRMSG_MAX];
	struct pgc_controldata cd;
};

static void on_cd(void *arg, int err, const char *errmsg,
		  const struct pgc_controldata *cd)
{
	struct cdres *r = arg;
	r->done = true;
	r->err = err;
	snprintf(r->msg, sizeof r->msg, "%s", errmsg);
	if (cd)
		r->cd = *cd;
}

static struct pgc_controldata controldata(struct pgc_node *n)
{
	struct cdres r = {0};
	if (pgc_node_controldata(n, on_cd, &r) < 0)
		fail("controldata");
	run_until(&r.done, 10000, "controldata");
	if (r.err)
		fail("controldata: %s", r.msg);
	return r.cd;
}

/* ---- nodes ---- */

struct exit_seen {
	bool fired;
	int64_t status;
	int sig;
};

static void on_pm_exit(void *arg, int64_t status, int sig)
{
	struct exit_seen *e = arg;
	e->fired = true;
	e->status = status;
	e->sig = sig;
}

static struct exit_seen exit_a, exit_b;
static unsigned port_a, port_b;
static char dir_a[96], dir_b[96], sock_a[96], sock_b[96], log_a[96],
	log_b[96];

static struct pgc_node *node(char which)
{
	static const char *settings[] = {"shared_buffers=16MB",
					 "max_connections=20", NULL};
	struct pgc_node_config c = {
		.name = which == 'a' ? "a" : "b",
		.bin_dir = BIN,
		.data_dir = which == 'a' ? dir_a : dir_b,
		.sock_dir = which == 'a' ? sock_a : sock_b,
		.port = which == 'a' ? port_a : port_b,
		.node_settings = settings,
		.log_path = which == 'a' ? log_a : log_b,
		.watch_ms = 100,
		.on_exit = on_pm_exit,
		.on_exit_arg = which == 'a' ? &exit_a : &exit_b,
	};
	struct pgc_node *n = NULL;
	int rc = pgc_node_new(&loop, &c, &n);
	if (rc < 0)
		fail("pgc_node_new: %s", err_name(rc));
	return n;
}

static const char *params[] = {
	"wal_level=replica", "max_wal_senders=10", "max_replication_slots=10",
	"hot_standby=on", "wal_keep_size=128MB", "wal_log_hints=on",
	"log_line_prefix=%m [%p] ", NULL};

static char conninfo_a[256], conninfo_b[256];

static void make_conninfo(char *buf, size_t cap, const char *sock,
			  unsigned port, const char *app)
{
	char p[8];
	snprintf(p, sizeof p, "%u", port);
	const char *kw[] = {"host", "port", "user", "dbname",
			    "application_name", NULL};
	const char *v[] = {sock, p, "postgres", "postgres", app, NULL};
	if (pgc_conninfo_build(buf, cap, kw, v) < 0)
		fail("conninfo");
}

static struct pgc_start_opts primary_opts(void)
{
	struct pgc_start_opts o = {
		.conf = {.parameters = params},
		.timeout_ms = 30000,
	};
	return o;
}

static struct pgc_start_opts replica_opts(const char *conninfo,
					  const char *slot)
{
	struct pgc_start_opts o = {
		.conf = {.parameters = params,
			 .replica = true,
			 .primary_conninfo = conninfo,
			 .primary_slot_name = slot},
		.timeout_ms = 30000,
	};
	return o;
}

/* Call wrappers for AWAIT. */
static struct pgc_node *na, *nb;
static struct pgc_start_opts sopts;
static char rewind_src[256];

static int do_initdb(struct done *d)
{
	static const char *opts[] = {"--encoding=UTF8", "--locale=C", NULL};
	struct pgc_initdb_opts o = {.options = opts};
	return pgc_node_initdb(na, &o, on_done, d);
}
static int do_start_a(struct done *d)
{
	return pgc_node_start(na, &sopts, on_done, d);
}
static int do_start_b(struct done *d)
{
	return pgc_node_start(nb, &sopts, on_done, d);
}
static int do_slot_b(struct done *d)
{
	return pgc_node_slot_create(na, "node_b", 5000, on_done, d);
}
static int do_slot_a_on_b(struct done *d)
{
	return pgc_node_slot_create(nb, "node_a", 5000, on_done, d);
}
static int do_basebackup(struct done *d)
{
	struct pgc_basebackup_opts o = {.conninfo = conninfo_a,
					.slot = "node_b"};
	return pgc_node_basebackup(nb, &o, on_done, d);
}
static int do_promote_b(struct done *d)
{
	return pgc_node_promote(nb, 30000, on_done, d);
}
static int do_stop_a(struct done *d)
{
	return pgc_node_stop(na, PGC_STOP_FAST, 20000, on_done, d);
}
static int do_stop_b(struct done *d)
{
	return pgc_node_stop(nb, PGC_STOP_FAST, 20000, on_done, d);
}
static int do_rewind_a(struct done *d)
{
	return pgc_node_rewind(na, rewind_src, 60000, on_done, d);
}
static int do_demote_b(struct done *d)
{
	return pgc_node_demote(nb, PGC_STOP_FAST, 20000, &sopts, on_done, d);
}
static int do_restart_a(struct done *d)
{
	return pgc_node_restart(na, PGC_STOP_FAST, 20000, &sopts, on_done, d);
}

static void free_done(void *arg)
{
	*(bool *)arg = true;
}

static void free_node(struct pgc_node *n)
{
	bool done = false;
	pgc_node_free(n, free_done, &done);
	run_until(&done, 5000, "node free");
}

static void walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	fprintf(stderr, "open handle: %s\n", uv_handle_type_name(h->type));
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() == 0) {
		printf("SKIP: run as the postgres user (pgctl_system.sh)\n");
		return 77;
	}
	if (access(BIN "/postgres", X_OK) != 0) {
		printf("SKIP: no PostgreSQL 15 in " BIN "\n");
		return 77;
	}
	log_set_level(getenv("PGC_DEBUG") ? LOG_DEBUG : LOG_WARN);
	/* pgctl_system.sh makes the directory (and cleans up after a crash
	 * of this program); standalone runs make their own. */
	const char *given = getenv("PGC_TEST_DIR");
	if (given && strlen(given) < 40) {
		snprintf(base, sizeof base, "%s", given);
	} else {
		snprintf(base, sizeof base, "/tmp/pgc.XXXXXX");
		if (!mkdtemp(base))
			fail("mkdtemp: %s", strerror(errno));
	}
	chmod(base, 0700);
	snprintf(dir_a, sizeof dir_a, "%s/a", base);
	snprintf(dir_b, sizeof dir_b, "%s/b", base);
	snprintf(sock_a, sizeof sock_a, "%s/sa", base);
	snprintf(sock_b, sizeof sock_b, "%s/sb", base);
	snprintf(log_a, sizeof log_a, "%s/a.log", base);
	snprintf(log_b, sizeof log_b, "%s/b.log", base);
	mkdir(sock_a, 0700);
	mkdir(sock_b, 0700);
	/* Unix sockets only (listen_addresses=''), so the ports only name
	 * the socket files; still in the 27000-27999 range. */
	port_a = 27000 + (unsigned)(getpid() % 450) * 2;
	port_b = port_a + 1;
	make_conninfo(conninfo_a, sizeof conninfo_a, sock_a, port_a, "node_b");
	make_conninfo(conninfo_b, sizeof conninfo_b, sock_b, port_b, "node_a");
	uv_loop_init(&loop);
	double t_all = now_s();
	printf("pgctl system test in %s, ports %u/%u\n", base, port_a, port_b);

	na = node('a');
	nb = node('b');

	/* initdb, hba, start primary */
	AWAIT("initdb (checksums)", do_initdb);
	char err[256];
	const char *hba[] = {"local all all peer", "local replication all peer",
			     NULL};
	CHECK(pgc_hba_write(dir_a, hba, err, sizeof err) == 0);
	sopts = primary_opts();
	AWAIT("start primary A", do_start_a);
	record_pid(pgc_node_pid(na));
	CHECK(pgc_node_state(na) == PGC_PM_RUNNING);
	CHECK(!pgc_node_adopted(na));
	struct pgc_probe p = probe(na, "A after start");
	CHECK(!p.in_recovery);
	CHECK(p.timeline == 1, "timeline %u", p.timeline);
	CHECK(p.system_id != 0);
	CHECK(p.wal_lsn != 0);
	CHECK(!p.pending_restart);
	uint64_t sysid = p.system_id;
	struct pgc_controldata cd = controldata(na);
	CHECK(cd.system_id == sysid);
	CHECK(cd.data_checksums);
	CHECK(strcmp(cd.state, "in production") == 0, "%s", cd.state);
	CHECK(pgc_node_reload(na) == 0);

	/* slot (twice: idempotent), clone, replica */
	AWAIT("create slot node_b", do_slot_b);
	AWAIT("create slot node_b again", do_slot_b);
	CHECK(strcmp(sql(na, "SELECT count(*) FROM pg_replication_slots"),
		     "1") == 0);
	AWAIT("pg_basebackup B", do_basebackup);
	sopts = replica_opts(conninfo_a, "node_b");
	AWAIT("start replica B", do_start_b);
	record_pid(pgc_node_pid(nb));
	double t0 = now_s();
	p = probe_until(nb, is_streaming, 0, 15000, "B streaming");
	printf("  %-34s %6.3f s\n", "B streaming after ready", now_s() - t0);
	CHECK(p.system_id == sysid);
	CHECK(p.timeline == 1, "timeline %u", p.timeline);
	CHECK(p.received_tli == 1);
	p = probe_until(na, has_repl, 0, 5000, "A sees B");
	CHECK(strcmp(p.repl[0].application_name, "node_b") == 0);
	CHECK(strcmp(p.repl[0].sync_state, "async") == 0);

	/* a write on A reaches B */
	sql(na, "CREATE TABLE t (i int)");
	sql(na, "INSERT INTO t SELECT generate_series(1, 1000)");
	p = probe(na, "A after write");
	uint64_t lsn = p.wal_lsn;
	struct pgc_probe pb0 = probe(nb, "B before");
	p = probe_until(nb, replayed, lsn, 10000, "B replays the write");
	CHECK(p.replay_lsn >= lsn && p.replay_lsn >= pb0.replay_lsn);
	CHECK(strcmp(sql(nb, "SELECT count(*) FROM t"), "1000") == 0);
	char lbuf[PGC_LSN_STRLEN];
	printf("  A wal_lsn %s, B replayed %s\n", pgc_lsn_format(lsn, lbuf),
	       pgc_lsn_format(p.replay_lsn, lbuf));

	/* promote B */
	AWAIT("promote B", do_promote_b);
	p = probe(nb, "B after promote");
	CHECK(!p.in_recovery);
	CHECK(p.timeline == 2, "timeline %u", p.timeline);
	CHECK(p.system_id == sysid);
	/* diverge: both accept a write */
	sql(nb, "INSERT INTO t VALUES (-2)");
	sql(na, "INSERT INTO t VALUES (-1)");
	sql(na, "CHECKPOINT");

	/* rewind A from B, rejoin as B's replica */
	AWAIT("stop A (fast)", do_stop_a);
	CHECK(pgc_node_state(na) == PGC_PM_STOPPED);
	CHECK(!exit_a.fired);
	make_conninfo(rewind_src, sizeof rewind_src, sock_b, port_b,
		      "pg_rewind");
	AWAIT("pg_rewind A", do_rewind_a);
	AWAIT("create slot node_a on B", do_slot_a_on_b);
	sopts = replica_opts(conninfo_b, "node_a");
	AWAIT("start A as replica of B", do_start_a);
	record_pid(pgc_node_pid(na));
	t0 = now_s();
	p = probe_until(na, is_streaming, 0, 15000, "A streaming");
	printf("  %-34s %6.3f s\n", "A streaming after ready", now_s() - t0);
	CHECK(p.timeline == 2, "timeline %u", p.timeline);
	p = probe(nb, "B primary");
	p = probe_until(na, replayed, p.wal_lsn, 10000, "A catches up");
	CHECK(strcmp(sql(na, "SELECT count(*) FROM t WHERE i = -1"), "0") == 0);
	CHECK(strcmp(sql(na, "SELECT count(*) FROM t WHERE i = -2"), "1") == 0);
	CHECK(probe_until(nb, is_primary, 2, 1000, "B").nrepl == 1);

	/* restart keeps it a streaming replica; per-node settings survived
	 * the rewind (they are on the command line) */
	AWAIT("restart A", do_restart_a);
	record_pid(pgc_node_pid(na));
	probe_until(na, is_streaming, 0, 15000, "A streaming again");
	char portq[64];
	snprintf(portq, sizeof portq, "%u", port_a);
	CHECK(strcmp(sql(na, "SHOW port"), portq) == 0);
	CHECK(strcmp(sql(na, "SHOW shared_buffers"), "16MB") == 0);

	/* kill -9 the postmaster: on_exit fires */
	pid_t pa = pgc_node_pid(na);
	t0 = now_s();
	CHECK(kill(pa, SIGKILL) == 0);
	run_until(&exit_a.fired, 5000, "exit callback");
	printf("  %-34s %6.3f s\n", "exit callback after kill -9",
	       now_s() - t0);
	CHECK(exit_a.sig == SIGKILL, "sig %d", exit_a.sig);
	CHECK(pgc_node_state(na) == PGC_PM_STOPPED);
	CHECK(pgc_node_pid(na) == 0);
	/* a failed rewind marks A unusable; start refuses it */
	/* (pg_control gone: pg_rewind fails after the source checkpoint) */
	{
		char from[160], to[160];
		snprintf(from, sizeof from, "%s/global/pg_control", dir_a);
		snprintf(to, sizeof to, "%s/global/pg_control.moved", dir_a);
		CHECK(rename(from, to) == 0);
		struct done d = {0};
		CHECK(pgc_node_rewind(na, rewind_src, 20000, on_done, &d) == 0);
		run_until(&d.done, 30000, "failing rewind");
		CHECK(d.err == ERR_PG, "%s", err_name(d.err));
		CHECK(strstr(d.msg, "rewind: pg_rewind: exit 1") != NULL, "%s",
		      d.msg);
		CHECK(!exit_b.fired);
		printf("  failed rewind says: %s\n", d.msg);
		sopts = replica_opts(conninfo_b, "node_a");
		CHECK(pgc_node_start(na, &sopts, on_done, &d) == ERR_CORRUPT);
		CHECK(pgc_node_rewind(na, rewind_src, 1000, on_done, &d) ==
		      ERR_CORRUPT);
	}

	/* demote B (its would-be primary A is down: it still comes up as a
	 * hot standby from its own WAL) */
	sopts = replica_opts(conninfo_a, "node_b");
	AWAIT("demote B", do_demote_b);
	record_pid(pgc_node_pid(nb));
	p = probe(nb, "B demoted");
	CHECK(p.in_recovery && !p.streaming);
	CHECK(p.timeline == 2, "timeline %u", p.timeline);

	/* adopt: drop B's node without stopping; a new one adopts the pid */
	pid_t pb = pgc_node_pid(nb);
	free_node(nb);
	CHECK(alive(pb));
	nb = node('b');
	sopts = primary_opts();
	AWAIT("start B again (adopts)", do_start_b);
	CHECK(pgc_node_adopted(nb));
	CHECK(pgc_node_pid(nb) == pb, "%d != %d", (int)pgc_node_pid(nb),
	      (int)pb);
	p = probe(nb, "adopted B");
	CHECK(p.in_recovery && p.timeline == 2);
	CHECK(pgc_node_adopt(nb) == ERR_EXISTS);
	AWAIT("stop adopted B (fast)", do_stop_b);
	CHECK(!alive(pb));
	CHECK(pgc_node_state(nb) == PGC_PM_STOPPED);
	CHECK(!exit_b.fired);
	/* stopping a stopped node succeeds */
	AWAIT("stop B again", do_stop_b);

	free_node(na);
	free_node(nb);
	for (int i = 0; i < 100 && uv_loop_alive(&loop); i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	if (uv_loop_close(&loop) != 0) {
		uv_walk(&loop, walk_cb, NULL);
		fail("handles left open");
	}
	for (int i = 0; i < nstarted; i++)
		CHECK(!alive(started[i]), "pid %d", (int)started[i]);
	cleanup();
	printf("PASS pgctl system test in %.2f s\n", now_s() - t_all);
	return 0;
}
