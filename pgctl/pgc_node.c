/* pgc_node.c - one data directory, its postmaster, and the operations on
 * it as state machines.
 *
 * Postmaster lifecycle (pm_move checks the table):
 *   STOPPED -> STARTING (spawned) | RUNNING (adopted)
 *   STARTING -> RUNNING (accepts connections) | STOPPING | STOPPED (died)
 *   RUNNING -> STOPPING | STOPPED (died)
 *   STOPPING -> STOPPED
 * A child postmaster's exit is reported by its pgc_proc callback; an
 * adopted one (not our child) is polled with kill(pid, 0) and
 * /proc/PID/stat (a zombie still answers kill -0) every watch_ms, every
 * 50 ms while stopping.
 *
 * Every operation starts from a zero-delay timer (so no callback fires
 * before the call returns) and ends in op_finish, which fires the
 * callback once and frees the operation's connection.
 *
 * start:   [marker from a failed rewind: refused at the call] -> kickoff
 *          -> adopt a running postmaster for the data dir (then only wait)
 *          | write pgwarden.conf + include line + standby.signal -> spawn
 *          postgres -> every 50 ms "SELECT 1" on the socket until it
 *          answers -> RUNNING, done.
 *          Fails: conf write (ERR_IO/ERR_INVAL), spawn (ERR_NOTFOUND,
 *          ERR_IO), postmaster exits while starting (ERR_PG with its last
 *          stderr line), deadline (ERR_TIMEOUT; postmaster left running).
 * stop:    [stopped: adopt one if running, else done at once] -> signal by
 *          mode -> STOPPING -> exit seen -> STOPPED, done.
 *          Deadline: a milder mode escalates to SIGQUIT, the next deadline
 *          to SIGKILL; the result is then ERR_TIMEOUT (but it is down).
 * restart / demote: stop phase, then start phase (as above).
 * promote: [must be running] -> pg_ctl promote -w -> probe every 50 ms
 *          until not in recovery -> done.  Fails: pg_ctl exit (ERR_PG
 *          "promote: pg_ctl: exit 1: ..."), postmaster exits, deadline.
 * initdb / basebackup / wipe: one child program -> done; its failure is
 *          ERR_PG "initdb: initdb: exit 1: <stderr line>".
 * rewind:  [must be stopped, no marker] -> pg_rewind -> done; on any
 *          failure the marker file pgwarden.rewind_failed is written and
 *          pgc_node_start refuses the directory.
 * An unexpected postmaster exit during start/promote/restart/demote fails
 * that operation; otherwise it is reported through on_exit.
 * pgc_node_stop preempts a running start/restart/demote/promote (its
 * callback gets ERR_CANCELED from the `canceled` timer) so that fencing
 * never waits for a start to finish.
 */
#include "pgc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "mem.h"

#define PGC_ASSERT(c)                                                   \
	do {                                                            \
		if (!(c)) {                                             \
			log_error("pgc: assertion failed: %s (%s:%d)",  \
				  #c, __FILE__, __LINE__);              \
			abort();                                        \
		}                                                       \
	} while (0)

#define RETRY_MS 50
#define STOP_POLL_MS 50
#define READY_QUERY_MS 1000

enum op_kind {
	OP_NONE = 0,
	OP_INITDB,
	OP_START,
	OP_STOP,
	OP_RESTART,
	OP_DEMOTE,
	OP_PROMOTE,
	OP_BASEBACKUP,
	OP_REWIND,
	OP_WIPE,
};

static const char *op_names[] = {
	"none", "initdb", "start", "stop", "restart", "demote",
	"promote", "basebackup", "rewind", "wipe",
};

/* A query or controldata run beside the operations. */
struct side {
	struct side *prev, *next;
	struct pgc_node *n;
	struct pgc_conn *conn;   /* owned, or NULL */
	struct pgc_proc *proc;   /* running, or NULL */
	pgc_query_cb qcb;
	pgc_done_cb dcb;
	pgc_controldata_cb ccb;
	void *arg;
};

struct pgc_node {
	uv_loop_t *loop;
	/* configuration, owned copies */
	char *name, *bin_dir, *data_dir, *sock_dir, *listen, *superuser,
		*password, *log_path;
	char **node_settings;   /* NULL-terminated */
	char port_s[8];
	unsigned port;
	unsigned watch_ms;      /* ms */
	bool set_ids;
	uid_t uid;
	gid_t gid;
	pgc_exit_cb on_exit;
	void *on_exit_arg;

	/* postmaster */
	enum pgc_pm_state pm;
	pid_t pid;
	bool adopted;
	struct pgc_proc *pm_proc; /* child postmaster, NULL if adopted */
	bool stop_requested;      /* exit expected: no on_exit */

	uv_timer_t kick;          /* op steps and retries */
	uv_timer_t deadline;      /* op deadline, stop escalation */
	uv_timer_t watch;         /* adopted postmaster liveness */
	uv_timer_t canceled;      /* reports an op preempted by a stop */
	pgc_done_cb canceled_cb;  /* its callback, fired from `canceled` */
	void *canceled_arg;
	char canceled_msg[PGC_ERRMSG_MAX];
	int open_handles;
	bool freeing;
	void (*free_done)(void *);
	void *free_arg;

	/* the running operation */
	enum op_kind op;
	int step;
	pgc_done_cb cb;
	void *arg;
	struct pgc_proc *op_proc;  /* running program, or NULL */
	struct pgc_conn *op_conn;  /* owned, or NULL */
	bool do_stop, do_start;    /* restart/demote phases */
	enum pgc_stop_mode stop_mode;
	unsigned stop_timeout_ms;  /* ms */
	int stop_level;            /* 0 mode sent, 1 SIGQUIT, 2 SIGKILL */
	int stop_err;              /* ERR_TIMEOUT after escalation */
	unsigned timeout_ms;       /* ms: start/promote/program deadline */
	uint64_t op_deadline;      /* uv_now ms */
	char **conf_params;        /* owned copy of start conf */
	char *conf_conninfo, *conf_slot;
	bool conf_replica;
	char **argv;               /* owned program argv */
	char last_err[PGC_ERRMSG_MAX]; /* last failed ready attempt */

	struct pgc_conn *probe_conn; /* owned, lazily created */
	struct side *sides;

	char errmsg[PGC_ERRMSG_MAX];
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

static void set_err(struct pgc_node *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(struct pgc_node *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->errmsg, sizeof n->errmsg, fmt, ap);
	va_end(ap);
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		mem_free(v[i]);
	mem_free(v);
}

static char **dup_strv(const char *const *v, bool *failed)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **d = mem_calloc(n + 1, sizeof *d);
	if (!d) {
		*failed = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		d[i] = mem_strdup(v[i]);
		if (!d[i]) {
			free_strv(d);
			*failed = true;
			return NULL;
		}
	}
	return d;
}

/* Growable argv builder. */
struct argvb {
	char **v;
	size_t n, cap;
	bool failed;
};

static void av_add(struct argvb *a, const char *s)
{
	if (a->failed)
		return;
	if (a->n + 2 > a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		char **nv = mem_realloc(a->v, nc * sizeof *nv);
		if (!nv) {
			a->failed = true;
			return;
		}
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n] = mem_strdup(s);
	if (!a->v[a->n]) {
		a->failed = true;
		return;
	}
	a->v[++a->n] = NULL;
}

static void av_addf(struct argvb *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void av_addf(struct argvb *a, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof buf) {
		a->failed = true;
		return;
	}
	av_add(a, buf);
}

static char **av_take(struct argvb *a)
{
	if (a->failed) {
		free_strv(a->v);
		return NULL;
	}
	return a->v;
}

const char *pgc_pm_state_name(enum pgc_pm_state s)
{
	switch (s) {
	case PGC_PM_STOPPED:
		return "stopped";
	case PGC_PM_STARTING:
		return "starting";
	case PGC_PM_RUNNING:
		return "running";
	case PGC_PM_STOPPING:
		return "stopping";
	}
	return "unknown";
}

static const bool pm_allowed[4][4] = {
	/* to:            STOPPED STARTING RUNNING STOPPING */
	[PGC_PM_STOPPED] = {false, true, true, false},
	[PGC_PM_STARTING] = {true, false, true, true},
	[PGC_PM_RUNNING] = {true, false, false, true},
	[PGC_PM_STOPPING] = {true, false, false, false},
};

static void pm_move(struct pgc_node *n, enum pgc_pm_state to,
		    const char *reason)
{
	PGC_ASSERT(pm_allowed[n->pm][to]);
	log_info("pgc[node=%s] pm=%s->%s pid=%d reason=%s", n->name,
		 pgc_pm_state_name(n->pm), pgc_pm_state_name(to), (int)n->pid,
		 reason);
	n->pm = to;
}

/* Alive and not a zombie. Reaps a zombie that is our own child. */
static bool pid_alive(pid_t pid)
{
	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno != EPERM)
		return false;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return true;
	buf[r] = '\0';
	/* "pid (comm) S ..." - comm may contain ')' so take the last. */
	char *rp = strrchr(buf, ')');
	if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')) {
		/* Not ours to reap when it is someone else's child; then
		 * waitpid fails with ECHILD and changes nothing. */
		(void)waitpid(pid, NULL, WNOHANG);
		return false;
	}
	return true;
}

static struct pgc_conn *local_conn(struct pgc_node *n, const char *what)
{
	const char *kw[] = {"host", "port", "dbname", "user", "password",
			    "application_name", NULL};
	const char *val[] = {n->sock_dir, n->port_s, "postgres", n->superuser,
			     n->password ? n->password : "", "pgwarden", NULL};
	char name[80];
	snprintf(name, sizeof name, "%s/%s", n->name, what);
	struct pgc_conn_opts o = {.keywords = kw, .values = val, .name = name};
	struct pgc_conn *c = NULL;
	if (pgc_conn_new(n->loop, &o, &c) < 0)
		return NULL;
	return c;
}

static void clear_op_data(struct pgc_node *n)
{
	/* A program still running for a finished operation (promote failed
	 * because the postmaster died) must not call back into a later one. */
	if (n->op_proc)
		pgc_proc_abandon(n->op_proc, SIGTERM);
	n->op_proc = NULL;
	free_strv(n->conf_params);
	n->conf_params = NULL;
	mem_free(n->conf_conninfo);
	mem_free(n->conf_slot);
	n->conf_conninfo = n->conf_slot = NULL;
	free_strv(n->argv);
	n->argv = NULL;
	pgc_conn_free(n->op_conn);
	n->op_conn = NULL;
}

static void op_finish(struct pgc_node *n, int err)
{
	PGC_ASSERT(n->op != OP_NONE);
	uv_timer_stop(&n->kick);
	uv_timer_stop(&n->deadline);
	enum op_kind op = n->op;
	pgc_done_cb cb = n->cb;
	void *arg = n->arg;
	n->op = OP_NONE;
	n->cb = NULL;
	clear_op_data(n);
	if (err)
		log_warn("pgc[node=%s] op=%s failed: %s", n->name,
			 op_names[op], n->errmsg);
	else
		log_info("pgc[node=%s] op=%s done", n->name, op_names[op]);
	if (!err)
		n->errmsg[0] = '\0';
	if (cb)
		cb(arg, err, err ? n->errmsg : "");
}

/* Wrap the current n->errmsg (or msg) with the operation name. */
static void op_fail(struct pgc_node *n, int err, const char *msg)
{
	char tmp[PGC_ERRMSG_MAX];
	snprintf(tmp, sizeof tmp, "%s", msg);
	set_err(n, "%s: %s", op_names[n->op], tmp);
	op_finish(n, err);
}

/* Begin an operation: its first step runs from the kick timer. */
static int op_begin(struct pgc_node *n, enum op_kind op, pgc_done_cb cb,
		    void *arg, uv_timer_cb first)
{
	n->op = op;
	n->cb = cb;
	n->arg = arg;
	n->step = 0;
	n->errmsg[0] = '\0';
	n->last_err[0] = '\0';
	log_info("pgc[node=%s] op=%s begin", n->name, op_names[op]);
	uv_timer_start(&n->kick, first, 0, 0);
	return 0;
}

static bool op_busy(const struct pgc_node *n)
{
	return n->op != OP_NONE;
}

/* ------------------------------------------------------------------ */
/* Postmaster watching                                                  */
/* ------------------------------------------------------------------ */

static void start_phase(struct pgc_node *n);
static void stop_phase(struct pgc_node *n);
static void stop_exited(struct pgc_node *n);

/* The postmaster is gone (child exit or adopted poll). */
static void pm_gone(struct pgc_node *n, int64_t status, int sig,
		    const char *why)
{
	uv_timer_stop(&n->watch);
	n->pm_proc = NULL;
	bool expected = n->stop_requested;
	n->stop_requested = false;
	pm_move(n, PGC_PM_STOPPED, expected ? "stopped" : "exited");
	n->pid = 0;
	n->adopted = false;
	if (expected && n->op != OP_NONE && n->pm == PGC_PM_STOPPED &&
	    (n->op == OP_STOP || n->op == OP_RESTART || n->op == OP_DEMOTE) &&
	    n->do_stop) {
		stop_exited(n);
		return;
	}
	if (n->op == OP_START || n->op == OP_PROMOTE ||
	    n->op == OP_RESTART || n->op == OP_DEMOTE) {
		op_fail(n, ERR_PG, why);
		return;
	}
	if (!expected) {
		log_warn("pgc[node=%s] postmaster exited unexpectedly: %s",
			 n->name, why);
		if (n->on_exit)
			n->on_exit(n->on_exit_arg, status, sig);
	}
}

static void on_pm_done(void *arg, const struct pgc_proc_result *r)
{
	struct pgc_node *n = arg;
	char why[PGC_ERRMSG_MAX];
	if (r->term_signal)
		snprintf(why, sizeof why, "%s", r->errmsg);
	else
		snprintf(why, sizeof why, "%s",
			 r->exit_status ? r->errmsg : "postgres: exit 0");
	pm_gone(n, r->exit_status, r->term_signal, why);
}

static void on_watch(uv_timer_t *t)
{
	struct pgc_node *n = t->data;
	if (!n->adopted || n->pm == PGC_PM_STOPPED)
		return;
	if (!pid_alive(n->pid)) {
		pm_gone(n, -1, -1, "adopted postmaster is gone");
		return;
	}
	uv_timer_start(&n->watch, on_watch,
		       n->pm == PGC_PM_STOPPING ? STOP_POLL_MS : n->watch_ms,
		       0);
}

/* Is a postgres for our data directory running? Fills *pid. */
static bool find_running(struct pgc_node *n, pid_t *pid)
{
	struct pgc_pidfile pf;
	if (pgc_pidfile_read(n->data_dir, &pf, NULL, 0) < 0 || pf.pid <= 0)
		return false;
	if (!pid_alive(pf.pid))
		return false;
	/* The postmaster chdirs to its data directory. */
	char link[64], cwd[PATH_MAX], want[PATH_MAX];
	snprintf(link, sizeof link, "/proc/%d/cwd", (int)pf.pid);
	ssize_t len = readlink(link, cwd, sizeof cwd - 1);
	if (len < 0 || !realpath(n->data_dir, want))
		return false;
	cwd[len] = '\0';
	if (strcmp(cwd, want) != 0)
		return false;
	snprintf(link, sizeof link, "/proc/%d/exe", (int)pf.pid);
	len = readlink(link, cwd, sizeof cwd - 1);
	if (len < 0)
		return false;
	cwd[len] = '\0';
	const char *base = strrchr(cwd, '/');
	base = base ? base + 1 : cwd;
	if (strcmp(base, "postgres") != 0 && strcmp(base, "postmaster") != 0)
		return false;
	*pid = pf.pid;
	return true;
}

int pgc_node_adopt(struct pgc_node *n)
{
	if (n->pm != PGC_PM_STOPPED)
		return ERR_EXISTS;
	pid_t pid;
	if (!find_running(n, &pid))
		return ERR_NOTFOUND;
	n->pid = pid;
	n->adopted = true;
	pm_move(n, PGC_PM_RUNNING, "adopted");
	uv_timer_start(&n->watch, on_watch, n->watch_ms, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Start                                                                */
/* ------------------------------------------------------------------ */

static void ready_try(struct pgc_node *n);

static void on_ready_deadline(uv_timer_t *t)
{
	struct pgc_node *n = t->data;
	char msg[PGC_ERRMSG_MAX];
	snprintf(msg, sizeof msg, "not ready after %u ms%s%.*s", n->timeout_ms,
		 n->last_err[0] ? ": " : "", (int)180, n->last_err);
	op_fail(n, ERR_TIMEOUT, msg);
}

static void on_ready_retry(uv_timer_t *t)
{
	ready_try(t->data);
}

static void on_ready_result(void *arg, int err, const char *errmsg,
			    const struct pgc_rows *rows)
{
	struct pgc_node *n = arg;
	(void)rows;
	if (err) {
		snprintf(n->last_err, sizeof n->last_err, "%s", errmsg);
		uv_timer_start(&n->kick, on_ready_retry, RETRY_MS, 0);
		return;
	}
	if (n->pm == PGC_PM_STARTING)
		pm_move(n, PGC_PM_RUNNING, "accepts connections");
	op_finish(n, 0);
}

/* One query of the running operation on its local connection (opened on
 * first use as application_name appname), with READY_QUERY_MS or what is
 * left of the operation's deadline, whichever is shorter. */
static void op_local_query(struct pgc_node *n, const char *appname,
			   const char *sql, pgc_query_cb cb)
{
	if (!n->op_conn)
		n->op_conn = local_conn(n, appname);
	if (!n->op_conn) {
		op_fail(n, ERR_NOMEM, "out of memory");
		return;
	}
	uint64_t now = uv_now(n->loop);
	uint64_t left = n->op_deadline > now ? n->op_deadline - now : 1;
	unsigned t = left < READY_QUERY_MS ? (unsigned)left : READY_QUERY_MS;
	int rc = pgc_conn_query(n->op_conn, sql, 0, NULL, t ? t : 1, cb, n);
	if (rc < 0)
		op_fail(n, rc, "query failed to start");
}

static void ready_try(struct pgc_node *n)
{
	op_local_query(n, "ready", "SELECT 1", on_ready_result);
}

static void start_spawn(struct pgc_node *n)
{
	struct argvb a = {0};
	char prog[PATH_MAX];
	snprintf(prog, sizeof prog, "%s/postgres", n->bin_dir);
	av_add(&a, prog);
	av_add(&a, "-D");
	av_add(&a, n->data_dir);
	av_addf(&a, "-cport=%u", n->port);
	av_addf(&a, "-clisten_addresses=%s", n->listen);
	av_addf(&a, "-cunix_socket_directories=%s", n->sock_dir);
	for (size_t i = 0; n->node_settings && n->node_settings[i]; i++)
		av_addf(&a, "-c%s", n->node_settings[i]);
	char **argv = av_take(&a);
	if (!argv) {
		op_fail(n, ERR_NOMEM, "out of memory");
		return;
	}
	struct pgc_proc_opts o = {
		.file = prog,
		.argv = (const char *const *)argv,
		.cwd = n->data_dir,
		.name = "postgres",
		.log_path = n->log_path,
		.set_ids = n->set_ids,
		.uid = n->uid,
		.gid = n->gid,
	};
	char msg[PGC_ERRMSG_MAX];
	struct pgc_proc *p = NULL;
	int rc = pgc_proc_run(n->loop, &o, on_pm_done, n, &p, msg, sizeof msg);
	free_strv(argv);
	if (rc < 0) {
		op_fail(n, rc, msg);
		return;
	}
	n->pm_proc = p;
	n->pid = pgc_proc_pid(p);
	n->adopted = false;
	pm_move(n, PGC_PM_STARTING, "spawned");
	ready_try(n);
}

static void start_phase(struct pgc_node *n)
{
	n->do_start = false;
	n->op_deadline = uv_now(n->loop) + n->timeout_ms;
	uv_timer_start(&n->deadline, on_ready_deadline, n->timeout_ms, 0);
	if (n->pm != PGC_PM_STOPPED) {
		ready_try(n); /* already ours: just wait for it */
		return;
	}
	if (pgc_node_adopt(n) == 0) {
		log_info("pgc[node=%s] start: adopted running postmaster "
			 "pid=%d",
			 n->name, (int)n->pid);
		ready_try(n);
		return;
	}
	struct pgc_conf c = {
		.parameters = (const char *const *)n->conf_params,
		.replica = n->conf_replica,
		.primary_conninfo = n->conf_conninfo,
		.primary_slot_name = n->conf_slot,
	};
	char msg[PGC_ERRMSG_MAX];
	int rc = pgc_conf_write_on(n->loop, n->data_dir, &c, msg, sizeof msg);
	if (rc < 0) {
		op_fail(n, rc, msg);
		return;
	}
	start_spawn(n);
}

static void on_start_kick(uv_timer_t *t)
{
	start_phase(t->data);
}

static int marker_present(struct pgc_node *n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", n->data_dir,
		 PGC_REWIND_FAILED_FILE);
	return access(path, F_OK) == 0;
}

static int copy_start_opts(struct pgc_node *n, const struct pgc_start_opts *o)
{
	bool failed = false;
	n->conf_params = dup_strv(o->conf.parameters, &failed);
	n->conf_replica = o->conf.replica;
	if (o->conf.primary_conninfo &&
	    !(n->conf_conninfo = mem_strdup(o->conf.primary_conninfo)))
		failed = true;
	if (o->conf.primary_slot_name &&
	    !(n->conf_slot = mem_strdup(o->conf.primary_slot_name)))
		failed = true;
	n->timeout_ms = o->timeout_ms ? o->timeout_ms : 60000;
	if (failed) {
		clear_op_data(n);
		return ERR_NOMEM;
	}
	return 0;
}

static int check_startable(struct pgc_node *n)
{
	if (marker_present(n)) {
		set_err(n, "start: data directory %s is unusable after a "
			   "failed pg_rewind (%s)",
			n->data_dir, PGC_REWIND_FAILED_FILE);
		return ERR_CORRUPT;
	}
	return 0;
}

int pgc_node_start(struct pgc_node *n, const struct pgc_start_opts *o,
		   pgc_done_cb cb, void *arg)
{
	if (n->freeing)
		return ERR_SHUTDOWN;
	if (op_busy(n))
		return ERR_UNAVAILABLE;
	if (n->pm != PGC_PM_STOPPED) {
		set_err(n, "start: postmaster already running (pid %d)",
			(int)n->pid);
		return ERR_EXISTS;
	}
	int rc = check_startable(n);
	if (rc < 0)
		return rc;
	rc = copy_start_opts(n, o);
	if (rc < 0)
		return rc;
	n->do_stop = false;
	n->do_start = true;
	return op_begin(n, OP_START, cb, arg, on_start_kick);
}

/* ------------------------------------------------------------------ */
/* Stop                                                                 */
/* ------------------------------------------------------------------ */

static int mode_signal(enum pgc_stop_mode m)
{
	switch (m) {
	case PGC_STOP_SMART:
		return SIGTERM;
	case PGC_STOP_FAST:
		return SIGINT;
	case PGC_STOP_IMMEDIATE:
		return SIGQUIT;
	}
	return SIGINT;
}

static void pm_signal(struct pgc_node *n, int sig)
{
	if (n->pm_proc) {
		(void)pgc_proc_signal(n->pm_proc, sig);
	} else if (n->pid > 0 && kill(n->pid, sig) < 0 && errno != ESRCH) {
		log_warn("pgc[node=%s] kill(%d, %d): %s", n->name, (int)n->pid,
			 sig, strerror(errno));
	}
}

static void on_stop_deadline(uv_timer_t *t)
{
	struct pgc_node *n = t->data;
	n->stop_err = ERR_TIMEOUT;
	if (n->stop_level == 0 && n->stop_mode != PGC_STOP_IMMEDIATE) {
		n->stop_level = 1;
		log_warn("pgc[node=%s] stop: not down after %u ms, "
			 "escalating to immediate",
			 n->name, n->stop_timeout_ms);
		pm_signal(n, SIGQUIT);
	} else {
		n->stop_level = 2;
		log_warn("pgc[node=%s] stop: not down after %u ms, SIGKILL",
			 n->name, n->stop_timeout_ms);
		pm_signal(n, SIGKILL);
		return; /* nothing stronger; wait for the exit */
	}
	uv_timer_start(&n->deadline, on_stop_deadline, n->stop_timeout_ms, 0);
}

static void stop_exited(struct pgc_node *n)
{
	n->do_stop = false;
	uv_timer_stop(&n->deadline);
	if (n->stop_err) {
		char msg[PGC_ERRMSG_MAX];
		snprintf(msg, sizeof msg,
			 "postmaster needed %s after %u ms (it is down)",
			 n->stop_level >= 2 ? "SIGKILL" : "immediate mode",
			 n->stop_timeout_ms);
		op_fail(n, n->stop_err, msg);
		return;
	}
	if (n->do_start) {
		int rc = check_startable(n);
		if (rc < 0) {
			op_finish(n, rc);
			return;
		}
		start_phase(n);
		return;
	}
	op_finish(n, 0);
}

static void stop_phase(struct pgc_node *n)
{
	n->stop_level = 0;
	n->stop_err = 0;
	if (n->pm == PGC_PM_STOPPED && pgc_node_adopt(n) < 0) {
		n->do_stop = true;
		stop_exited(n); /* nothing to stop */
		return;
	}
	n->do_stop = true;
	n->stop_requested = true;
	if (n->pm != PGC_PM_STOPPING)
		pm_move(n, PGC_PM_STOPPING, "stop requested");
	log_info("pgc[node=%s] stop mode=%d signal=%d pid=%d", n->name,
		 (int)n->stop_mode, mode_signal(n->stop_mode), (int)n->pid);
	pm_signal(n, mode_signal(n->stop_mode));
	uv_timer_start(&n->deadline, on_stop_deadline, n->stop_timeout_ms, 0);
	if (n->adopted)
		uv_timer_start(&n->watch, on_watch, STOP_POLL_MS, 0);
}

static void on_stop_kick(uv_timer_t *t)
{
	stop_phase(t->data);
}

static void on_canceled(uv_timer_t *t)
{
	struct pgc_node *n = t->data;
	pgc_done_cb cb = n->canceled_cb;
	n->canceled_cb = NULL;
	if (cb)
		cb(n->canceled_arg, ERR_CANCELED, n->canceled_msg);
}

/* A stop preempts an operation that (re)starts or promotes PostgreSQL:
 * fencing must not wait for a start to finish. The preempted callback
 * fires with ERR_CANCELED from its own timer, after the stop call
 * returned. */
static bool preempt(struct pgc_node *n)
{
	if (n->op != OP_START && n->op != OP_RESTART && n->op != OP_DEMOTE &&
	    n->op != OP_PROMOTE)
		return false;
	if (n->canceled_cb)
		return false; /* one pending report at a time */
	snprintf(n->canceled_msg, sizeof n->canceled_msg,
		 "%s: canceled by a stop", op_names[n->op]);
	log_warn("pgc[node=%s] op=%s canceled by a stop", n->name,
		 op_names[n->op]);
	n->canceled_cb = n->cb;
	n->canceled_arg = n->arg;
	uv_timer_stop(&n->kick);
	uv_timer_stop(&n->deadline);
	n->op = OP_NONE;
	n->cb = NULL;
	clear_op_data(n);
	uv_timer_start(&n->canceled, on_canceled, 0, 0);
	return true;
}

static int stop_begin(struct pgc_node *n, enum op_kind op,
		      enum pgc_stop_mode mode, unsigned timeout_ms,
		      const struct pgc_start_opts *o, pgc_done_cb cb,
		      void *arg)
{
	if (n->freeing)
		return ERR_SHUTDOWN;
	if (mode != PGC_STOP_SMART && mode != PGC_STOP_FAST &&
	    mode != PGC_STOP_IMMEDIATE)
		return ERR_INVAL;
	if (op_busy(n) && !(op == OP_STOP && preempt(n)))
		return ERR_UNAVAILABLE;
	n->stop_mode = mode;
	n->stop_timeout_ms = timeout_ms ? timeout_ms : 30000;
	n->do_start = false;
	if (o) {
		int rc = copy_start_opts(n, o);
		if (rc < 0)
			return rc;
		n->do_start = true;
	}
	n->do_stop = true;
	return op_begin(n, op, cb, arg, on_stop_kick);
}

int pgc_node_stop(struct pgc_node *n, enum pgc_stop_mode mode,
		  unsigned timeout_ms, pgc_done_cb cb, void *arg)
{
	return stop_begin(n, OP_STOP, mode, timeout_ms, NULL, cb, arg);
}

int pgc_node_restart(struct pgc_node *n, enum pgc_stop_mode mode,
		     unsigned stop_timeout_ms, const struct pgc_start_opts *o,
		     pgc_done_cb cb, void *arg)
{
	if (!o)
		return ERR_INVAL;
	return stop_begin(n, OP_RESTART, mode, stop_timeout_ms, o, cb, arg);
}

int pgc_node_demote(struct pgc_node *n, enum pgc_stop_mode mode,
		    unsigned stop_timeout_ms, const struct pgc_start_opts *o,
		    pgc_done_cb cb, void *arg)
{
	if (!o)
		return ERR_INVAL;
	return stop_begin(n, OP_DEMOTE, mode, stop_timeout_ms, o, cb, arg);
}

int pgc_node_reload(struct pgc_node *n)
{
	if (n->pm != PGC_PM_RUNNING && n->pm != PGC_PM_STARTING)
		return ERR_UNAVAILABLE;
	pm_signal(n, SIGHUP);
	log_info("pgc[node=%s] reload pid=%d", n->name, (int)n->pid);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Programs: initdb, promote, basebackup, rewind, wipe                  */
/* ------------------------------------------------------------------ */

static void on_promote_probe(void *arg, int err, const char *errmsg,
			     const struct pgc_rows *rows);

static void promote_check(struct pgc_node *n)
{
	op_local_query(n, "promote", "SELECT pg_is_in_recovery()",
		       on_promote_probe);
}

static void on_promote_retry(uv_timer_t *t)
{
	promote_check(t->data);
}

static void on_promote_probe(void *arg, int err, const char *errmsg,
			     const struct pgc_rows *rows)
{
	struct pgc_node *n = arg;
	const char *v = err ? NULL : pgc_rows_value(rows, 0, 0);
	if (v && v[0] == 'f') {
		op_finish(n, 0);
		return;
	}
	snprintf(n->last_err, sizeof n->last_err, "%s",
		 err ? errmsg : "still in recovery");
	uv_timer_start(&n->kick, on_promote_retry, RETRY_MS, 0);
}

static void on_program_done(void *arg, const struct pgc_proc_result *r)
{
	struct pgc_node *n = arg;
	n->op_proc = NULL;
	if (r->err) {
		if (n->op == OP_REWIND) {
			/* A failed rewind may have half-copied files: never
			 * start this directory again (docs/architecture.md,
			 * "The agent's loop"). */
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%s", n->data_dir,
				 PGC_REWIND_FAILED_FILE);
			int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC,
				      0600);
			if (fd >= 0) {
				if (write(fd, r->errmsg, strlen(r->errmsg)) < 0)
					log_warn("pgc[node=%s] write %s: %s",
						 n->name, path,
						 strerror(errno));
				close(fd);
			}
		}
		op_fail(n, r->err, r->errmsg);
		return;
	}
	if (n->op == OP_PROMOTE) {
		promote_check(n);
		return;
	}
	op_finish(n, 0);
}

static void on_program_deadline(uv_timer_t *t)
{
	struct pgc_node *n = t->data;
	/* promote: pg_ctl returned but the server is still in recovery. */
	char msg[PGC_ERRMSG_MAX];
	snprintf(msg, sizeof msg, "not finished after %u ms%s%.*s",
		 n->timeout_ms, n->last_err[0] ? ": " : "", (int)180, n->last_err);
	if (n->op_proc) {
		pgc_proc_abandon(n->op_proc, SIGTERM);
		n->op_proc = NULL;
	}
	op_fail(n, ERR_TIMEOUT, msg);
}

static void on_program_kick(uv_timer_t *t);

static void on_rewind_checkpoint(void *arg, int err, const char *errmsg,
				 const struct pgc_rows *rows)
{
	struct pgc_node *n = arg;
	(void)rows;
	if (err) {
		char msg[PGC_ERRMSG_MAX];
		snprintf(msg, sizeof msg, "checkpoint on source: %.200s",
			 errmsg);
		op_fail(n, err, msg);
		return;
	}
	n->step = 1;
	on_program_kick(&n->kick);
}

static void on_program_kick(uv_timer_t *t)
{
	struct pgc_node *n = t->data;
	if (n->op == OP_REWIND && n->step == 0) {
		/* argv[2] is --source-server=CONNINFO */
		const char *ci = n->argv[2] + strlen("--source-server=");
		int rc = pgc_conn_new_conninfo(n->loop, ci, "rewind-source",
					       &n->op_conn);
		if (rc == 0)
			rc = pgc_conn_query(n->op_conn, "CHECKPOINT", 0, NULL,
					    n->timeout_ms < 60000
						    ? n->timeout_ms
						    : 60000,
					    on_rewind_checkpoint, n);
		if (rc < 0)
			op_fail(n, rc, "checkpoint on source: bad conninfo "
				       "or out of memory");
		return;
	}
	const char *env[] = {"LC_ALL=C", "LANG=C", NULL};
	struct pgc_proc_opts o = {
		.file = n->argv[0],
		.argv = (const char *const *)n->argv,
		.env_add = env,
		.cwd = n->op == OP_WIPE ? "/" : NULL,
		.timeout_ms = n->timeout_ms,
		.set_ids = n->set_ids,
		.uid = n->uid,
		.gid = n->gid,
	};
	n->op_deadline = uv_now(n->loop) + n->timeout_ms;
	if (n->op == OP_PROMOTE)
		uv_timer_start(&n->deadline, on_program_deadline,
			       n->timeout_ms + 1000, 0);
	char msg[PGC_ERRMSG_MAX];
	int rc = pgc_proc_run(n->loop, &o, on_program_done, n, &n->op_proc,
			      msg, sizeof msg);
	if (rc < 0)
		op_fail(n, rc, msg);
}

static int program_begin(struct pgc_node *n, enum op_kind op,
			 struct argvb *a, unsigned timeout_ms, pgc_done_cb cb,
			 void *arg)
{
	char **argv = av_take(a);
	if (!argv)
		return ERR_NOMEM;
	n->argv = argv;
	n->timeout_ms = timeout_ms;
	return op_begin(n, op, cb, arg, on_program_kick);
}

static int prog_check(struct pgc_node *n, bool need_stopped)
{
	if (n->freeing)
		return ERR_SHUTDOWN;
	if (op_busy(n))
		return ERR_UNAVAILABLE;
	if (need_stopped && n->pm != PGC_PM_STOPPED) {
		set_err(n, "postmaster running (pid %d)", (int)n->pid);
		return ERR_EXISTS;
	}
	return 0;
}

int pgc_node_initdb(struct pgc_node *n, const struct pgc_initdb_opts *o,
		    pgc_done_cb cb, void *arg)
{
	int rc = prog_check(n, true);
	if (rc < 0)
		return rc;
	struct argvb a = {0};
	av_addf(&a, "%s/initdb", n->bin_dir);
	av_addf(&a, "--pgdata=%s", n->data_dir);
	av_addf(&a, "--username=%s", n->superuser);
	if (!o->no_checksums)
		av_add(&a, "--data-checksums");
	av_addf(&a, "--auth-local=%s", o->auth_local ? o->auth_local : "peer");
	av_addf(&a, "--auth-host=%s",
		o->auth_host ? o->auth_host : "scram-sha-256");
	if (o->pwfile)
		av_addf(&a, "--pwfile=%s", o->pwfile);
	for (size_t i = 0; o->options && o->options[i]; i++)
		av_add(&a, o->options[i]);
	return program_begin(n, OP_INITDB, &a,
			     o->timeout_ms ? o->timeout_ms : 60000, cb, arg);
}

int pgc_node_promote(struct pgc_node *n, unsigned timeout_ms, pgc_done_cb cb,
		     void *arg)
{
	int rc = prog_check(n, false);
	if (rc < 0)
		return rc;
	if (n->pm != PGC_PM_RUNNING) {
		set_err(n, "promote: postmaster is %s",
			pgc_pm_state_name(n->pm));
		return ERR_UNAVAILABLE;
	}
	unsigned t = timeout_ms ? timeout_ms : 60000;
	struct argvb a = {0};
	av_addf(&a, "%s/pg_ctl", n->bin_dir);
	av_add(&a, "promote");
	av_add(&a, "-D");
	av_add(&a, n->data_dir);
	av_add(&a, "-w");
	av_addf(&a, "-t%u", (t + 999) / 1000);
	av_add(&a, "-s");
	return program_begin(n, OP_PROMOTE, &a, t, cb, arg);
}

int pgc_node_basebackup(struct pgc_node *n,
			const struct pgc_basebackup_opts *o, pgc_done_cb cb,
			void *arg)
{
	int rc = prog_check(n, true);
	if (rc < 0)
		return rc;
	if (!o->conninfo || (o->create_slot && !o->slot))
		return ERR_INVAL;
	struct argvb a = {0};
	av_addf(&a, "%s/pg_basebackup", n->bin_dir);
	av_addf(&a, "--pgdata=%s", n->data_dir);
	av_add(&a, "--wal-method=stream");
	av_add(&a, "--checkpoint=fast");
	av_addf(&a, "--dbname=%s", o->conninfo);
	av_add(&a, "--no-password");
	if (o->slot)
		av_addf(&a, "--slot=%s", o->slot);
	if (o->create_slot)
		av_add(&a, "--create-slot");
	for (size_t i = 0; o->options && o->options[i]; i++)
		av_add(&a, o->options[i]);
	return program_begin(n, OP_BASEBACKUP, &a,
			     o->timeout_ms ? o->timeout_ms : 600000, cb, arg);
}

int pgc_node_rewind(struct pgc_node *n, const char *source_conninfo,
		    unsigned timeout_ms, pgc_done_cb cb, void *arg)
{
	int rc = prog_check(n, true);
	if (rc < 0)
		return rc;
	if (!source_conninfo)
		return ERR_INVAL;
	pid_t pid;
	if (find_running(n, &pid)) {
		set_err(n, "rewind: a postmaster runs on %s (pid %d)",
			n->data_dir, (int)pid);
		return ERR_EXISTS;
	}
	rc = check_startable(n);
	if (rc < 0)
		return rc;
	struct argvb a = {0};
	av_addf(&a, "%s/pg_rewind", n->bin_dir);
	av_addf(&a, "--target-pgdata=%s", n->data_dir);
	av_addf(&a, "--source-server=%s", source_conninfo);
	return program_begin(n, OP_REWIND, &a,
			     timeout_ms ? timeout_ms : 600000, cb, arg);
}

int pgc_node_wipe(struct pgc_node *n, pgc_done_cb cb, void *arg)
{
	int rc = prog_check(n, true);
	if (rc < 0)
		return rc;
	if (!n->data_dir[0] || strcmp(n->data_dir, "/") == 0)
		return ERR_INVAL;
	struct argvb a = {0};
	av_add(&a, "/bin/rm");
	av_add(&a, "-rf");
	av_add(&a, "--");
	av_add(&a, n->data_dir);
	return program_begin(n, OP_WIPE, &a, 600000, cb, arg);
}

int pgc_node_write_conf(struct pgc_node *n, const struct pgc_conf *c)
{
	return pgc_conf_write_on(n->loop, n->data_dir, c, n->errmsg,
				 sizeof n->errmsg);
}

/* ------------------------------------------------------------------ */
/* Side work: controldata, queries, slots, probe                        */
/* ------------------------------------------------------------------ */

static struct side *side_new(struct pgc_node *n)
{
	struct side *s = mem_calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->n = n;
	s->next = n->sides;
	if (n->sides)
		n->sides->prev = s;
	n->sides = s;
	return s;
}

static void side_free(struct side *s)
{
	struct pgc_node *n = s->n;
	if (s->prev)
		s->prev->next = s->next;
	else
		n->sides = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pgc_conn_free(s->conn);
	mem_free(s);
}

static void on_controldata(void *arg, const struct pgc_proc_result *r)
{
	struct side *s = arg;
	s->proc = NULL;
	pgc_controldata_cb cb = s->ccb;
	void *carg = s->arg;
	side_free(s);
	if (r->err) {
		char msg[PGC_ERRMSG_MAX];
		snprintf(msg, sizeof msg, "controldata: %s", r->errmsg);
		cb(carg, r->err, msg, NULL);
		return;
	}
	struct pgc_controldata cd;
	if (pgc_controldata_parse(r->out, &cd) < 0) {
		cb(carg, ERR_CORRUPT,
		   "controldata: unexpected pg_controldata output", NULL);
		return;
	}
	cb(carg, 0, "", &cd);
}

int pgc_node_controldata(struct pgc_node *n, pgc_controldata_cb cb,
			 void *arg)
{
	if (n->freeing)
		return ERR_SHUTDOWN;
	char prog[PATH_MAX];
	snprintf(prog, sizeof prog, "%s/pg_controldata", n->bin_dir);
	const char *argv[] = {prog, "-D", n->data_dir, NULL};
	const char *env[] = {"LC_ALL=C", "LANG=C", NULL};
	struct side *s = side_new(n);
	if (!s)
		return ERR_NOMEM;
	s->ccb = cb;
	s->arg = arg;
	struct pgc_proc_opts o = {
		.file = prog,
		.argv = argv,
		.env_add = env,
		.timeout_ms = 30000,
		.set_ids = n->set_ids,
		.uid = n->uid,
		.gid = n->gid,
	};
	int rc = pgc_proc_run(n->loop, &o, on_controldata, s, &s->proc,
			      n->errmsg, sizeof n->errmsg);
	if (rc < 0)
		side_free(s);
	return rc;
}

static void on_side_query(void *arg, int err, const char *errmsg,
			  const struct pgc_rows *rows)
{
	struct side *s = arg;
	pgc_query_cb qcb = s->qcb;
	pgc_done_cb dcb = s->dcb;
	void *carg = s->arg;
	/* The connection stays alive until after the callback: rows point
	 * into it. side_free closes it on a later loop turn. */
	if (qcb)
		qcb(carg, err, errmsg, rows);
	else if (dcb)
		dcb(carg, err, errmsg);
	side_free(s);
}

static int side_query(struct pgc_node *n, const char *sql, int nparams,
		      const char *const *params, unsigned timeout_ms,
		      pgc_query_cb qcb, pgc_done_cb dcb, void *arg)
{
	if (n->freeing)
		return ERR_SHUTDOWN;
	struct side *s = side_new(n);
	if (!s)
		return ERR_NOMEM;
	s->qcb = qcb;
	s->dcb = dcb;
	s->arg = arg;
	s->conn = local_conn(n, "query");
	if (!s->conn) {
		side_free(s);
		return ERR_NOMEM;
	}
	int rc = pgc_conn_query(s->conn, sql, nparams, params,
				timeout_ms ? timeout_ms : 5000, on_side_query,
				s);
	if (rc < 0)
		side_free(s);
	return rc;
}

int pgc_node_query(struct pgc_node *n, const char *sql, int nparams,
		   const char *const *params, unsigned timeout_ms,
		   pgc_query_cb cb, void *arg)
{
	return side_query(n, sql, nparams, params, timeout_ms, cb, NULL, arg);
}

int pgc_node_slot_create(struct pgc_node *n, const char *slot,
			 unsigned timeout_ms, pgc_done_cb cb, void *arg)
{
	const char *params[] = {slot};
	return side_query(n,
			  "SELECT pg_create_physical_replication_slot($1, true)"
			  " WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots"
			  " WHERE slot_name = $1)",
			  1, params, timeout_ms, NULL, cb, arg);
}

int pgc_node_slot_drop(struct pgc_node *n, const char *slot,
		       unsigned timeout_ms, pgc_done_cb cb, void *arg)
{
	const char *params[] = {slot};
	return side_query(n,
			  "SELECT pg_drop_replication_slot(slot_name)"
			  " FROM pg_replication_slots WHERE slot_name = $1",
			  1, params, timeout_ms, NULL, cb, arg);
}

int pgc_node_probe(struct pgc_node *n, unsigned timeout_ms, pgc_probe_cb cb,
		   void *arg)
{
	if (n->freeing)
		return ERR_SHUTDOWN;
	if (!n->probe_conn)
		n->probe_conn = local_conn(n, "probe");
	if (!n->probe_conn)
		return ERR_NOMEM;
	return pgc_conn_probe(n->probe_conn, timeout_ms ? timeout_ms : 2000,
			      cb, arg);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */
/* ------------------------------------------------------------------ */

static void node_release(struct pgc_node *n)
{
	mem_free(n->name);
	mem_free(n->bin_dir);
	mem_free(n->data_dir);
	mem_free(n->sock_dir);
	mem_free(n->listen);
	mem_free(n->superuser);
	mem_free(n->password);
	mem_free(n->log_path);
	free_strv(n->node_settings);
	mem_free(n);
}

int pgc_node_new(uv_loop_t *loop, const struct pgc_node_config *cfg,
		 struct pgc_node **out)
{
	if (!cfg->bin_dir || !cfg->data_dir || cfg->data_dir[0] != '/' ||
	    !cfg->sock_dir || cfg->sock_dir[0] != '/' || cfg->port == 0 ||
	    cfg->port > 65535)
		return ERR_INVAL;
	/* sun_path is 108 bytes: DIR + "/.s.PGSQL." + port + NUL. */
	if (strlen(cfg->sock_dir) + 16 > 107)
		return ERR_INVAL;
	struct pgc_node *n = mem_calloc(1, sizeof *n);
	if (!n)
		return ERR_NOMEM;
	bool failed = false;
#define DUP(dst, src)                                                   \
	do {                                                            \
		if (!((dst) = mem_strdup(src)))                         \
			failed = true;                                  \
	} while (0)
	DUP(n->name, cfg->name ? cfg->name : "pg");
	DUP(n->bin_dir, cfg->bin_dir);
	DUP(n->data_dir, cfg->data_dir);
	DUP(n->sock_dir, cfg->sock_dir);
	DUP(n->listen, cfg->listen_addresses ? cfg->listen_addresses : "");
	DUP(n->superuser, cfg->superuser ? cfg->superuser : "postgres");
	if (cfg->password)
		DUP(n->password, cfg->password);
	if (cfg->log_path)
		DUP(n->log_path, cfg->log_path);
#undef DUP
	n->node_settings = dup_strv(cfg->node_settings, &failed);
	if (failed) {
		node_release(n);
		return ERR_NOMEM;
	}
	n->loop = loop;
	n->port = cfg->port;
	snprintf(n->port_s, sizeof n->port_s, "%u", cfg->port);
	n->watch_ms = cfg->watch_ms ? cfg->watch_ms : 500;
	n->set_ids = cfg->set_ids;
	n->uid = cfg->uid;
	n->gid = cfg->gid;
	n->on_exit = cfg->on_exit;
	n->on_exit_arg = cfg->on_exit_arg;
	uv_timer_init(loop, &n->kick);
	uv_timer_init(loop, &n->deadline);
	uv_timer_init(loop, &n->watch);
	uv_timer_init(loop, &n->canceled);
	n->kick.data = n->deadline.data = n->watch.data = n;
	n->canceled.data = n;
	n->open_handles = 4;
	*out = n;
	return 0;
}

static void on_node_close(uv_handle_t *h)
{
	struct pgc_node *n = h->data;
	if (--n->open_handles > 0)
		return;
	void (*done)(void *) = n->free_done;
	void *arg = n->free_arg;
	node_release(n);
	if (done)
		done(arg);
}

void pgc_node_free(struct pgc_node *n, void (*done)(void *), void *arg)
{
	if (!n || n->freeing)
		return;
	n->freeing = true;
	n->free_done = done;
	n->free_arg = arg;
	n->cb = NULL;
	n->op = OP_NONE;
	if (n->op_proc)
		pgc_proc_abandon(n->op_proc, SIGTERM);
	n->op_proc = NULL;
	/* The postmaster keeps running; a later node adopts it. */
	if (n->pm_proc)
		pgc_proc_abandon(n->pm_proc, 0);
	n->pm_proc = NULL;
	clear_op_data(n);
	pgc_conn_free(n->probe_conn);
	n->probe_conn = NULL;
	while (n->sides) {
		struct side *s = n->sides;
		if (s->proc)
			pgc_proc_abandon(s->proc, SIGTERM);
		side_free(s);
	}
	uv_close((uv_handle_t *)&n->kick, on_node_close);
	uv_close((uv_handle_t *)&n->deadline, on_node_close);
	uv_close((uv_handle_t *)&n->watch, on_node_close);
	n->canceled_cb = NULL;
	uv_close((uv_handle_t *)&n->canceled, on_node_close);
}

enum pgc_pm_state pgc_node_state(const struct pgc_node *n)
{
	return n->pm;
}

pid_t pgc_node_pid(const struct pgc_node *n)
{
	return n->pid;
}

bool pgc_node_adopted(const struct pgc_node *n)
{
	return n->adopted;
}

bool pgc_node_busy(const struct pgc_node *n)
{
	return op_busy(n);
}

const char *pgc_node_errmsg(const struct pgc_node *n)
{
	return n->errmsg;
}
