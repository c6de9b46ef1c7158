/* ha_fencer.h - the agent's side of the independent fencer process
 * (watchdog/include/wd_fencer.h): starts `pgwarden fencer` as a child with
 * a pipe on its stdin, tells it the postmaster and the self-fencing
 * deadline whenever either changes, and starts it again (after 1 s) if it
 * exits while pgwarden runs.
 *
 * The child runs in a session and process group of its own (setsid, by
 * UV_PROCESS_DETACHED), so that whatever stops or signals pgwarden's group
 * (Ctrl-Z on a foreground `pgwarden run`, kill -STOP -PGID, a debugger on
 * the group) leaves it running: it is the one layer that still fences when
 * pgwarden and its postmaster are stopped together while the backends,
 * each in a session of its own, keep committing. It outlives pgwarden only
 * to keep a promise already made: armed, it fences at the deadline and
 * exits; disarmed, it exits when the pipe closes.
 *
 * Writes never block: one short line with uv_try_write; a line that does
 * not fit (the fencer is not reading) is sent again at the next call.
 * The first time it is armed, a fencer an earlier pgwarden of this data
 * directory left behind (SIGKILLed while primary, restarted within the
 * lease) is ended: it would otherwise kill the adopted PostgreSQL at the
 * old deadline. That walk of /proc runs on libuv's thread pool
 * (uv_queue_work, a request that owns copies of what it needs); a fencer
 * whose parent is this pgwarden is never ended.
 * Thread: the loop thread.
 */
#ifndef HA_FENCER_H
#define HA_FENCER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct ha_fencer {
	/* private */
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t pipe;
	uv_timer_t restart;
	char exe[4096];
	char data_dir[4096];
	char node[64];
	bool running;  /* proc and pipe are live handles */
	bool closing;
	bool want_arm; /* what the agent wants the fencer to know */
	pid_t want_pid;
	uint64_t want_deadline_ms;
	bool sent;     /* the fencer knows the wanted state */
	bool sent_arm;
	pid_t sent_pid;
	uint64_t sent_deadline_ms;
	bool stale_checked; /* an earlier pgwarden's fencer was looked for */
	int open_handles;
	void (*close_cb)(void *);
	void *close_arg;
};

/* Start the fencer for data_dir. 0 or a negative ERR_ code; on failure
 * nothing runs and ha_fencer_close must still be called. */
int ha_fencer_init(struct ha_fencer *f, uv_loop_t *loop, const char *data_dir,
		   const char *node);
/* Fence postmaster pid at deadline_ms (CLOCK_MONOTONIC ms) unless moved. */
void ha_fencer_arm(struct ha_fencer *f, pid_t pid, uint64_t deadline_ms);
void ha_fencer_disarm(struct ha_fencer *f);
bool ha_fencer_armed(const struct ha_fencer *f);
/* Close the pipe (the fencer exits, or fences first if armed) and the
 * handles; cb(arg) when they are closed. Does not wait for the child. */
void ha_fencer_close(struct ha_fencer *f, void (*cb)(void *), void *arg);

#endif
