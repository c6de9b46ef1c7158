/* wd_lag.h - the loop-stall monitor: how long each iteration of a libuv
 * loop kept the loop thread busy, so that work that should never be on
 * the loop (a slow fsync, a blocking write, a long scan) shows up.
 *
 * A uv_prepare handle runs once per iteration, right before the loop
 * waits for events; with UV_METRICS_IDLE_TIME on (wd_lag_init sets it),
 * the busy time of the iteration that just ended is
 *   (now - previous prepare) - (idle time spent waiting in between).
 * An iteration busy for at least the threshold (50 ms in the daemon) is a
 * stall: it is counted, the worst is kept, and it is logged as
 *   "loop[NAME] stall ms=M cpu_ms=C stalls=N worst_ms=W"
 * (C: the CPU time the loop thread used in that iteration; C close to M
 * means a callback computed, C far below M that the thread waited, in a
 * system call or for a CPU)
 * at most once per WD_LAG_LOG_INTERVAL_MS; the stalls not logged in
 * between are counted in the next line ("(K more since the last line,
 * worst X ms)"). GET /status shows the count and the worst.
 * Why it matters: the loop renews the primary lease, and a stalled loop
 * fences the node.
 *
 * Thread: the loop thread. Times in ms; CLOCK_MONOTONIC (uv_hrtime).
 */
#ifndef WD_LAG_H
#define WD_LAG_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define WD_LAG_THRESHOLD_MS 50u      /* the daemon's threshold */
#define WD_LAG_LOG_INTERVAL_MS 1000u /* at most one stall line per this */

struct wd_lag_stats {
	uint64_t stalls;    /* iterations busy >= threshold */
	uint64_t worst_ms;  /* the longest, ms; 0 if none */
	uint64_t last_ms;   /* the latest stall's length, ms; 0 if none */
};

/* Embedded by its owner (the daemon). */
struct wd_lag {
	/* private */
	uv_loop_t *loop;
	uv_prepare_t prepare;
	char name[64];
	unsigned threshold_ms;
	bool started;           /* a previous prepare was seen */
	uint64_t last_ns;       /* uv_hrtime() at the previous prepare */
	uint64_t last_idle_ns;  /* uv_metrics_idle_time() then */
	uint64_t last_cpu_ns;   /* the loop thread's CPU time then */
	struct wd_lag_stats st;
	uint64_t logged_at_ms;  /* when the last stall line was written; 0
				   never */
	uint64_t quiet;         /* stalls since then not logged */
	uint64_t quiet_worst_ms;
	bool closing;
	void (*close_cb)(void *);
	void *close_arg;
};

/* Account one iteration busy for busy_ms, ending at now_ms (the pure part,
 * for tests; the prepare callback calls it). Returns true when this stall
 * is to be logged now (a stall, and no line within the interval); then
 * *quiet and *quiet_worst_ms (may be NULL) are the stalls not logged since
 * the last line, which the call forgets. */
bool wd_lag_note(struct wd_lag *m, uint64_t now_ms, uint64_t busy_ms,
		 uint64_t *quiet, uint64_t *quiet_worst_ms);

/* Watch loop (borrowed). name (copied) is the object of the log line.
 * threshold_ms > 0. Also usable without a loop (loop NULL): only
 * wd_lag_note and wd_lag_get then. 0, or ERR_INVAL. */
int wd_lag_init(struct wd_lag *m, uv_loop_t *loop, const char *name,
		unsigned threshold_ms);
/* Copy the figures (never blocks). */
void wd_lag_get(const struct wd_lag *m, struct wd_lag_stats *out);
/* Stop watching; cb(arg) once the handle is closed (not before this call
 * returns); with no loop, cb is called at once. */
void wd_lag_close(struct wd_lag *m, void (*cb)(void *), void *arg);

#endif
