/* test_fencer.c - unit tests of the fencer process (watchdog/wd_fencer.c):
 *   - the line protocol: format/parse round trip, every malformed line
 *     refused;
 *   - the process, forked from the test with a pipe on its stdin, against
 *     a dummy "postmaster" (a forked child working in a temp data dir with
 *     two children of its own):
 *       - armed: nothing killed before the deadline, the dummy and both
 *         children SIGKILLed after it, within a bound;
 *       - a later "arm" moves the deadline; "disarm" cancels it;
 *       - the pipe closed while armed: fences at the deadline, then exits
 *         0; closed while disarmed: exits 0 at once, the dummy lives;
 *       - a pid whose working directory is not the data dir and no
 *         postmaster.pid: nothing is killed;
 *       - the pid in postmaster.pid (working in the data dir) is fenced
 *         even when the armed pid is gone;
 *       - it leads a session of its own, and SIGTSTP/SIGTTIN/SIGTTOU do
 *         not stop it: it still fences at the deadline;
 *       - processes named postgres working in the data dir without a
 *         postmaster (orphaned backends) are killed at the deadline, and
 *         none named otherwise or working elsewhere.
 * Every wait is a poll with a cap; every child is reaped in teardown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "wd_fencer.h"

#define SLACK_MS 1500u /* allowed after a deadline (ASan, loaded CI) */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec d = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&d, NULL);
}

/* ------------------------------------------------------------ protocol */

static void test_roundtrip(void **state)
{
	(void)state;
	char buf[WD_FENCER_LINE_MAX];
	struct wd_fencer_msg m = { .arm = 1, .pid = 4242,
				   .deadline_ms = 18446744073709551615u };
	int n = wd_fencer_format(buf, sizeof buf, &m);
	assert_true(n > 0);
	assert_int_equal(buf[n - 1], '\n');
	buf[n - 1] = '\0';
	struct wd_fencer_msg back;
	assert_int_equal(wd_fencer_parse(buf, &back), 0);
	assert_int_equal(back.arm, 1);
	assert_int_equal(back.pid, 4242);
	assert_true(back.deadline_ms == m.deadline_ms);

	struct wd_fencer_msg d = { .arm = 0 };
	n = wd_fencer_format(buf, sizeof buf, &d);
	assert_string_equal(buf, "disarm\n");
	buf[n - 1] = '\0';
	assert_int_equal(wd_fencer_parse(buf, &back), 0);
	assert_int_equal(back.arm, 0);
}

static void test_format_refuses(void **state)
{
	(void)state;
	char buf[WD_FENCER_LINE_MAX], tiny[8];
	struct wd_fencer_msg bad = { .arm = 1, .pid = 0, .deadline_ms = 1 };
	assert_int_equal(wd_fencer_format(buf, sizeof buf, &bad), ERR_INVAL);
	struct wd_fencer_msg ok = { .arm = 1, .pid = 77, .deadline_ms = 123 };
	assert_int_equal(wd_fencer_format(tiny, sizeof tiny, &ok), ERR_INVAL);
}

static void test_parse_refuses(void **state)
{
	(void)state;
	static const char *bad[] = {
		"",
		"arm",
		"arm ",
		"arm 12",
		"arm 12 ",
		"arm 0 100",
		"arm -3 100",
		"arm 12 -100",
		"arm 12 100 7",
		"arm 12 100x",
		"arm 2147483648 100",
		"arm 12 18446744073709551616",
		"ARM 12 100",
		"disarm ",
		"disarmed",
		" arm 12 100",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wd_fencer_msg m;
		if (wd_fencer_parse(bad[i], &m) != ERR_INVAL)
			fail_msg("accepted '%s'", bad[i]);
	}
}

/* ------------------------------------------------------------ process */

struct fx {
	char dir[64];   /* the "data dir" */
	char other[64]; /* a directory that is not */
	pid_t dummy;    /* the dummy postmaster */
	pid_t kids[2];  /* its children */
	pid_t extra[3]; /* other children of the test (killed, reaped) */
	pid_t fencer;
	int to_fencer;  /* write end of its stdin */
	int dummy_status, fencer_status;
	bool dummy_done, fencer_done;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/t_fencer.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->other, sizeof f->other, "/tmp/t_fencer_o.XXXXXX");
	assert_non_null(mkdtemp(f->other));
	f->to_fencer = -1;
	*state = f;
	return 0;
}

static void reap(pid_t pid, int *status, bool *done)
{
	if (pid <= 0 || *done)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	*done = true;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->to_fencer >= 0)
		close(f->to_fencer);
	reap(f->fencer, &f->fencer_status, &f->fencer_done);
	for (int i = 0; i < 2; i++)
		if (f->kids[i] > 0)
			kill(f->kids[i], SIGKILL);
	reap(f->dummy, &f->dummy_status, &f->dummy_done);
	for (int i = 0; i < 3; i++)
		if (f->extra[i] > 0) {
			int st;
			kill(f->extra[i], SIGKILL);
			waitpid(f->extra[i], &st, 0);
		}
	char path[128];
	snprintf(path, sizeof path, "%s/postmaster.pid", f->dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/kids", f->dir);
	unlink(path);
	rmdir(f->dir);
	rmdir(f->other);
	free(f);
	return 0;
}

/* The dummy postmaster: chdir(dir), two sleeping children, pids written
 * to dir/kids, then sleeps. Its children are reparented when it dies: the
 * test reads their pids from the file. */
static void start_dummy(struct fx *f, const char *cwd)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (chdir(cwd) != 0)
			_exit(1);
		pid_t k[2];
		for (int i = 0; i < 2; i++) {
			k[i] = fork();
			if (k[i] == 0) {
				for (int j = 0; j < 600; j++)
					sleep_ms(100);
				_exit(0);
			}
		}
		if (write(p[1], k, sizeof k) != (ssize_t)sizeof k)
			_exit(1);
		close(p[1]);
		for (int j = 0; j < 600; j++)
			sleep_ms(100);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], f->kids, sizeof f->kids),
			 (ssize_t)sizeof f->kids);
	close(p[0]);
	f->dummy = pid;
}

static void start_fencer(struct fx *f)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[0], 0);
		close(p[0]);
		close(p[1]);
		char *argv[] = { "fencer", "--data-dir", f->dir, "--node",
				 "t", NULL };
		_exit(wd_fencer_main(5, argv));
	}
	close(p[0]);
	f->to_fencer = p[1];
	f->fencer = pid;
}

static void send_line(struct fx *f, int arm, pid_t pid, uint64_t deadline)
{
	char buf[WD_FENCER_LINE_MAX];
	struct wd_fencer_msg m = { .arm = arm, .pid = pid,
				   .deadline_ms = deadline };
	int n = wd_fencer_format(buf, sizeof buf, &m);
	assert_true(n > 0);
	assert_int_equal(write(f->to_fencer, buf, (size_t)n), n);
}

/* dead: no such process, or a zombie its new parent has not reaped */
static bool gone(pid_t pid)
{
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return true;
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* the dummy exited (reaped here); true if by SIGKILL */
static bool dummy_exited(struct fx *f)
{
	if (f->dummy_done)
		return true;
	if (waitpid(f->dummy, &f->dummy_status, WNOHANG) == f->dummy)
		f->dummy_done = true;
	return f->dummy_done;
}

static bool fencer_exited(struct fx *f)
{
	if (f->fencer_done)
		return true;
	if (waitpid(f->fencer, &f->fencer_status, WNOHANG) == f->fencer)
		f->fencer_done = true;
	return f->fencer_done;
}

/* wait (capped) until the dummy exits; returns the ms it took */
static uint64_t wait_dummy_killed(struct fx *f, uint64_t cap_ms)
{
	uint64_t t0 = mono_ms();
	while (!dummy_exited(f) && mono_ms() - t0 < cap_ms)
		sleep_ms(2);
	assert_true(f->dummy_done);
	assert_true(WIFSIGNALED(f->dummy_status));
	assert_int_equal(WTERMSIG(f->dummy_status), SIGKILL);
	/* its children die with it (init reaps them) */
	for (int i = 0; i < 2; i++) {
		uint64_t t1 = mono_ms();
		while (!gone(f->kids[i]) && mono_ms() - t1 < 1000)
			sleep_ms(2);
		assert_true(gone(f->kids[i]));
	}
	return mono_ms() - t0;
}

static void test_fires_at_deadline(void **state)
{
	struct fx *f = *state;
	start_dummy(f, f->dir);
	start_fencer(f);
	uint64_t deadline = mono_ms() + 300;
	send_line(f, 1, f->dummy, deadline);
	while (mono_ms() + 20 < deadline) {
		assert_false(dummy_exited(f));
		sleep_ms(5);
	}
	wait_dummy_killed(f, 300 + SLACK_MS);
	assert_true(mono_ms() >= deadline);
	/* the fencer keeps running while its pipe is open */
	assert_false(fencer_exited(f));
	close(f->to_fencer);
	f->to_fencer = -1;
	uint64_t t0 = mono_ms();
	while (!fencer_exited(f) && mono_ms() - t0 < SLACK_MS)
		sleep_ms(2);
	assert_true(f->fencer_done);
	assert_true(WIFEXITED(f->fencer_status));
	assert_int_equal(WEXITSTATUS(f->fencer_status), 0);
}

static void test_rearm_moves_deadline(void **state)
{
	struct fx *f = *state;
	start_dummy(f, f->dir);
	start_fencer(f);
	uint64_t t0 = mono_ms();
	send_line(f, 1, f->dummy, t0 + 200);
	sleep_ms(100);
	send_line(f, 1, f->dummy, t0 + 700);
	while (mono_ms() < t0 + 650) {
		assert_false(dummy_exited(f));
		sleep_ms(5);
	}
	wait_dummy_killed(f, SLACK_MS);
	assert_true(mono_ms() >= t0 + 700);
}

static void test_disarm_cancels(void **state)
{
	struct fx *f = *state;
	start_dummy(f, f->dir);
	start_fencer(f);
	uint64_t t0 = mono_ms();
	send_line(f, 1, f->dummy, t0 + 200);
	send_line(f, 0, 0, 0);
	close(f->to_fencer);
	f->to_fencer = -1;
	/* disarmed and the pipe closed: exits at once */
	while (!fencer_exited(f) && mono_ms() - t0 < SLACK_MS)
		sleep_ms(2);
	assert_true(f->fencer_done);
	assert_int_equal(WEXITSTATUS(f->fencer_status), 0);
	sleep_ms(300);
	assert_false(dummy_exited(f));
	assert_false(gone(f->kids[0]));
}

static void test_eof_armed_fences_then_exits(void **state)
{
	struct fx *f = *state;
	start_dummy(f, f->dir);
	start_fencer(f);
	uint64_t deadline = mono_ms() + 300;
	send_line(f, 1, f->dummy, deadline);
	close(f->to_fencer); /* the agent dies */
	f->to_fencer = -1;
	while (mono_ms() + 20 < deadline) {
		assert_false(dummy_exited(f));
		assert_false(fencer_exited(f));
		sleep_ms(5);
	}
	wait_dummy_killed(f, 300 + SLACK_MS);
	uint64_t t0 = mono_ms();
	while (!fencer_exited(f) && mono_ms() - t0 < SLACK_MS)
		sleep_ms(2);
	assert_true(f->fencer_done);
	assert_int_equal(WEXITSTATUS(f->fencer_status), 0);
}

static void test_foreign_pid_untouched(void **state)
{
	struct fx *f = *state;
	start_dummy(f, f->other); /* not in the data dir */
	start_fencer(f);
	/* a process that does not work in the data dir is never killed,
	 * whatever pid the agent names */
	send_line(f, 1, f->dummy, mono_ms() + 100);
	sleep_ms(100 + 400);
	assert_false(dummy_exited(f));
	assert_false(gone(f->kids[0]));
	assert_false(gone(f->kids[1]));
}

static void test_pidfile_fenced(void **state)
{
	struct fx *f = *state;
	start_dummy(f, f->dir);
	char path[128];
	snprintf(path, sizeof path, "%s/postmaster.pid", f->dir);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%ld\n%s\n", (long)f->dummy, f->dir);
	fclose(fp);
	start_fencer(f);
	/* armed for a pid that is not a postmaster of this dir (our own
	 * test process works elsewhere): the pidfile names the real one */
	send_line(f, 1, getpid(), mono_ms() + 150);
	wait_dummy_killed(f, 150 + SLACK_MS);
	assert_false(gone(getpid()));
}

/* /proc/PID/stat state letter, '-' if gone */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return '-';
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '-';
}

/* The fencer leads a session (and so a process group) of its own, so a
 * signal to its starter's group never reaches it, and the job-control
 * stop signals leave it running: it still fences at its deadline. */
static void test_job_control_ignored(void **state)
{
	struct fx *f = *state;
	start_dummy(f, f->dir);
	start_fencer(f);
	uint64_t deadline = mono_ms() + 400;
	send_line(f, 1, f->dummy, deadline);
	uint64_t t0 = mono_ms();
	while (getsid(f->fencer) != f->fencer && mono_ms() - t0 < SLACK_MS)
		sleep_ms(2);
	assert_int_equal(getsid(f->fencer), f->fencer);
	assert_int_equal(getpgid(f->fencer), f->fencer);
	assert_int_not_equal(getpgid(f->fencer), getpgrp());
	assert_int_equal(kill(f->fencer, SIGTSTP), 0);
	assert_int_equal(kill(f->fencer, SIGTTIN), 0);
	assert_int_equal(kill(f->fencer, SIGTTOU), 0);
	sleep_ms(50);
	assert_int_not_equal(proc_state(f->fencer), 'T');
	assert_false(dummy_exited(f));
	wait_dummy_killed(f, 400 + SLACK_MS);
	assert_true(mono_ms() >= deadline);
}

/* a sleeping child of the test working in cwd, named name */
static pid_t start_named(const char *cwd, const char *name)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (chdir(cwd) != 0 || prctl(PR_SET_NAME, name, 0, 0, 0) != 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		close(p[1]);
		for (int j = 0; j < 600; j++)
			sleep_ms(100);
		_exit(0);
	}
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1); /* named and moved */
	close(p[0]);
	return pid;
}

/* Backends left without their postmaster (it died with pgwarden's group)
 * are nobody's children: at the deadline every process named postgres
 * working in the data dir is killed; one named otherwise, or working
 * elsewhere, is not. */
static void test_orphans_fenced(void **state)
{
	struct fx *f = *state;
	pid_t orphan = f->extra[0] = start_named(f->dir, "postgres");
	pid_t other = f->extra[1] = start_named(f->dir, "not-postgres");
	pid_t away = f->extra[2] = start_named(f->other, "postgres");
	start_fencer(f);
	/* armed for a postmaster that is not there (our own pid works
	 * elsewhere) and no postmaster.pid */
	uint64_t deadline = mono_ms() + 150;
	send_line(f, 1, getpid(), deadline);
	int st;
	uint64_t t0 = mono_ms();
	pid_t w = 0;
	while ((w = waitpid(orphan, &st, WNOHANG)) == 0 &&
	       mono_ms() - t0 < 150 + SLACK_MS)
		sleep_ms(2);
	assert_int_equal(w, orphan);
	f->extra[0] = 0; /* reaped */
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
	assert_true(mono_ms() >= deadline);
	sleep_ms(100);
	assert_int_equal(waitpid(other, &st, WNOHANG), 0);
	assert_int_equal(waitpid(away, &st, WNOHANG), 0);
	assert_false(gone(getpid()));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_parse_refuses),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_fires_at_deadline),
		T(test_rearm_moves_deadline),
		T(test_disarm_cancels),
		T(test_eof_armed_fences_then_exits),
		T(test_foreign_pid_untouched),
		T(test_pidfile_fenced),
		T(test_job_control_ignored),
		T(test_orphans_fenced),
#undef T
	};
	return cmocka_run_group_tests_name("fencer", tests, NULL, NULL);
}
