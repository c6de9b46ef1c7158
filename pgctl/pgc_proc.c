/* pgc_proc.c - one child process: uv_spawn, output tails, kill timer.
 *
 * Happy path: pgc_proc_run spawns (stdin /dev/null, stdout/stderr on
 * pipes) -> both pipes read to EOF, keeping the last PGC_TAIL_MAX bytes
 * of each -> exit callback records status -> when exited and both pipes
 * are at EOF, the completion callback fires -> all handles close -> the
 * proc is freed after the last close callback.
 *
 * Failure paths:
 *   - uv_spawn fails: returned synchronously, nothing fires;
 *   - deadline (timeout_ms): SIGTERM, then SIGKILL after kill_grace_ms;
 *     result ERR_TIMEOUT;
 *   - pgc_proc_kill: same escalation, result ERR_CANCELED;
 *   - non-zero exit or signal: ERR_PG, "NAME: exit N: <last stderr line>";
 *   - a grandchild keeps a pipe open after the child exited: the pipes
 *     are closed 200 ms after the exit and the callback fires anyway;
 *   - pgc_proc_abandon: optional signal, handles close, no callback.
 */
#include "pgc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "mem.h"

extern char **environ;

#define DRAIN_GRACE_MS 200

struct tail {
	char buf[PGC_TAIL_MAX + 1];
	size_t len;
};

struct pgc_proc {
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t out, err;
	uv_timer_t timer;
	struct tail tout, terr;
	char name[64];
	pgc_proc_cb cb;
	void *arg;
	unsigned kill_grace_ms;   /* ms */
	unsigned timeout_ms;      /* ms */
	int open_handles;         /* process, pipes, timer */
	bool pipes;               /* output on pipes (else a log file) */
	bool out_open, err_open;  /* pipe still being read */
	bool exited;
	bool done;                /* completion callback fired/abandoned */
	bool killing;             /* SIGTERM sent by timer or kill */
	bool killed_hard;         /* SIGKILL sent */
	int kill_reason;          /* ERR_TIMEOUT or ERR_CANCELED */
	int64_t exit_status;
	int term_signal;
	pid_t pid;
};

static void tail_add(struct tail *t, const char *p, size_t n)
{
	if (n >= PGC_TAIL_MAX) {
		memcpy(t->buf, p + n - PGC_TAIL_MAX, PGC_TAIL_MAX);
		t->len = PGC_TAIL_MAX;
	} else {
		if (t->len + n > PGC_TAIL_MAX) {
			size_t drop = t->len + n - PGC_TAIL_MAX;
			memmove(t->buf, t->buf + drop, t->len - drop);
			t->len -= drop;
		}
		memcpy(t->buf + t->len, p, n);
		t->len += n;
	}
	t->buf[t->len] = '\0';
}

/* The last non-empty line of t, at most cap-1 bytes, into dst. */
static void last_line(const struct tail *t, char *dst, size_t cap)
{
	size_t end = t->len;
	while (end && (t->buf[end - 1] == '\n' || t->buf[end - 1] == '\r' ||
		       t->buf[end - 1] == ' '))
		end--;
	size_t start = end;
	while (start && t->buf[start - 1] != '\n')
		start--;
	size_t n = end - start;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, t->buf + start, n);
	dst[n] = '\0';
}

static void on_close(uv_handle_t *h)
{
	struct pgc_proc *p = h->data;
	if (--p->open_handles == 0)
		mem_free(p);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_close);
}

static void close_pipes(struct pgc_proc *p)
{
	if (!p->pipes)
		return;
	if (p->out_open) {
		p->out_open = false;
		uv_read_stop((uv_stream_t *)&p->out);
	}
	if (p->err_open) {
		p->err_open = false;
		uv_read_stop((uv_stream_t *)&p->err);
	}
}

static void close_all(struct pgc_proc *p)
{
	close_pipes(p);
	if (p->pipes) {
		close_handle((uv_handle_t *)&p->out);
		close_handle((uv_handle_t *)&p->err);
	}
	uv_timer_stop(&p->timer);
	close_handle((uv_handle_t *)&p->timer);
	close_handle((uv_handle_t *)&p->proc);
}

static void finish(struct pgc_proc *p)
{
	if (p->done)
		return;
	p->done = true;
	close_pipes(p);
	char line[160];
	char msg[PGC_ERRMSG_MAX];
	struct pgc_proc_result r = {
		.exit_status = p->exit_status,
		.term_signal = p->term_signal,
		.out = p->tout.buf,
		.out_len = p->tout.len,
		.errout = p->terr.buf,
		.errout_len = p->terr.len,
		.errmsg = msg,
	};
	msg[0] = '\0';
	last_line(&p->terr, line, sizeof line);
	if (!line[0])
		last_line(&p->tout, line, sizeof line);
	if (p->killing) {
		r.err = p->kill_reason;
		if (p->kill_reason == ERR_TIMEOUT)
			snprintf(msg, sizeof msg, "%s: timed out after %u ms%s%s",
				 p->name, p->timeout_ms, line[0] ? ": " : "",
				 line);
		else
			snprintf(msg, sizeof msg, "%s: canceled", p->name);
	} else if (p->term_signal) {
		r.err = ERR_PG;
		snprintf(msg, sizeof msg, "%s: killed by signal %d%s%s",
			 p->name, p->term_signal, line[0] ? ": " : "", line);
	} else if (p->exit_status != 0) {
		r.err = ERR_PG;
		snprintf(msg, sizeof msg, "%s: exit %lld%s%s", p->name,
			 (long long)p->exit_status, line[0] ? ": " : "", line);
	}
	log_debug("pgc[proc=%s pid=%d] done status=%lld signal=%d", p->name,
		  (int)p->pid, (long long)p->exit_status, p->term_signal);
	if (p->cb)
		p->cb(p->arg, &r);
	close_all(p);
}

static void maybe_finish(struct pgc_proc *p)
{
	if (p->exited && !p->out_open && !p->err_open)
		finish(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	/* Read straight into a static buffer: the loop thread is the only
	 * reader and the bytes are copied into the tail at once. */
	static char chunk[16384];
	(void)h;
	*buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct pgc_proc *p = s->data;
	bool is_out = s == (uv_stream_t *)&p->out;
	if (nread > 0) {
		tail_add(is_out ? &p->tout : &p->terr, buf->base,
			 (size_t)nread);
		return;
	}
	if (nread == 0)
		return;
	/* EOF or error: this pipe is done. */
	uv_read_stop(s);
	if (is_out)
		p->out_open = false;
	else
		p->err_open = false;
	maybe_finish(p);
}

static void on_timer(uv_timer_t *t)
{
	struct pgc_proc *p = t->data;
	if (p->exited) {
		/* Drain grace over: a grandchild holds the pipes. */
		finish(p);
		return;
	}
	if (!p->killing) {
		p->killing = true;
		p->kill_reason = ERR_TIMEOUT;
		log_warn("pgc[proc=%s pid=%d] timeout %ums: SIGTERM", p->name,
			 (int)p->pid, p->timeout_ms);
		uv_process_kill(&p->proc, SIGTERM);
		uv_timer_start(&p->timer, on_timer, p->kill_grace_ms, 0);
	} else if (!p->killed_hard) {
		p->killed_hard = true;
		log_warn("pgc[proc=%s pid=%d] still alive: SIGKILL", p->name,
			 (int)p->pid);
		uv_process_kill(&p->proc, SIGKILL);
	}
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig)
{
	struct pgc_proc *p = h->data;
	p->exited = true;
	p->exit_status = status;
	p->term_signal = sig;
	if (p->done)
		return;
	uv_timer_stop(&p->timer);
	if (p->out_open || p->err_open)
		uv_timer_start(&p->timer, on_timer, DRAIN_GRACE_MS, 0);
	maybe_finish(p);
}

/* env = environ with env_add applied (same NAME replaced). Array and
 * strings other than environ's are owned by the returned array: strings
 * from env_add are borrowed (they outlive uv_spawn). */
static char **build_env(const char *const *add)
{
	size_t n = 0, na = 0;
	while (environ[n])
		n++;
	while (add && add[na])
		na++;
	char **env = mem_calloc(n + na + 1, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool replaced = false;
		for (size_t j = 0; j < na; j++)
			if (strncmp(add[j], environ[i], nl) == 0 &&
			    add[j][nl] == '=')
				replaced = true;
		if (!replaced)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < na; j++)
		env[k++] = (char *)(uintptr_t)add[j];
	env[k] = NULL;
	return env;
}

int pgc_proc_run(uv_loop_t *loop, const struct pgc_proc_opts *o,
		 pgc_proc_cb cb, void *arg, struct pgc_proc **out,
		 char *errmsg, size_t cap)
{
	if (errmsg && cap)
		errmsg[0] = '\0';
	if (!o->file || !o->argv || !o->argv[0])
		return ERR_INVAL;
	struct pgc_proc *p = mem_calloc(1, sizeof *p);
	if (!p)
		return ERR_NOMEM;
	p->loop = loop;
	p->cb = cb;
	p->arg = arg;
	p->kill_grace_ms = o->kill_grace_ms ? o->kill_grace_ms : 2000;
	p->timeout_ms = o->timeout_ms;
	const char *base = strrchr(o->file, '/');
	snprintf(p->name, sizeof p->name, "%s",
		 o->name ? o->name : base ? base + 1 : o->file);
	p->pipes = o->log_path == NULL;

	int logfd = -1;
	if (!p->pipes) {
		logfd = open(o->log_path,
			     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (logfd < 0) {
			if (errmsg)
				snprintf(errmsg, cap, "%s: open %s: %s",
					 p->name, o->log_path,
					 strerror(errno));
			mem_free(p);
			return ERR_IO;
		}
	}
	char **env = build_env(o->env_add);
	if (!env) {
		if (logfd >= 0)
			close(logfd);
		mem_free(p);
		return ERR_NOMEM;
	}

	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	p->open_handles = 1;
	if (p->pipes) {
		uv_pipe_init(loop, &p->out, 0);
		uv_pipe_init(loop, &p->err, 0);
		p->out.data = p->err.data = p;
		p->open_handles += 2;
	}

	uv_stdio_container_t stdio[3];
	stdio[0].flags = UV_IGNORE;
	if (p->pipes) {
		stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
		stdio[1].data.stream = (uv_stream_t *)&p->out;
		stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
		stdio[2].data.stream = (uv_stream_t *)&p->err;
	} else {
		stdio[1].flags = UV_INHERIT_FD;
		stdio[1].data.fd = logfd;
		stdio[2].flags = UV_INHERIT_FD;
		stdio[2].data.fd = logfd;
	}
	uv_process_options_t po = {
		.exit_cb = on_exit_cb,
		.file = o->file,
		.args = (char **)(uintptr_t)o->argv,
		.env = env,
		.cwd = o->cwd,
		.stdio_count = 3,
		.stdio = stdio,
	};
	if (o->set_ids) {
		po.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
		po.uid = o->uid;
		po.gid = o->gid;
	}
	p->proc.data = p;
	int rc = uv_spawn(loop, &p->proc, &po);
	mem_free(env);
	if (logfd >= 0)
		close(logfd);
	if (rc < 0) {
		if (errmsg)
			snprintf(errmsg, cap, "%s: spawn %s: %s", p->name,
				 o->file, uv_strerror(rc));
		/* The process handle is initialised even on failure and must
		 * be closed like the others. */
		p->done = true;
		p->open_handles++;
		close_all(p);
		return rc == UV_ENOENT || rc == UV_EACCES ? ERR_NOTFOUND
							   : ERR_IO;
	}
	p->open_handles++;
	p->pid = p->proc.pid;
	if (p->pipes) {
		p->out_open = p->err_open = true;
		uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
		uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
	}
	if (o->timeout_ms)
		uv_timer_start(&p->timer, on_timer, o->timeout_ms, 0);
	log_debug("pgc[proc=%s pid=%d] spawned", p->name, (int)p->pid);
	if (out)
		*out = p;
	return 0;
}

pid_t pgc_proc_pid(const struct pgc_proc *p)
{
	return p->pid;
}

int pgc_proc_signal(struct pgc_proc *p, int sig)
{
	if (p->exited)
		return 0;
	int rc = uv_process_kill(&p->proc, sig);
	return rc == 0 || rc == UV_ESRCH ? 0 : ERR_IO;
}

void pgc_proc_kill(struct pgc_proc *p)
{
	if (p->exited || p->killing)
		return;
	p->killing = true;
	p->kill_reason = ERR_CANCELED;
	uv_process_kill(&p->proc, SIGTERM);
	uv_timer_stop(&p->timer);
	uv_timer_start(&p->timer, on_timer, p->kill_grace_ms, 0);
}

void pgc_proc_abandon(struct pgc_proc *p, int sig)
{
	if (!p || p->done)
		return;
	if (sig && !p->exited)
		uv_process_kill(&p->proc, sig);
	p->done = true;
	close_all(p);
}
