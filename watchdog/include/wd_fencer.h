/* wd_fencer.h - the independent fencer process: the second line of defence
 * (docs/architecture.md, "Lease and fencing") for a primary whose agent
 * hangs, is SIGSTOPped or dies
 * while its PostgreSQL keeps running, on a machine without a watchdog
 * device (or alongside one).
 *
 * pgwarden starts it as `pgwarden fencer --data-dir DIR --node NAME` with
 * its stdin a pipe from the agent. The agent sends one line per change:
 *
 *   "arm PID DEADLINE_MS\n"   PID is the postmaster, DEADLINE_MS a time on
 *                             CLOCK_MONOTONIC (the clock of uv_hrtime());
 *   "disarm\n"                nothing to fence (no PostgreSQL, or a
 *                             replica).
 *
 * The last line received is the state. At DEADLINE_MS, unless a newer line
 * arrived, the fencer kills the postmaster and every child of it: SIGSTOP
 * to the postmaster (it can no longer fork or restart children), SIGKILL to
 * each process whose parent it is, then SIGKILL to it. Only a process that
 * works in DIR (its cwd, as every PostgreSQL process's) is ever fenced: the
 * armed pid if it still has the start time it had when armed, and the pid
 * in DIR/postmaster.pid; then, by a scan of /proc, every process named
 * postgres still working in DIR (backends whose postmaster died before the
 * deadline, e.g. with pgwarden's process group, are nobody's children
 * and would run until each notices). PostgreSQL's data is crash-safe: the
 * next start runs crash recovery.
 *
 * When the pipe closes (the agent exited or died), a disarmed fencer exits
 * at once and an armed one waits for its deadline, fences, then exits: the
 * PostgreSQL an agent left behind as primary stops taking writes when its
 * lease could expire. SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE are
 * ignored (a shutdown signal meant for the agent must not remove the
 * fencer while the agent stops PostgreSQL); SIGKILL ends it. The agent
 * starts it in a session and process group of its own, and it ignores
 * SIGTSTP, SIGTTIN and SIGTTOU (and calls setsid() itself when it is not
 * a session leader yet), so that stopping the agent's process group stops
 * neither it nor its deadline: that case (pgwarden and the postmaster
 * stopped, the backends committing on) is fenced like a hung agent.
 *
 * What it does not cover: the whole machine frozen (then PostgreSQL is
 * frozen too; the watchdog device covers a machine that comes back) and a
 * fencer SIGSTOPped by itself (the agent's own timer still fences while the
 * agent runs). docs/architecture.md "Fencing layers".
 */
#ifndef WD_FENCER_H
#define WD_FENCER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WD_FENCER_LINE_MAX 64 /* bytes of one protocol line, with the NUL */

struct wd_fencer_msg {
	int arm;              /* 1: arm, 0: disarm */
	pid_t pid;            /* arm: the postmaster */
	uint64_t deadline_ms; /* arm: CLOCK_MONOTONIC ms */
};

/* Format m as one protocol line (with its '\n') into buf; returns its
 * length, or ERR_INVAL if it does not fit or m is not valid. */
int wd_fencer_format(char *buf, size_t cap, const struct wd_fencer_msg *m);

/* Parse one line (without its '\n'); 0 or ERR_INVAL. */
int wd_fencer_parse(const char *line, struct wd_fencer_msg *m);

/* The fencer process; argv as after `pgwarden`: "fencer", "--data-dir",
 * DIR, "--node", NAME. Returns the process's exit status: 0 after the pipe
 * closed, 2 for bad arguments. */
int wd_fencer_main(int argc, char **argv);

#endif
