/* ha_fencer.c - the agent's side of the fencer process (ha_fencer.h). */
#include "ha/ha_fencer.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "wd_fencer.h"

#define RESTART_DELAY_MS 1000

static void spawn(struct ha_fencer *f);

static void on_handle_closed(uv_handle_t *h)
{
	struct ha_fencer *f = h->data;
	if (--f->open_handles == 0 && f->closing && f->close_cb)
		f->close_cb(f->close_arg);
}

static void stop_handles(struct ha_fencer *f)
{
	if (!f->running)
		return;
	f->running = false;
	f->sent = false;
	uv_close((uv_handle_t *)&f->pipe, on_handle_closed);
	uv_close((uv_handle_t *)&f->proc, on_handle_closed);
}

static void on_restart(uv_timer_t *t)
{
	struct ha_fencer *f = t->data;
	if (!f->closing && !f->running)
		spawn(f);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct ha_fencer *f = p->data;
	if (f->closing)
		return;
	log_warn("fencer[%s] exited (status %lld, signal %d); starting it "
		 "again in %d ms",
		 f->node, (long long)status, sig, RESTART_DELAY_MS);
	stop_handles(f);
	uv_timer_start(&f->restart, on_restart, RESTART_DELAY_MS, 0);
}

/* Send the wanted state if the fencer does not know it yet. */
static void sync_state(struct ha_fencer *f)
{
	if (!f->running || f->closing)
		return;
	if (f->sent && f->sent_arm == f->want_arm &&
	    (!f->want_arm || (f->sent_pid == f->want_pid &&
			      f->sent_deadline_ms == f->want_deadline_ms)))
		return;
	struct wd_fencer_msg m = { .arm = f->want_arm,
				   .pid = f->want_pid,
				   .deadline_ms = f->want_deadline_ms };
	char line[WD_FENCER_LINE_MAX];
	int n = wd_fencer_format(line, sizeof line, &m);
	if (n < 0)
		return;
	uv_buf_t b = uv_buf_init(line, (unsigned)n);
	int rc = uv_try_write((uv_stream_t *)&f->pipe, &b, 1);
	if (rc != n) {
		/* a partial line would corrupt the stream: with a socket
		 * pair and 30-byte lines this means the fencer stopped
		 * reading; the next call tries again */
		log_warn("fencer[%s] cannot tell the fencer (%s)", f->node,
			 rc < 0 ? uv_strerror(rc) : "partial write");
		return;
	}
	f->sent = true;
	f->sent_arm = f->want_arm;
	f->sent_pid = f->want_pid;
	f->sent_deadline_ms = f->want_deadline_ms;
}

static void spawn(struct ha_fencer *f)
{
	uv_pipe_init(f->loop, &f->pipe, 0);
	f->pipe.data = f;
	f->proc.data = f;
	f->open_handles += 2;
	f->running = true;
	f->sent = false;
	uv_stdio_container_t stdio[3];
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&f->pipe;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = 2;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	char *argv[] = { f->exe,      "fencer", "--data-dir", f->data_dir,
			 "--node",    f->node,  NULL };
	/* UV_PROCESS_DETACHED: setsid() in the child. The fencer leads a
	 * session and process group of its own, so that nothing that stops or
	 * signals pgwarden's group (Ctrl-Z or Ctrl-C on a foreground `pgwarden
	 * run`, kill -STOP -PGID, a debugger attached to the group) reaches
	 * it. libuv still watches the child: the exit callback fires. */
	uv_process_options_t po = {
		.exit_cb = on_exit_cb,
		.file = f->exe,
		.args = argv,
		.flags = UV_PROCESS_DETACHED,
		.stdio_count = 3,
		.stdio = stdio,
	};
	int rc = uv_spawn(f->loop, &f->proc, &po);
	if (rc < 0) {
		log_error("fencer[%s] cannot start %s: %s; trying again in "
			  "%d ms",
			  f->node, f->exe, uv_strerror(rc), RESTART_DELAY_MS);
		stop_handles(f);
		uv_timer_start(&f->restart, on_restart, RESTART_DELAY_MS, 0);
		return;
	}
	log_info("fencer[%s] started pid %d", f->node, f->proc.pid);
	sync_state(f);
}

int ha_fencer_init(struct ha_fencer *f, uv_loop_t *loop, const char *data_dir,
		   const char *node)
{
	memset(f, 0, sizeof *f);
	f->loop = loop;
	snprintf(f->data_dir, sizeof f->data_dir, "%s", data_dir);
	snprintf(f->node, sizeof f->node, "%s", node);
	uv_timer_init(loop, &f->restart);
	f->restart.data = f;
	f->open_handles = 1;
	/* the binary that runs now (an upgrade that replaced the file
	 * while the daemon runs starts the new one) */
	ssize_t n = readlink("/proc/self/exe", f->exe, sizeof f->exe - 1);
	if (n <= 0 || (size_t)n >= sizeof f->exe - 1) {
		log_error("fencer[%s] /proc/self/exe: %s", node,
			  n < 0 ? strerror(errno) : "path too long");
		return ERR_IO;
	}
	f->exe[n] = '\0';
	/* a deleted binary (upgraded in place) is exec'd through the link */
	if (access(f->exe, X_OK) != 0)
		snprintf(f->exe, sizeof f->exe, "/proc/self/exe");
	spawn(f);
	return 0;
}

/* The scan for fencers an earlier pgwarden left runs on the thread pool:
 * a full walk of /proc (two small files read per process) is no work for
 * the loop. The request carries copies of what it needs and refers to
 * nothing of the struct ha_fencer, which may be closed before it
 * completes (a pending request keeps the loop alive; the daemon's drain
 * waits for it). */
#define STALE_MAX 16

struct stale_scan {
	uv_work_t work;
	char data_dir[4096];
	char node[64];
	pid_t self;               /* this pgwarden: its fencers are its
				     children, never stale */
	long killed[STALE_MAX];   /* pids ended */
	int nkilled;
};

/* Is pid a fencer of data_dir ("pgwarden fencer --data-dir DIR ...",
 * process name pgw-fencer)? */
static bool is_fencer_of(const char *data_dir, const char *pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%s/comm", pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return false;
	bool named = fgets(buf, sizeof buf, fp) &&
		     strcmp(buf, "pgw-fencer\n") == 0;
	fclose(fp);
	if (!named)
		return false;
	snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
	fp = fopen(path, "re");
	if (!fp)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* NUL-separated arguments: find "--data-dir" then compare the next */
	for (size_t i = 0; i < n;) {
		const char *arg = buf + i;
		size_t len = strlen(arg);
		if (strcmp(arg, "--data-dir") == 0 && i + len + 1 < n)
			return strcmp(arg + len + 1, data_dir) == 0;
		i += len + 1;
	}
	return false;
}

/* the parent pid of pid (from /proc/PID/stat), 0 if unknown */
static pid_t parent_of(const char *pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%s/stat", pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	long pp = 0;
	if (!p || sscanf(p + 1, " %*c %ld", &pp) != 1)
		return 0;
	return (pid_t)pp;
}

static void stale_work(uv_work_t *w)
{
	struct stale_scan *r = w->data;
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long v = strtol(e->d_name, &end, 10);
		if (*end != '\0' || v <= 0 ||
		    !is_fencer_of(r->data_dir, e->d_name) ||
		    parent_of(e->d_name) == r->self)
			continue;
		if (kill((pid_t)v, SIGKILL) == 0 && r->nkilled < STALE_MAX)
			r->killed[r->nkilled++] = v;
	}
	closedir(d);
}

static void stale_done(uv_work_t *w, int status)
{
	struct stale_scan *r = w->data;
	(void)status;
	for (int i = 0; i < r->nkilled; i++)
		log_info("fencer[%s] ended fencer %ld of an earlier pgwarden",
			 r->node, r->killed[i]);
	mem_free(r);
}

/* A fencer an earlier pgwarden of this node left armed (it was SIGKILLed
 * while primary and restarted within the lease) would kill the PostgreSQL
 * this one adopted, at the old deadline. Called once this node's own
 * fencer is armed: the old one is redundant from then on. */
static void kill_stale_fencers(struct ha_fencer *f)
{
	struct stale_scan *r = mem_calloc(1, sizeof *r);
	if (!r) {
		log_warn("fencer[%s] out of memory: fencers of an earlier "
			 "pgwarden not looked for",
			 f->node);
		return;
	}
	snprintf(r->data_dir, sizeof r->data_dir, "%s", f->data_dir);
	snprintf(r->node, sizeof r->node, "%s", f->node);
	r->self = getpid();
	r->work.data = r;
	int rc = uv_queue_work(f->loop, &r->work, stale_work, stale_done);
	if (rc != 0) {
		log_warn("fencer[%s] cannot look for fencers of an earlier "
			 "pgwarden: %s",
			 f->node, uv_strerror(rc));
		mem_free(r);
	}
}

void ha_fencer_arm(struct ha_fencer *f, pid_t pid, uint64_t deadline_ms)
{
	if (pid <= 0)
		return;
	f->want_arm = true;
	f->want_pid = pid;
	f->want_deadline_ms = deadline_ms;
	sync_state(f);
	if (!f->stale_checked && f->running && f->sent && f->sent_arm) {
		f->stale_checked = true;
		kill_stale_fencers(f);
	}
}

void ha_fencer_disarm(struct ha_fencer *f)
{
	f->want_arm = false;
	sync_state(f);
}

bool ha_fencer_armed(const struct ha_fencer *f)
{
	return f->want_arm;
}

void ha_fencer_close(struct ha_fencer *f, void (*cb)(void *), void *arg)
{
	if (f->closing)
		return;
	/* tell it the final state; then the pipe closes */
	sync_state(f);
	f->closing = true;
	f->close_cb = cb;
	f->close_arg = arg;
	uv_timer_stop(&f->restart);
	if (f->running) {
		f->running = false;
		uv_close((uv_handle_t *)&f->pipe, on_handle_closed);
		uv_close((uv_handle_t *)&f->proc, on_handle_closed);
	}
	uv_close((uv_handle_t *)&f->restart, on_handle_closed);
}
