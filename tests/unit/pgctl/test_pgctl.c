/* test_pgctl.c - unit tests of pgctl without PostgreSQL: LSN parsing,
 * conninfo and conf quoting (checked against libpq's own parser),
 * postmaster.pid and pg_controldata parsing, the data directory file
 * writers, child processes (exit codes, tails, timeouts, kill escalation,
 * environment, cwd) and the libpq connection's error and deadline paths.
 * Every test ends with no open handle on its loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "err.h"
#include "mem.h"
#include "pgc.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */
/* ------------------------------------------------------------------ */

static void walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	fprintf(stderr, "open handle: %s\n", uv_handle_type_name(h->type));
}

/* Run the loop until *flag, capped at cap_ms of loop time. */
static void run_until(uv_loop_t *loop, const bool *flag, unsigned cap_ms)
{
	uint64_t end = uv_now(loop) + cap_ms;
	while (!*flag && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	assert_true(*flag);
}

static void loop_teardown(uv_loop_t *loop)
{
	for (int i = 0; i < 100 && uv_loop_alive(loop); i++)
		uv_run(loop, UV_RUN_NOWAIT);
	uv_run(loop, UV_RUN_DEFAULT);
	if (uv_loop_close(loop) != 0) {
		uv_walk(loop, walk_cb, NULL);
		fail_msg("handles left open");
	}
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/pgc_unit.XXXXXX");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rmtree(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ------------------------------------------------------------------ */
/* LSN                                                                  */
/* ------------------------------------------------------------------ */

static void test_lsn(void **state)
{
	(void)state;
	uint64_t v = 1;
	assert_int_equal(pgc_lsn_parse("16/B374D848", &v), 0);
	assert_true(v == 0x16B374D848ULL);
	assert_int_equal(pgc_lsn_parse("0/0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(pgc_lsn_parse("FFFFFFFF/ffffffff", &v), 0);
	assert_true(v == UINT64_MAX);
	const char *bad[] = {"", "16", "16/", "/1", "123456789/0", "1/2x",
			     "g/1", "1//2", " 1/2", "1/2 ", "-1/2", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(pgc_lsn_parse(bad[i], &v), ERR_INVAL);
	assert_int_equal(pgc_lsn_parse(NULL, &v), ERR_INVAL);
	char buf[PGC_LSN_STRLEN];
	assert_string_equal(pgc_lsn_format(0x16B374D848ULL, buf),
			    "16/B374D848");
	assert_string_equal(pgc_lsn_format(UINT64_MAX, buf),
			    "FFFFFFFF/FFFFFFFF");
	assert_string_equal(pgc_lsn_format(0, buf), "0/0");
	assert_int_equal(pgc_lsn_parse(pgc_lsn_format(0x123456789aULL, buf),
				       &v),
			 0);
	assert_true(v == 0x123456789aULL);
}

/* ------------------------------------------------------------------ */
/* conninfo and conf quoting                                            */
/* ------------------------------------------------------------------ */

/* The value libpq's parser finds for kw in s. */
static const char *parsed(PQconninfoOption *opts, const char *kw)
{
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, kw) == 0)
			return o->val;
	return NULL;
}

static void test_conninfo(void **state)
{
	(void)state;
	char buf[512];
	const char *kw[] = {"host", "port", "user", "password",
			    "application_name", "dbname", NULL};
	const char *val[] = {"/tmp/dir with space", "27001", "o'brien",
			     "p\\w 'x'", "node1", "", NULL};
	assert_int_equal(pgc_conninfo_build(buf, sizeof buf, kw, val), 0);
	assert_string_equal(buf, "host='/tmp/dir with space' port=27001 "
				 "user='o\\'brien' password='p\\\\w \\'x\\'' "
				 "application_name=node1");
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(buf, &err);
	assert_non_null(opts);
	for (int i = 0; i < 5; i++)
		assert_string_equal(parsed(opts, kw[i]), val[i]);
	assert_null(parsed(opts, "dbname"));
	PQconninfoFree(opts);

	/* Too small: ERR_TOOBIG and an empty string. */
	assert_int_equal(pgc_conninfo_build(buf, 10, kw, val), ERR_TOOBIG);
	assert_string_equal(buf, "");
	const char *badkw[] = {"ho st", NULL};
	const char *badv[] = {"x", NULL};
	assert_int_equal(pgc_conninfo_build(buf, sizeof buf, badkw, badv),
			 ERR_INVAL);
	const char *none[] = {NULL};
	assert_int_equal(pgc_conninfo_build(buf, sizeof buf, none, none), 0);
	assert_string_equal(buf, "");

	assert_int_equal(pgc_conf_quote(buf, sizeof buf, "it's a\\b"), 0);
	assert_string_equal(buf, "'it''s a\\\\b'");
	assert_int_equal(pgc_conf_quote(buf, sizeof buf, ""), 0);
	assert_string_equal(buf, "''");
	assert_int_equal(pgc_conf_quote(buf, 4, "abcdef"), ERR_TOOBIG);
}

/* ------------------------------------------------------------------ */
/* postmaster.pid                                                       */
/* ------------------------------------------------------------------ */

static void test_pidfile(void **state)
{
	(void)state;
	struct pgc_pidfile pf;
	const char *text = "12345\n/tmp/pgc x/data\n1764155907\n27001\n"
			   "/tmp/pgc.s\n127.0.0.1\n  27001001     32769\n"
			   "ready   \n";
	assert_int_equal(pgc_pidfile_parse(text, &pf), 0);
	assert_int_equal(pf.pid, 12345);
	assert_string_equal(pf.data_dir, "/tmp/pgc x/data");
	assert_true(pf.start_time == 1764155907);
	assert_int_equal(pf.port, 27001);
	assert_string_equal(pf.sock_dir, "/tmp/pgc.s");
	assert_string_equal(pf.listen, "127.0.0.1");
	assert_string_equal(pf.status, "ready");

	/* Still starting: only the first lines, no status yet. */
	assert_int_equal(pgc_pidfile_parse("77\n/d\n1\n5432\n", &pf), 0);
	assert_int_equal(pf.pid, 77);
	assert_string_equal(pf.status, "");
	assert_string_equal(pf.sock_dir, "");

	const char *bad[] = {"", "abc\n/d\n1\n5432\n", "77\n/d\n1\n",
			     "77\n\n1\n5432\n", "0\n/d\n1\n5432\n",
			     "77\n/d\nx\n5432\n", "77\n/d\n1\n99999\n", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(pgc_pidfile_parse(bad[i], &pf), ERR_CORRUPT);

	char *d = tmpdir();
	char err[128];
	assert_int_equal(pgc_pidfile_read(d, &pf, err, sizeof err),
			 ERR_NOTFOUND);
	char path[256];
	snprintf(path, sizeof path, "%s/postmaster.pid", d);
	write_text(path, text);
	assert_int_equal(pgc_pidfile_read(d, &pf, err, sizeof err), 0);
	assert_int_equal(pf.port, 27001);
	write_text(path, "garbage");
	assert_int_equal(pgc_pidfile_read(d, &pf, err, sizeof err),
			 ERR_CORRUPT);
	assert_non_null(strstr(err, "malformed"));
	rmtree(d);
	free(d);
}

/* ------------------------------------------------------------------ */
/* pg_controldata                                                       */
/* ------------------------------------------------------------------ */

/* Captured from PostgreSQL 15.20 (LC_ALL=C) on a standby after a
 * promotion elsewhere; abridged at the end. */
static const char controldata_sample[] =
	"pg_control version number:            1300\n"
	"Catalog version number:               202209061\n"
	"Database system identifier:           7712438011673216021\n"
	"Database cluster state:               in archive recovery\n"
	"pg_control last modified:             Thu Nov 26 11:18:27 2026\n"
	"Latest checkpoint location:           16/B374D848\n"
	"Latest checkpoint's REDO location:    0/17529B0\n"
	"Latest checkpoint's REDO WAL file:    000000020000000000000001\n"
	"Latest checkpoint's TimeLineID:       2\n"
	"Latest checkpoint's PrevTimeLineID:   1\n"
	"Latest checkpoint's full_page_writes: on\n"
	"Latest checkpoint's NextXID:          0:724\n"
	"Latest checkpoint's oldestCommitTsXid:0\n"
	"Time of latest checkpoint:            Thu Nov 26 11:18:27 2026\n"
	"Fake LSN counter for unlogged rels:   0/3E8\n"
	"Minimum recovery ending location:     0/3000060\n"
	"Min recovery ending loc's timeline:   2\n"
	"Backup start location:                0/0\n"
	"End-of-backup record required:        no\n"
	"wal_level setting:                    replica\n"
	"wal_log_hints setting:                off\n"
	"Data page checksum version:           1\n";

static void test_controldata(void **state)
{
	(void)state;
	struct pgc_controldata cd;
	assert_int_equal(pgc_controldata_parse(controldata_sample, &cd), 0);
	assert_true(cd.system_id == 7712438011673216021ULL);
	assert_string_equal(cd.state, "in archive recovery");
	assert_int_equal(cd.timeline, 2);
	assert_true(cd.checkpoint_lsn == 0x16B374D848ULL);
	assert_true(cd.min_recovery_lsn == 0x3000060);
	assert_int_equal(cd.min_recovery_tli, 2);
	assert_true(cd.data_checksums);
	assert_false(cd.wal_log_hints);

	assert_int_equal(pgc_controldata_parse("", &cd), ERR_CORRUPT);
	assert_int_equal(
		pgc_controldata_parse("Database system identifier: 12x\n", &cd),
		ERR_CORRUPT);
	/* No timeline. */
	assert_int_equal(
		pgc_controldata_parse("Database system identifier: 12\n"
				      "Database cluster state: shut down\n",
				      &cd),
		ERR_CORRUPT);
}

/* ------------------------------------------------------------------ */
/* data directory files                                                 */
/* ------------------------------------------------------------------ */

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_conf_write(void **state)
{
	(void)state;
	char *d = tmpdir();
	char path[256], sig[256], inc[256], err[256];
	snprintf(path, sizeof path, "%s/postgresql.conf", d);
	snprintf(sig, sizeof sig, "%s/standby.signal", d);
	snprintf(inc, sizeof inc, "%s/pgwarden.conf", d);
	write_text(path, "shared_buffers = 16MB"); /* no final newline */

	const char *params[] = {"wal_level=replica", " max_wal_senders = 10",
				"wal_keep_size=128MB",
				"archive_command=test ! -f '/a b/%f'", NULL};
	struct pgc_conf c = {
		.parameters = params,
		.replica = true,
		.primary_conninfo = "host='/tmp/s x' port=27001 user=rep",
		.primary_slot_name = "node2",
	};
	assert_int_equal(pgc_conf_write(d, &c, err, sizeof err), 0);
	assert_int_equal(pgc_conf_write(d, &c, err, sizeof err), 0);
	char *pc = slurp(path);
	assert_non_null(pc);
	assert_int_equal(count(pc, PGC_CONF_INCLUDE), 1);
	assert_non_null(strstr(pc, "shared_buffers = 16MB\n# added by"));
	char *w = slurp(inc);
	assert_non_null(w);
	assert_non_null(strstr(w, "wal_level = 'replica'\n"));
	assert_non_null(strstr(w, "max_wal_senders = '10'\n"));
	assert_non_null(
		strstr(w, "archive_command = 'test ! -f ''/a b/%f'''\n"));
	assert_non_null(strstr(w, "primary_conninfo = 'host=''/tmp/s x'' "
				  "port=27001 user=rep'\n"));
	assert_non_null(strstr(w, "primary_slot_name = 'node2'\n"));
	assert_non_null(strstr(w, "recovery_target_timeline = 'latest'\n"));
	struct stat st;
	assert_int_equal(stat(inc, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(access(sig, F_OK), 0);

	/* Primary: no replica settings, no standby.signal. */
	c.replica = false;
	assert_int_equal(pgc_conf_write(d, &c, err, sizeof err), 0);
	w = slurp(inc);
	assert_null(strstr(w, "primary_conninfo"));
	assert_non_null(strstr(w, "wal_keep_size = '128MB'"));
	/* the same recovery_target_timeline as a replica's: the reload after
	 * a promotion must not try to change a restart-only parameter */
	assert_non_null(strstr(w, "recovery_target_timeline = 'latest'\n"));
	assert_int_equal(access(sig, F_OK), -1);
	assert_int_equal(count(slurp(path), PGC_CONF_INCLUDE), 1);
	/* Removing a missing standby.signal is fine. */
	assert_int_equal(pgc_standby_signal_set(d, false, err, sizeof err),
			 0);

	/* Bad parameters change nothing. */
	const char *bad1[] = {"novalue", NULL};
	const char *bad2[] = {"bad name=1", NULL};
	const char *bad3[] = {"=1", NULL};
	c.parameters = bad1;
	assert_int_equal(pgc_conf_write(d, &c, err, sizeof err), ERR_INVAL);
	c.parameters = bad2;
	assert_int_equal(pgc_conf_write(d, &c, err, sizeof err), ERR_INVAL);
	c.parameters = bad3;
	assert_int_equal(pgc_conf_write(d, &c, err, sizeof err), ERR_INVAL);
	assert_non_null(strstr(slurp(inc), "wal_keep_size"));

	/* pg_hba.conf */
	const char *hba[] = {"local all postgres peer",
			     "host replication rep 127.0.0.1/32 scram-sha-256",
			     NULL};
	assert_int_equal(pgc_hba_write(d, hba, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/pg_hba.conf", d);
	char *h = slurp(path);
	assert_non_null(strstr(h, "local all postgres peer\nhost replication "
				  "rep 127.0.0.1/32 scram-sha-256\n"));
	const char *badhba[] = {"a\nb", NULL};
	assert_int_equal(pgc_hba_write(d, badhba, err, sizeof err),
			 ERR_INVAL);

	/* A directory without postgresql.conf. */
	rmtree(d);
	assert_int_equal(pgc_conf_ensure_include(d, err, sizeof err), ERR_IO);
	free(d);
}

/* With a loop, the files are in place when the call returns and the disk
 * flush is a request on the loop's thread pool (the loop stays alive until
 * it completes; the loop thread did not wait for it), which completes and
 * lets the loop close cleanly. */
static void test_conf_write_on_loop(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	char *d = tmpdir();
	char path[256], inc[256], tmp[256], err[256];
	snprintf(path, sizeof path, "%s/postgresql.conf", d);
	snprintf(inc, sizeof inc, "%s/pgwarden.conf", d);
	snprintf(tmp, sizeof tmp, "%s/pgwarden.conf.tmp", d);
	write_text(path, "shared_buffers = 16MB\n");
	const char *params[] = {"wal_level=replica", NULL};
	struct pgc_conf c = { .parameters = params, .replica = false };
	assert_int_equal(pgc_conf_write_on(&loop, d, &c, err, sizeof err), 0);
	assert_non_null(strstr(slurp(inc), "wal_level = 'replica'\n"));
	assert_int_equal(access(tmp, F_OK), -1);
	assert_true(uv_loop_alive(&loop)); /* the flush is pending */
	const char *hba[] = {"local all postgres peer", NULL};
	assert_int_equal(pgc_hba_write_on(&loop, d, hba, err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/pg_hba.conf", d);
	assert_non_null(strstr(slurp(path), "local all postgres peer\n"));
	/* both flushes complete; nothing is left on the loop */
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_false(uv_loop_alive(&loop));
	assert_int_equal(uv_loop_close(&loop), 0);
	/* without a loop: flushed here, the fd closed either way */
	int fd = open(inc, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pgc_file_sync_async(NULL, fd, inc), 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	rmtree(d);
	free(d);
}

/* ------------------------------------------------------------------ */
/* child processes                                                      */
/* ------------------------------------------------------------------ */

struct pres {
	bool done;
	int err;
	int64_t status;
	int sig;
	char out[PGC_TAIL_MAX + 1];
	size_t out_len;
	char errout[PGC_TAIL_MAX + 1];
	char msg[PGC_ERRMSG_MAX];
};

static void on_proc(void *arg, const struct pgc_proc_result *r)
{
	struct pres *p = arg;
	p->done = true;
	p->err = r->err;
	p->status = r->exit_status;
	p->sig = r->term_signal;
	memcpy(p->out, r->out, r->out_len + 1);
	p->out_len = r->out_len;
	memcpy(p->errout, r->errout, r->errout_len + 1);
	snprintf(p->msg, sizeof p->msg, "%s", r->errmsg);
}

static void run_sh(uv_loop_t *loop, const char *script,
		   struct pgc_proc_opts *o, struct pres *res)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	o->file = "/bin/sh";
	o->argv = argv;
	memset(res, 0, sizeof *res);
	char err[PGC_ERRMSG_MAX];
	assert_int_equal(pgc_proc_run(loop, o, on_proc, res, NULL, err,
				      sizeof err),
			 0);
	assert_false(res->done); /* never before the call returns */
	run_until(loop, &res->done, 10000);
}

static void test_proc(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct pres r;
	struct pgc_proc_opts o = {0};

	run_sh(&loop, "echo hello; echo oops >&2; echo 'last words' >&2; "
		      "exit 3",
	       &o, &r);
	assert_int_equal(r.err, ERR_PG);
	assert_true(r.status == 3);
	assert_string_equal(r.out, "hello\n");
	assert_string_equal(r.errout, "oops\nlast words\n");
	assert_string_equal(r.msg, "sh: exit 3: last words");

	o.name = "pg_rewind";
	run_sh(&loop, "echo fine", &o, &r);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.msg, "");
	o.name = NULL;

	/* The tail keeps the last 4 KiB. */
	run_sh(&loop, "seq 1 100000", &o, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.out_len, PGC_TAIL_MAX);
	assert_non_null(strstr(r.out, "\n99999\n100000\n"));
	assert_int_equal(strlen(r.out), PGC_TAIL_MAX);

	/* Environment additions and cwd. */
	const char *env[] = {"PGC_TEST_VAR=a b", "HOME=/nowhere", NULL};
	o.env_add = env;
	o.cwd = "/usr";
	run_sh(&loop, "echo \"$PGC_TEST_VAR|$HOME|$(pwd)\"", &o, &r);
	assert_string_equal(r.out, "a b|/nowhere|/usr\n");
	o.env_add = NULL;
	o.cwd = NULL;

	/* Deadline: SIGTERM. */
	o.timeout_ms = 100;
	uint64_t t0 = uv_now(&loop);
	run_sh(&loop, "exec sleep 5", &o, &r);
	assert_int_equal(r.err, ERR_TIMEOUT);
	assert_int_equal(r.sig, 15);
	assert_true(uv_now(&loop) - t0 < 2000);
	assert_non_null(strstr(r.msg, "timed out after 100 ms"));

	/* Ignores SIGTERM: SIGKILL after the grace. */
	o.kill_grace_ms = 100;
	run_sh(&loop, "trap '' TERM; echo armed; while :; do sleep 0.05; "
		      "done",
	       &o, &r);
	assert_int_equal(r.err, ERR_TIMEOUT);
	o.timeout_ms = 0;
	o.kill_grace_ms = 0;

	/* A grandchild holding the pipes does not hold the callback. */
	t0 = uv_now(&loop);
	run_sh(&loop, "sleep 3 & echo started", &o, &r);
	assert_int_equal(r.err, 0);
	assert_true(uv_now(&loop) - t0 < 2000);

	/* Killed by a signal. */
	run_sh(&loop, "kill -9 $$", &o, &r);
	assert_int_equal(r.err, ERR_PG);
	assert_int_equal(r.sig, 9);
	assert_non_null(strstr(r.msg, "killed by signal 9"));

	/* pgc_proc_kill: ERR_CANCELED. */
	const char *argv[] = {"sleep", "5", NULL};
	o.file = "/bin/sleep";
	o.argv = argv;
	struct pgc_proc *p = NULL;
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_proc_run(&loop, &o, on_proc, &r, &p, NULL, 0), 0);
	assert_true(pgc_proc_pid(p) > 0);
	pgc_proc_kill(p);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, ERR_CANCELED);

	/* Abandon: no callback. */
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_proc_run(&loop, &o, on_proc, &r, &p, NULL, 0), 0);
	pgc_proc_abandon(p, 9);
	for (int i = 0; i < 20; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_false(r.done);

	/* Run as another user (a root daemon runs PostgreSQL programs as
	 * postgres). */
	struct passwd *pw = getpwnam("postgres");
	if (geteuid() == 0 && pw) {
		struct pgc_proc_opts as = {.set_ids = true, .uid = pw->pw_uid,
					   .gid = pw->pw_gid, .cwd = "/tmp"};
		run_sh(&loop, "echo $(id -u):$(id -g)", &as, &r);
		char want[64];
		snprintf(want, sizeof want, "%u:%u\n", (unsigned)pw->pw_uid,
			 (unsigned)pw->pw_gid);
		assert_string_equal(r.out, want);
	}

	/* A missing program fails at once and never calls back. */
	const char *argv2[] = {"nope", NULL};
	o.file = "/nonexistent/nope";
	o.argv = argv2;
	char err[PGC_ERRMSG_MAX];
	assert_int_equal(pgc_proc_run(&loop, &o, on_proc, &r, NULL, err,
				      sizeof err),
			 ERR_NOTFOUND);
	assert_non_null(strstr(err, "nope"));
	/* Output to a log file. */
	char *d = tmpdir();
	char logp[256];
	snprintf(logp, sizeof logp, "%s/log", d);
	o.log_path = logp;
	run_sh(&loop, "echo to-file; echo err-file >&2", &o, &r);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.out, "");
	assert_string_equal(slurp(logp), "to-file\nerr-file\n");
	rmtree(d);
	free(d);
	loop_teardown(&loop);
}

/* ------------------------------------------------------------------ */
/* libpq connection: error and deadline paths                           */
/* ------------------------------------------------------------------ */

struct qres {
	bool done;
	int err;
	char msg[PGC_ERRMSG_MAX];
};

static void on_query(void *arg, int err, const char *errmsg,
		     const struct pgc_rows *rows)
{
	struct qres *q = arg;
	(void)rows;
	q->done = true;
	q->err = err;
	snprintf(q->msg, sizeof q->msg, "%s", errmsg);
}

static void on_probe(void *arg, int err, const char *errmsg,
		     const struct pgc_probe *p)
{
	(void)p;
	on_query(arg, err, errmsg, NULL);
}

static uv_pipe_t *accepted[8];
static int naccepted;

static void on_conn_cb(uv_stream_t *server, int status)
{
	/* Accept and never answer: the client waits for the server. */
	assert_int_equal(status, 0);
	uv_pipe_t *c = malloc(sizeof *c);
	uv_pipe_init(server->loop, c, 0);
	assert_int_equal(uv_accept(server, (uv_stream_t *)c), 0);
	assert_true(naccepted < 8);
	accepted[naccepted++] = c;
}

static void free_close(uv_handle_t *h)
{
	free(h);
}

static void test_conn(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct pgc_conn *c = NULL;

	/* Host names are refused: no DNS on the loop. */
	const char *kw[] = {"host", "port", "dbname", NULL};
	const char *v1[] = {"localhost", "5432", "postgres", NULL};
	struct pgc_conn_opts o = {.keywords = kw, .values = v1};
	assert_int_equal(pgc_conn_new(&loop, &o, &c), ERR_INVAL);
	const char *v2[] = {"127.0.0.1,/tmp,::1", "5432", "postgres", NULL};
	o.values = v2;
	assert_int_equal(pgc_conn_new(&loop, &o, &c), 0);
	pgc_conn_free(c);

	/* No server behind the socket directory: a connect error. */
	char *d = tmpdir();
	const char *v3[] = {d, "27999", "postgres", NULL};
	o.values = v3;
	assert_int_equal(pgc_conn_new(&loop, &o, &c), 0);
	struct qres q = {0};
	assert_int_equal(pgc_conn_query(c, "SELECT 1", 0, NULL, 2000, on_query,
					&q),
			 0);
	assert_false(q.done);
	assert_int_equal(pgc_conn_query(c, "SELECT 1", 0, NULL, 2000, on_query,
					&q),
			 ERR_UNAVAILABLE);
	run_until(&loop, &q.done, 5000);
	assert_int_equal(q.err, ERR_PG);
	assert_non_null(strstr(q.msg, "connect: "));
	assert_null(strchr(q.msg, '\n'));
	/* The probe goes the same way. */
	memset(&q, 0, sizeof q);
	assert_int_equal(pgc_conn_probe(c, 2000, on_probe, &q), 0);
	run_until(&loop, &q.done, 5000);
	assert_int_equal(q.err, ERR_PG);

	/* A server that accepts and never answers: the deadline. */
	uv_pipe_t server;
	char sock[300];
	snprintf(sock, sizeof sock, "%s/.s.PGSQL.27999", d);
	uv_pipe_init(&loop, &server, 0);
	assert_int_equal(uv_pipe_bind(&server, sock), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&server, 4, on_conn_cb), 0);
	memset(&q, 0, sizeof q);
	uint64_t t0 = uv_now(&loop);
	assert_int_equal(pgc_conn_query(c, "SELECT 1", 0, NULL, 200, on_query,
					&q),
			 0);
	run_until(&loop, &q.done, 5000);
	assert_int_equal(q.err, ERR_TIMEOUT);
	assert_true(uv_now(&loop) - t0 >= 190);
	assert_non_null(strstr(q.msg, "timed out after 200 ms"));

	/* Free with a query running: no callback. */
	memset(&q, 0, sizeof q);
	assert_int_equal(pgc_conn_query(c, "SELECT 1", 0, NULL, 200, on_query,
					&q),
			 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	pgc_conn_free(c);
	for (int i = 0; i < 50; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_false(q.done);
	for (int i = 0; i < naccepted; i++)
		uv_close((uv_handle_t *)accepted[i], free_close);
	uv_close((uv_handle_t *)&server, NULL);
	loop_teardown(&loop);
	rmtree(d);
	free(d);
}

/* Allocation failures in the file writers and the conn constructor
 * return ERR_NOMEM and leak nothing (ASan checks the leak part). */
static void test_nomem(void **state)
{
	(void)state;
	char *d = tmpdir();
	char path[256], err[256];
	snprintf(path, sizeof path, "%s/postgresql.conf", d);
	write_text(path, "");
	const char *params[] = {"a=1", "b=2", NULL};
	struct pgc_conf c = {.parameters = params, .replica = true,
			     .primary_conninfo = "host=/x"};
	int ok = 0;
	for (long n = 0; n < 40; n++) {
		mem_fail_after(n);
		int rc = pgc_conf_write(d, &c, err, sizeof err);
		mem_fail_after(-1);
		assert_true(rc == 0 || rc == ERR_NOMEM);
		ok += rc == 0;
	}
	assert_true(ok > 0);
	uv_loop_t loop;
	uv_loop_init(&loop);
	const char *kw[] = {"host", "port", NULL};
	const char *v[] = {"/tmp", "1", NULL};
	struct pgc_conn_opts o = {.keywords = kw, .values = v};
	for (long n = 0; n < 10; n++) {
		struct pgc_conn *cn = NULL;
		mem_fail_after(n);
		int rc = pgc_conn_new(&loop, &o, &cn);
		mem_fail_after(-1);
		assert_true(rc == 0 || rc == ERR_NOMEM);
		pgc_conn_free(rc == 0 ? cn : NULL);
	}
	loop_teardown(&loop);
	rmtree(d);
	free(d);
}

/* ------------------------------------------------------------------ */
/* node operations against fake PostgreSQL programs                     */
/* ------------------------------------------------------------------ */

struct dres {
	bool done;
	int err;
	char msg[PGC_ERRMSG_MAX];
};

static void on_done(void *arg, int err, const char *errmsg)
{
	struct dres *d = arg;
	d->done = true;
	d->err = err;
	snprintf(d->msg, sizeof d->msg, "%s", errmsg);
}

static void write_script(const char *dir, const char *name, const char *body)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	write_text(path, body);
	assert_int_equal(chmod(path, 0755), 0);
}

static void free_done(void *arg)
{
	*(bool *)arg = true;
}

/* Every failure path of the node state machine that needs no server:
 * failing initdb, a postmaster that exits at once, one that never
 * listens (start deadline, then a fast stop), one that ignores SIGINT
 * (stop escalates), a failing pg_ctl promote, busy refusals. */
static void test_node_fake(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *d = tmpdir();
	char bin[256], data[256], sock[256];
	snprintf(bin, sizeof bin, "%s/bin", d);
	snprintf(data, sizeof data, "%s/data", d);
	snprintf(sock, sizeof sock, "%s", d);
	assert_int_equal(mkdir(bin, 0700), 0);
	assert_int_equal(mkdir(data, 0700), 0);
	char conf[300];
	snprintf(conf, sizeof conf, "%s/postgresql.conf", data);
	write_text(conf, "");
	write_script(bin, "initdb",
		     "#!/bin/sh\necho 'initdb: error: directory \"x\" exists "
		     "but is not empty' >&2\nexit 1\n");
	write_script(bin, "postgres",
		     "#!/bin/sh\ncase $FAKE_PG in\n"
		     "exit) echo 'FATAL:  lock file exists' >&2; exit 1;;\n"
		     "hang) exec sleep 30;;\n"
		     "stubborn) trap '' INT TERM; echo stubborn; "
		     "while :; do sleep 0.05; done;;\n"
		     "esac\n");
	write_script(bin, "pg_ctl",
		     "#!/bin/sh\necho 'pg_ctl: server did not promote in time'"
		     " >&2\nexit 1\n");

	struct pgc_node_config cfg = {
		.name = "fake",
		.bin_dir = bin,
		.data_dir = data,
		.sock_dir = sock,
		.port = 27998,
	};
	struct pgc_node *n = NULL;
	assert_int_equal(pgc_node_new(&loop, &cfg, &n), 0);
	assert_int_equal(pgc_node_state(n), PGC_PM_STOPPED);
	assert_int_equal(pgc_node_pid(n), 0);
	assert_int_equal(pgc_node_reload(n), ERR_UNAVAILABLE);
	assert_int_equal(pgc_node_adopt(n), ERR_NOTFOUND);

	/* initdb fails: the message wraps the program's last line. */
	struct dres r = {0};
	struct pgc_initdb_opts io = {0};
	assert_int_equal(pgc_node_initdb(n, &io, on_done, &r), 0);
	assert_true(pgc_node_busy(n));
	assert_int_equal(pgc_node_initdb(n, &io, on_done, &r), ERR_UNAVAILABLE);
	assert_false(r.done);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, ERR_PG);
	assert_string_equal(r.msg, "initdb: initdb: exit 1: initdb: error: "
				   "directory \"x\" exists but is not empty");
	assert_string_equal(pgc_node_errmsg(n), r.msg);
	assert_false(pgc_node_busy(n));

	/* The postmaster exits at once. */
	setenv("FAKE_PG", "exit", 1);
	struct pgc_start_opts so = {.timeout_ms = 3000};
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_node_start(n, &so, on_done, &r), 0);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, ERR_PG);
	assert_non_null(strstr(r.msg, "start: postgres: exit 1: FATAL:  lock "
				      "file exists"));
	assert_int_equal(pgc_node_state(n), PGC_PM_STOPPED);
	/* pgwarden.conf was written before the spawn */
	char path[300];
	snprintf(path, sizeof path, "%s/pgwarden.conf", data);
	assert_int_equal(access(path, F_OK), 0);

	/* Never accepts connections: the deadline, postmaster left up. */
	setenv("FAKE_PG", "hang", 1);
	so.timeout_ms = 300;
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_node_start(n, &so, on_done, &r), 0);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, ERR_TIMEOUT);
	assert_non_null(strstr(r.msg, "start: not ready after 300 ms"));
	assert_int_equal(pgc_node_state(n), PGC_PM_STARTING);
	assert_true(pgc_node_pid(n) > 0);
	assert_int_equal(pgc_node_start(n, &so, on_done, &r), ERR_EXISTS);
	assert_int_equal(pgc_node_reload(n), 0);
	/* ...SIGHUP ended the fake (sleep dies of it): the exit is reported
	 * through on_exit (none set) and the state follows. */
	for (int i = 0; i < 200 && pgc_node_state(n) != PGC_PM_STOPPED; i++)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(pgc_node_state(n), PGC_PM_STOPPED);

	/* A stop preempts a start: ERR_CANCELED for the start, later. */
	memset(&r, 0, sizeof r);
	so.timeout_ms = 10000;
	assert_int_equal(pgc_node_start(n, &so, on_done, &r), 0);
	for (int i = 0; i < 200 && pgc_node_state(n) != PGC_PM_STARTING; i++)
		uv_run(&loop, UV_RUN_ONCE);
	struct dres r2 = {0};
	assert_int_equal(pgc_node_stop(n, PGC_STOP_FAST, 2000, on_done, &r2),
			 0);
	assert_false(r.done);
	run_until(&loop, &r2.done, 5000);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, ERR_CANCELED);
	assert_string_equal(r.msg, "start: canceled by a stop");
	assert_int_equal(r2.err, 0);
	assert_int_equal(pgc_node_state(n), PGC_PM_STOPPED);
	so.timeout_ms = 300;

	/* A fast stop of a hanging one. */
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_node_start(n, &so, on_done, &r), 0);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, ERR_TIMEOUT);
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_node_stop(n, PGC_STOP_FAST, 2000, on_done, &r), 0);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, 0);
	assert_int_equal(pgc_node_state(n), PGC_PM_STOPPED);

	/* Ignores SIGINT: escalates to SIGQUIT, result ERR_TIMEOUT. */
	setenv("FAKE_PG", "stubborn", 1);
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_node_start(n, &so, on_done, &r), 0);
	run_until(&loop, &r.done, 5000);
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_node_stop(n, PGC_STOP_FAST, 200, on_done, &r), 0);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, ERR_TIMEOUT);
	assert_non_null(strstr(r.msg, "(it is down)"));
	assert_int_equal(pgc_node_state(n), PGC_PM_STOPPED);

	/* promote needs a running postmaster; a failing pg_ctl. */
	assert_int_equal(pgc_node_promote(n, 1000, on_done, &r),
			 ERR_UNAVAILABLE);
	setenv("FAKE_PG", "hang", 1);
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_node_start(n, &so, on_done, &r), 0);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(pgc_node_promote(n, 1000, on_done, &r),
			 ERR_UNAVAILABLE); /* STARTING, not RUNNING */
	assert_int_equal(pgc_node_basebackup(
				 n,
				 &(struct pgc_basebackup_opts){.conninfo = "x"},
				 on_done, &r),
			 ERR_EXISTS);
	assert_int_equal(pgc_node_wipe(n, on_done, &r), ERR_EXISTS);

	/* Free with the postmaster running: it keeps running. */
	pid_t pid = pgc_node_pid(n);
	bool freed = false;
	pgc_node_free(n, free_done, &freed);
	run_until(&loop, &freed, 5000);
	assert_int_equal(kill(pid, 0), 0);
	kill(pid, SIGKILL);

	/* A rewind marker blocks start and rewind. */
	assert_int_equal(pgc_node_new(&loop, &cfg, &n), 0);
	snprintf(path, sizeof path, "%s/%s", data, PGC_REWIND_FAILED_FILE);
	write_text(path, "failed");
	assert_int_equal(pgc_node_start(n, &so, on_done, &r), ERR_CORRUPT);
	assert_non_null(strstr(pgc_node_errmsg(n), "unusable"));
	assert_int_equal(pgc_node_rewind(n, "host=/x", 1000, on_done, &r),
			 ERR_CORRUPT);
	/* wipe removes the directory (and the marker with it) */
	memset(&r, 0, sizeof r);
	assert_int_equal(pgc_node_wipe(n, on_done, &r), 0);
	run_until(&loop, &r.done, 5000);
	assert_int_equal(r.err, 0);
	assert_int_equal(access(data, F_OK), -1);
	freed = false;
	pgc_node_free(n, free_done, &freed);
	run_until(&loop, &freed, 5000);
	unsetenv("FAKE_PG");
	/* reap the killed fake */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	loop_teardown(&loop);
	rmtree(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lsn),
		cmocka_unit_test(test_conninfo),
		cmocka_unit_test(test_pidfile),
		cmocka_unit_test(test_controldata),
		cmocka_unit_test(test_conf_write),
		cmocka_unit_test(test_conf_write_on_loop),
		cmocka_unit_test(test_proc),
		cmocka_unit_test(test_conn),
		cmocka_unit_test(test_nomem),
		cmocka_unit_test(test_node_fake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
