/* test_lag.c - unit tests of the loop-stall monitor (watchdog/wd_lag.c):
 *   - the accounting (wd_lag_note): below the threshold nothing, at and
 *     above it a stall counted, the worst kept; one line per interval, the
 *     stalls in between counted into the next line;
 *   - on a real loop: a callback that keeps the loop thread for 120 ms is
 *     one stall of about that length; 300 ms of waiting for a timer is
 *     none (idle time is not busy time); the handle closes cleanly.
 * Every loop run is capped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include "err.h"
#include "wd_lag.h"

static void on_closed(void *arg)
{
	*(int *)arg = 1;
}

static void test_note_threshold_and_worst(void **state)
{
	(void)state;
	struct wd_lag m;
	assert_int_equal(wd_lag_init(&m, NULL, "t", 0), ERR_INVAL);
	assert_int_equal(wd_lag_init(&m, NULL, "t", 50), 0);
	uint64_t q = 99, qw = 99;
	assert_false(wd_lag_note(&m, 1000, 49, &q, &qw));
	struct wd_lag_stats st;
	wd_lag_get(&m, &st);
	assert_int_equal(st.stalls, 0);
	assert_int_equal(st.worst_ms, 0);
	assert_true(wd_lag_note(&m, 1000, 50, &q, &qw));
	assert_int_equal(q, 0);
	/* within the interval: counted, not logged */
	assert_false(wd_lag_note(&m, 1500, 300, &q, &qw));
	assert_false(wd_lag_note(&m, 1999, 70, &q, &qw));
	wd_lag_get(&m, &st);
	assert_int_equal(st.stalls, 3);
	assert_int_equal(st.worst_ms, 300);
	assert_int_equal(st.last_ms, 70);
	/* the interval is over: logged, with the two quiet ones */
	assert_true(wd_lag_note(&m, 2000, 60, &q, &qw));
	assert_int_equal(q, 2);
	assert_int_equal(qw, 300);
	assert_false(wd_lag_note(&m, 2100, 10, &q, &qw)); /* not a stall */
	assert_true(wd_lag_note(&m, 3000, 55, &q, &qw));
	assert_int_equal(q, 0);
	wd_lag_get(&m, &st);
	assert_int_equal(st.stalls, 5);
	assert_int_equal(st.worst_ms, 300);
	int closed = 0;
	wd_lag_close(&m, on_closed, &closed); /* no loop: at once */
	assert_int_equal(closed, 1);
}

static void busy_cb(uv_timer_t *t)
{
	(void)t;
	/* keep the loop thread, as a blocking fsync would */
	struct timespec d = { 0, 120 * 1000000L };
	nanosleep(&d, NULL);
}

static void noop_cb(uv_timer_t *t)
{
	(void)t;
}

static void run_for(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t stop;
	uv_timer_init(loop, &stop);
	uv_timer_start(&stop, noop_cb, ms, 0);
	/* the timer ends the run: nothing else is active */
	for (int i = 0; i < 1000 && uv_is_active((uv_handle_t *)&stop); i++)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&stop, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

static void test_real_loop(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct wd_lag m;
	assert_int_equal(wd_lag_init(&m, &loop, "t", 50), 0);
	/* waiting is not a stall */
	run_for(&loop, 300);
	struct wd_lag_stats st;
	wd_lag_get(&m, &st);
	assert_int_equal(st.stalls, 0);
	/* a callback that holds the loop for 120 ms is */
	uv_timer_t busy;
	uv_timer_init(&loop, &busy);
	uv_timer_start(&busy, busy_cb, 10, 0);
	run_for(&loop, 200);
	wd_lag_get(&m, &st);
	assert_int_equal(st.stalls, 1);
	assert_true(st.worst_ms >= 119);
	assert_true(st.worst_ms < 120 + 500);
	uv_close((uv_handle_t *)&busy, NULL);
	int closed = 0;
	wd_lag_close(&m, on_closed, &closed);
	for (int i = 0; i < 100 && !closed; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_true(closed);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_note_threshold_and_worst),
		cmocka_unit_test(test_real_loop),
	};
	return cmocka_run_group_tests_name("lag", tests, NULL, NULL);
}
