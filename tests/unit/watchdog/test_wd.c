/* test_wd.c - unit tests of the watchdog library (watchdog/wd.c) against
 * the FIFO stand-in (tests/lib/wdfifo.c, path in $WDFIFO), which guards a
 * dummy child (`sleep 60` in its own process group) the way a real device
 * guards the machine:
 *   - opening a FIFO without a reader fails with a clear ENXIO message;
 *   - keepalives keep the dummy alive past the timeout;
 *   - stopped keepalives get it SIGKILLed, not before the timeout after the
 *     last keepalive and within timeout + slack;
 *   - the magic close makes the stand-in exit 0 without killing;
 *   - a close without 'V' keeps the deadline running (dummy killed), and a
 *     new writer may take over before it passes;
 *   - modes: off, automatic with a missing device (runs unarmed), required
 *     with a missing device (unavailable, may not lead, until it appears);
 *   - ioctls on a FIFO fail with ENOTTY and the configured timeout is used;
 *   - the descriptor is O_CLOEXEC;
 *   - the I3 pet limit (wd_pet_deadline, wd_keepalive_for, wd_arm_for);
 *   - the stand-in's own bounds: first byte arms, exits when the target is
 *     gone (zombie included) and on SIGTERM.
 * Every wait is a poll with a cap; every child is reaped in teardown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "wd.h"

#define TWD 300u     /* ms, the stand-in's timeout in most tests */
#define SLACK 1000u  /* ms allowed after the deadline (ASan, loaded CI) */
#define STEP_MS 5u   /* ms between polls of a condition */

struct fx {
	char dir[64];
	char fifo[128];
	char log[128];
	pid_t dummy;   /* sleeping child in its own process group, or 0 */
	pid_t wdfifo;  /* the stand-in, or 0 */
	int dummy_status, wdfifo_status;
	bool dummy_done, wdfifo_done;
	uint64_t dummy_exit_ms; /* CLOCK_MONOTONIC when reaped */
	struct wd wd;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000u),
			       (long)(ms % 1000u) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Reap pid if it has exited; true once it has (status and time kept). */
static bool reaped(pid_t pid, bool *done, int *status, uint64_t *when)
{
	if (*done)
		return true;
	pid_t r = waitpid(pid, status, WNOHANG);
	assert_true(r == 0 || r == pid);
	if (r == pid) {
		*done = true;
		if (when)
			*when = wd_now_ms();
	}
	return *done;
}

static bool dummy_gone(struct fx *f)
{
	return reaped(f->dummy, &f->dummy_done, &f->dummy_status,
		      &f->dummy_exit_ms);
}

static bool wdfifo_gone(struct fx *f)
{
	return reaped(f->wdfifo, &f->wdfifo_done, &f->wdfifo_status, NULL);
}

/* Poll fn(f) every STEP_MS until it holds or cap_ms passed. */
static bool wait_for(bool (*fn)(struct fx *), struct fx *f, unsigned cap_ms)
{
	uint64_t end = wd_now_ms() + cap_ms;
	for (;;) {
		if (fn(f))
			return true;
		if (wd_now_ms() >= end)
			return false;
		sleep_ms(STEP_MS);
	}
}

static bool fifo_exists(struct fx *f)
{
	struct stat sb;
	return stat(f->fifo, &sb) == 0 && S_ISFIFO(sb.st_mode);
}

static void start_dummy(struct fx *f)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid); /* no race with the child's own call */
	f->dummy = pid;
}

/* Start the stand-in guarding the dummy's process group; wait until the
 * FIFO exists, which it does only once a reader holds it. */
static void start_wdfifo(struct fx *f, unsigned timeout_ms, const char *extra)
{
	const char *exe = getenv("WDFIFO");
	if (!exe)
		fail_msg("WDFIFO is not set (meson passes the stand-in's path)");
	char tmo[32], pg[32];
	snprintf(tmo, sizeof tmo, "%u", timeout_ms);
	snprintf(pg, sizeof pg, "%d", (int)f->dummy);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(exe, "wdfifo", "--fifo", f->fifo, "--timeout-ms", tmo,
		      "--kill-pgid", pg, "--log", f->log, extra,
		      (char *)NULL);
		_exit(127);
	}
	f->wdfifo = pid;
	assert_true(wait_for(fifo_exists, f, 5000));
}

static char *read_log(struct fx *f)
{
	static char buf[16384];
	buf[0] = '\0';
	FILE *fp = fopen(f->log, "r");
	if (!fp)
		return buf;
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static bool target_seen(struct fx *f)
{
	return strstr(read_log(f), "target seen") != NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/wd_unit.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->fifo, sizeof f->fifo, "%s/watchdog", f->dir);
	snprintf(f->log, sizeof f->log, "%s/wdfifo.log", f->dir);
	wd_init(&f->wd, f->fifo, TWD, WD_MODE_OFF);
	*state = f;
	return 0;
}

static void kill_reap(pid_t pid, bool done)
{
	if (pid <= 0 || done)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	/* close without the magic byte first: the stand-in dies next */
	if (wd_armed(&f->wd))
		wd_close_no_disarm(&f->wd);
	kill_reap(f->wdfifo, f->wdfifo_done);
	kill_reap(f->dummy, f->dummy_done);
	unlink(f->fifo);
	unlink(f->log);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The dummy was SIGKILLed by the stand-in no earlier than timeout_ms after
 * t0 (taken just before the last keepalive) and within SLACK after. */
static void assert_fired(struct fx *f, uint64_t t0, unsigned timeout_ms)
{
	assert_true(wait_for(dummy_gone, f, timeout_ms + SLACK + 2000));
	assert_true(WIFSIGNALED(f->dummy_status));
	assert_int_equal(WTERMSIG(f->dummy_status), SIGKILL);
	uint64_t after = f->dummy_exit_ms - t0;
	if (after < timeout_ms || after > timeout_ms + SLACK)
		fail_msg("killed %llums after the last keepalive, timeout "
			 "%ums, slack %ums",
			 (unsigned long long)after, timeout_ms, SLACK);
	assert_true(wait_for(wdfifo_gone, f, 2000));
	assert_true(WIFEXITED(f->wdfifo_status));
	assert_int_equal(WEXITSTATUS(f->wdfifo_status), 3);
	assert_non_null(strstr(read_log(f), "watchdog fired"));
}

/* Keep petting every `every` ms for `total` ms; the dummy must live. */
static void pet_for(struct fx *f, unsigned total, unsigned every)
{
	uint64_t end = wd_now_ms() + total;
	while (wd_now_ms() < end) {
		assert_int_equal(wd_keepalive(&f->wd), 0);
		sleep_ms(every);
		assert_false(dummy_gone(f));
	}
}

/* ------------------------------------------------------------------ */
/* tests                                                                */
/* ------------------------------------------------------------------ */

static void test_open_no_reader_enxio(void **state)
{
	struct fx *f = *state;
	assert_int_equal(mkfifo(f->fifo, 0600), 0);

	int rc = wd_open(f->fifo, TWD, WD_MODE_REQUIRED, &f->wd);
	assert_int_equal(rc, ERR_IO);
	assert_false(wd_armed(&f->wd));
	assert_int_equal(wd_fd(&f->wd), -1);
	assert_non_null(strstr(wd_errmsg(&f->wd), "ENXIO"));
	assert_non_null(strstr(wd_errmsg(&f->wd), "no reader"));
	assert_non_null(strstr(wd_errmsg(&f->wd), f->fifo));
	assert_true(wd_required_but_unavailable(&f->wd));
	assert_false(wd_may_lead(&f->wd));
	assert_int_equal(wd_state_of(&f->wd), WD_ST_FAILED);

	/* automatic: the device exists but cannot be opened: an error the
	 * caller logs, but the node may still lead */
	rc = wd_open(f->fifo, TWD, WD_MODE_AUTOMATIC, &f->wd);
	assert_int_equal(rc, ERR_IO);
	assert_non_null(strstr(wd_errmsg(&f->wd), "ENXIO"));
	assert_false(wd_required_but_unavailable(&f->wd));
	assert_true(wd_may_lead(&f->wd));
}

static void test_keepalive_keeps_alive(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);

	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_AUTOMATIC, &f->wd), 0);
	assert_true(wd_armed(&f->wd));
	assert_int_equal(wd_state_of(&f->wd), WD_ST_ARMED);
	assert_true(wd_last_keepalive_ms(&f->wd) > 0);
	/* four timeouts long, petting every quarter timeout */
	pet_for(f, 4 * TWD, TWD / 4);
	assert_false(dummy_gone(f));
	assert_false(wdfifo_gone(f));
	assert_non_null(strstr(read_log(f), "armed"));
	assert_int_equal(wd_disarm(&f->wd), 0);
	assert_true(wait_for(wdfifo_gone, f, 2000));
}

static void test_missed_keepalives_fire(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);

	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_REQUIRED, &f->wd), 0);
	assert_true(wd_may_lead(&f->wd));
	pet_for(f, TWD, TWD / 4);
	uint64_t t0 = wd_now_ms();
	assert_int_equal(wd_keepalive(&f->wd), 0);
	/* the agent freezes: nothing more is written */
	assert_fired(f, t0, TWD);
}

static void test_disarm_exits_without_kill(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);

	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_AUTOMATIC, &f->wd), 0);
	assert_int_equal(wd_keepalive(&f->wd), 0);
	assert_int_equal(wd_disarm(&f->wd), 0);
	assert_false(wd_armed(&f->wd));
	assert_int_equal(wd_state_of(&f->wd), WD_ST_CLOSED);
	assert_true(wait_for(wdfifo_gone, f, 2000));
	assert_true(WIFEXITED(f->wdfifo_status));
	assert_int_equal(WEXITSTATUS(f->wdfifo_status), 0);
	assert_non_null(strstr(read_log(f), "disarmed (magic close)"));
	assert_null(strstr(read_log(f), "watchdog fired"));
	/* well past the deadline, the dummy still lives */
	sleep_ms(TWD + 200);
	assert_false(dummy_gone(f));
	/* disarming twice is harmless */
	assert_int_equal(wd_disarm(&f->wd), 0);
}

static void test_close_without_v_keeps_deadline(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);

	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_AUTOMATIC, &f->wd), 0);
	pet_for(f, TWD / 2, TWD / 4);
	uint64_t t0 = wd_now_ms();
	assert_int_equal(wd_keepalive(&f->wd), 0);
	wd_close_no_disarm(&f->wd);
	assert_false(wd_armed(&f->wd));
	assert_fired(f, t0, TWD);
	assert_non_null(strstr(read_log(f), "without 'V'"));
}

/* A restarted agent may open the device again before the deadline passes
 * (the FIFO is never without a reader, so no ENXIO) and keep it alive. */
static void test_new_writer_after_close_without_v(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);

	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_REQUIRED, &f->wd), 0);
	wd_close_no_disarm(&f->wd);
	assert_int_equal(wd_arm(&f->wd), 0);
	pet_for(f, 3 * TWD, TWD / 4);
	assert_int_equal(wd_disarm(&f->wd), 0);
	assert_true(wait_for(wdfifo_gone, f, 2000));
	assert_int_equal(WEXITSTATUS(f->wdfifo_status), 0);
	assert_false(dummy_gone(f));
}

/* --persist: after a magic close the stand-in waits for the next arm, as
 * the device does when a node gives the lease up and later takes it. */
static void test_persist_rearm(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, TWD, "--persist");

	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_AUTOMATIC, &f->wd), 0);
	assert_int_equal(wd_disarm(&f->wd), 0);
	sleep_ms(TWD + 100);
	assert_false(wdfifo_gone(f));
	assert_false(dummy_gone(f));
	uint64_t t0 = wd_now_ms();
	assert_int_equal(wd_arm(&f->wd), 0);
	wd_close_no_disarm(&f->wd);
	assert_fired(f, t0, TWD);
}

static void test_mode_off(void **state)
{
	struct fx *f = *state;
	/* nothing at the path: off never looks */
	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_OFF, &f->wd), 0);
	assert_false(wd_armed(&f->wd));
	assert_int_equal(wd_state_of(&f->wd), WD_ST_OFF);
	assert_true(wd_may_lead(&f->wd));
	assert_false(wd_required_but_unavailable(&f->wd));
	assert_int_equal(wd_keepalive(&f->wd), ERR_INVAL);
	assert_int_equal(wd_disarm(&f->wd), 0);
	assert_false(fifo_exists(f));
}

static void test_automatic_missing_runs_unarmed(void **state)
{
	struct fx *f = *state;
	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_AUTOMATIC, &f->wd), 0);
	assert_false(wd_armed(&f->wd));
	assert_int_equal(wd_state_of(&f->wd), WD_ST_ABSENT);
	assert_non_null(strstr(wd_errmsg(&f->wd), "running without"));
	assert_true(wd_may_lead(&f->wd));
	assert_false(wd_required_but_unavailable(&f->wd));
	assert_int_equal(wd_keepalive(&f->wd), ERR_INVAL);
	assert_int_equal(wd_disarm(&f->wd), 0);
	struct wd_status st;
	wd_status_get(&f->wd, &st);
	assert_string_equal(st.mode, "automatic");
	assert_string_equal(st.state, "absent");
	assert_false(st.armed);
	assert_int_equal(st.last_keepalive_age_ms, -1);
}

static void test_required_missing_unavailable(void **state)
{
	struct fx *f = *state;
	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_REQUIRED, &f->wd),
			 ERR_IO);
	assert_false(wd_armed(&f->wd));
	assert_true(wd_required_but_unavailable(&f->wd));
	assert_false(wd_may_lead(&f->wd));
	assert_non_null(strstr(wd_errmsg(&f->wd), "No such file"));
	struct wd_status st;
	wd_status_get(&f->wd, &st);
	assert_string_equal(st.state, "failed");
	assert_false(st.may_lead);

	/* the device appears: the next arm succeeds and clears the flag */
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);
	assert_int_equal(wd_arm(&f->wd), 0);
	assert_false(wd_required_but_unavailable(&f->wd));
	assert_true(wd_may_lead(&f->wd));
	assert_int_equal(wd_disarm(&f->wd), 0);
	/* disarmed in required mode: not unavailable, but may not lead
	 * until armed again */
	assert_false(wd_required_but_unavailable(&f->wd));
	assert_false(wd_may_lead(&f->wd));
}

static void test_fifo_ioctl_enotty_uses_config(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, 5000, NULL);

	/* 1500 ms would be 2 s on a device; a FIFO keeps the ms value */
	assert_int_equal(wd_open(f->fifo, 1500, WD_MODE_AUTOMATIC, &f->wd),
			 0);
	int fd = wd_fd(&f->wd);
	int secs = 2;
	errno = 0;
	assert_int_equal(ioctl(fd, WDIOC_SETTIMEOUT, &secs), -1);
	assert_int_equal(errno, ENOTTY);
	errno = 0;
	assert_int_equal(ioctl(fd, WDIOC_GETTIMEOUT, &secs), -1);
	assert_int_equal(errno, ENOTTY);
	assert_int_equal(wd_timeout_ms(&f->wd), 1500);
	struct wd_status st;
	wd_status_get(&f->wd, &st);
	assert_int_equal(st.timeout_ms, 1500);
	assert_false(st.timeout_from_device);
	assert_true(st.armed);
	assert_string_equal(st.state, "armed");
	assert_string_equal(st.mode, "automatic");
	assert_string_equal(st.path, f->fifo);
	assert_int_equal(st.keepalives, 1);
	assert_true(st.last_keepalive_age_ms >= 0);
	assert_int_equal(wd_disarm(&f->wd), 0);
}

static void test_open_cloexec(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, 5000, NULL);

	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_REQUIRED, &f->wd), 0);
	int fd = wd_fd(&f->wd);
	assert_true(fd >= 0);
	int fdfl = fcntl(fd, F_GETFD);
	assert_true(fdfl >= 0);
	assert_true(fdfl & FD_CLOEXEC);
	int fl = fcntl(fd, F_GETFL);
	assert_int_equal(fl & O_ACCMODE, O_WRONLY);
	assert_int_equal(wd_disarm(&f->wd), 0);
}

/* I3: a pet is allowed only while now - t_send <= lease_span - Twd. */
static void test_pet_deadline(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, 5000, NULL);
	assert_int_equal(wd_open(f->fifo, 1000, WD_MODE_REQUIRED, &f->wd), 0);

	assert_int_equal(wd_pet_deadline(&f->wd, 10000, 4000), 13000);
	assert_int_equal(wd_pet_deadline(&f->wd, 10000, 1000), 0);
	assert_int_equal(wd_pet_deadline(&f->wd, 10000, 999), 0);

	uint64_t now = wd_now_ms();
	uint64_t n0 = f->wd.keepalives;
	/* fresh renewal: allowed */
	assert_int_equal(wd_keepalive_for(&f->wd, now, 4000), 0);
	assert_int_equal(f->wd.keepalives, n0 + 1);
	/* renewal sent 3.5 s ago with a 4 s lease and Twd 1 s: too late */
	assert_int_equal(wd_keepalive_for(&f->wd, now - 3500, 4000),
			 ERR_TIMEOUT);
	assert_non_null(strstr(wd_errmsg(&f->wd), "refused"));
	assert_int_equal(f->wd.keepalives, n0 + 1);
	/* a lease shorter than Twd never allows a pet */
	assert_int_equal(wd_keepalive_for(&f->wd, now, 900), ERR_TIMEOUT);
	assert_int_equal(wd_disarm(&f->wd), 0);
	assert_int_equal(wd_keepalive_for(&f->wd, now, 4000), ERR_INVAL);
}

/* An open starts the timer: wd_arm_for opens only inside the I3 window. */
static void test_arm_for(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);
	assert_int_equal(wd_init(&f->wd, f->fifo, 1000, WD_MODE_REQUIRED), 0);
	uint64_t now = wd_now_ms();
	/* too late: nothing opened, nothing written, may not lead */
	assert_int_equal(wd_arm_for(&f->wd, now - 3500, 4000), ERR_TIMEOUT);
	assert_false(wd_armed(&f->wd));
	assert_false(wd_may_lead(&f->wd));
	assert_non_null(strstr(wd_errmsg(&f->wd), "arm refused"));
	sleep_ms(TWD + 100);
	assert_false(dummy_gone(f));
	assert_null(strstr(read_log(f), "armed"));
	/* in time: armed; again: a pet */
	assert_int_equal(wd_arm_for(&f->wd, wd_now_ms(), 4000), 0);
	assert_true(wd_armed(&f->wd));
	assert_true(wd_may_lead(&f->wd));
	assert_int_equal(wd_arm_for(&f->wd, wd_now_ms(), 4000), 0);
	assert_int_equal(f->wd.keepalives, 2);
	assert_int_equal(wd_arm_for(&f->wd, wd_now_ms() - 3500, 4000),
			 ERR_TIMEOUT);
	assert_int_equal(f->wd.keepalives, 2);
	assert_int_equal(wd_disarm(&f->wd), 0);
	/* mode off: nothing to do, never refused */
	assert_int_equal(wd_init(&f->wd, f->fifo, 1000, WD_MODE_OFF), 0);
	assert_int_equal(wd_arm_for(&f->wd, 0, 0), 0);
	assert_false(wd_armed(&f->wd));
}

static void test_init_invalid(void **state)
{
	struct fx *f = *state;
	char longp[WD_PATH_MAX + 10];
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	assert_int_equal(wd_open(longp, TWD, WD_MODE_REQUIRED, &f->wd),
			 ERR_INVAL);
	assert_true(wd_required_but_unavailable(&f->wd));
	assert_false(wd_may_lead(&f->wd));
	assert_int_equal(wd_arm(&f->wd), ERR_INVAL);
	assert_int_equal(wd_open(f->fifo, 0, WD_MODE_AUTOMATIC, &f->wd),
			 ERR_INVAL);
	assert_int_equal(wd_init(&f->wd, NULL, TWD, WD_MODE_AUTOMATIC), 0);
	assert_string_equal(wd_path(&f->wd), WD_DEFAULT_DEVICE);
	assert_int_equal(wd_mode_parse("required"), WD_MODE_REQUIRED);
	assert_int_equal(wd_mode_parse("automatic"), WD_MODE_AUTOMATIC);
	assert_int_equal(wd_mode_parse("off"), WD_MODE_OFF);
	assert_int_equal(wd_mode_parse("on"), -1);
	assert_string_equal(wd_mode_name(WD_MODE_REQUIRED), "required");
}

/* The stand-in arms on the first byte, not on the open. */
static void test_wdfifo_first_byte_arms(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);
	int fd = open(f->fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(fd >= 0);
	sleep_ms(TWD + 200);
	assert_false(dummy_gone(f));
	assert_null(strstr(read_log(f), "armed"));
	uint64_t t0 = wd_now_ms();
	assert_int_equal(write(fd, "k", 1), 1);
	assert_fired(f, t0, TWD);
	close(fd);
}

/* Bounded: the stand-in exits (4) once its target is gone, a zombie
 * included, and (0, no kill) on SIGTERM. */
static void test_wdfifo_bounded(void **state)
{
	struct fx *f = *state;
	start_dummy(f);
	start_wdfifo(f, 5000, NULL);
	/* a target is "gone" only after the stand-in saw it alive */
	assert_true(wait_for(target_seen, f, 3000));
	/* the dummy dies but is not reaped: a zombie answers kill -0 */
	kill(f->dummy, SIGKILL);
	assert_true(wait_for(wdfifo_gone, f, 3000));
	assert_true(WIFEXITED(f->wdfifo_status));
	assert_int_equal(WEXITSTATUS(f->wdfifo_status), 4);
	assert_non_null(strstr(read_log(f), "target gone"));
	assert_true(wait_for(dummy_gone, f, 1000));

	/* SIGTERM while armed: exits 0 and kills nobody */
	f->dummy_done = f->wdfifo_done = false;
	unlink(f->fifo);
	start_dummy(f);
	start_wdfifo(f, TWD, NULL);
	assert_int_equal(wd_open(f->fifo, TWD, WD_MODE_AUTOMATIC, &f->wd), 0);
	kill(f->wdfifo, SIGTERM);
	assert_true(wait_for(wdfifo_gone, f, 2000));
	assert_true(WIFEXITED(f->wdfifo_status));
	assert_int_equal(WEXITSTATUS(f->wdfifo_status), 0);
	sleep_ms(TWD + 100);
	assert_false(dummy_gone(f));
	/* the reader is gone: a keepalive fails with EPIPE, not SIGPIPE */
	assert_int_equal(wd_keepalive(&f->wd), ERR_IO);
	assert_non_null(strstr(wd_errmsg(&f->wd), "Broken pipe"));
	wd_close_no_disarm(&f->wd);
}

int main(void)
{
	/* as in pgwarden's daemon: a write to a FIFO without reader must
	 * fail with EPIPE, not kill the process */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_open_no_reader_enxio),
		T(test_keepalive_keeps_alive),
		T(test_missed_keepalives_fire),
		T(test_disarm_exits_without_kill),
		T(test_close_without_v_keeps_deadline),
		T(test_new_writer_after_close_without_v),
		T(test_persist_rearm),
		T(test_mode_off),
		T(test_automatic_missing_runs_unarmed),
		T(test_required_missing_unavailable),
		T(test_fifo_ioctl_enotty_uses_config),
		T(test_open_cloexec),
		T(test_pet_deadline),
		T(test_arm_for),
		T(test_init_invalid),
		T(test_wdfifo_first_byte_arms),
		T(test_wdfifo_bounded),
#undef T
	};
	return cmocka_run_group_tests_name("watchdog", tests, NULL, NULL);
}
