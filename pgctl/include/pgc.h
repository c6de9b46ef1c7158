/* pgc.h - pgctl: everything pgwarden does to PostgreSQL, without blocking
 * the loop.
 *
 * Layers, each usable on its own:
 *   - text helpers (pgc_lsn_*, pgc_conninfo_*, pgc_conf_*, pgc_pidfile_*,
 *     pgc_controldata_*): pure functions and small file writes (one small
 *     file each, written to a temporary name and renamed; the disk flush
 *     on libuv's thread pool when a loop is given, see pgc_conf_write_on);
 *   - child processes (pgc_proc_*): uv_spawn with output on pipes (the last
 *     4 KiB of stdout and stderr kept), a kill timer (SIGTERM, then SIGKILL)
 *     and one completion callback;
 *   - asynchronous libpq (pgc_conn_*): one connection, one query at a time,
 *     rows as strings, a uv_timer deadline on every query (connect
 *     included), and the one-round-trip probe (pgc_conn_probe);
 *   - the node (pgc_node_*): one PostgreSQL data directory with its
 *     postmaster, run as a direct child (`postgres -D ... -c port=...`, so
 *     it stays in pgwarden's process group and per-node settings never sit
 *     in files that pg_rewind overwrites) or adopted from postmaster.pid
 *     after a pgwarden restart; and the operations on it as state machines
 *     with one completion callback: initdb, start, stop, restart, promote,
 *     demote, pg_basebackup, pg_rewind, pg_controldata, wipe, slots.
 *
 * Files pgctl owns in the data directory:
 *   pgwarden.conf           cluster parameters,
 *                           recovery_target_timeline='latest' (on every
 *                           node) and the replica settings
 *                           (primary_conninfo, primary_slot_name); included
 *                           from postgresql.conf by one line
 *                           "include_if_exists = 'pgwarden.conf'" that
 *                           pgctl appends when missing (pg_rewind copies
 *                           the source's files, so pgc_node_start rewrites
 *                           both every time);
 *   standby.signal          present exactly when started as a replica;
 *   pgwarden.rewind_failed  written when pg_rewind fails: the directory is
 *                           unusable and pgc_node_start refuses it until it
 *                           is wiped and cloned again.
 *
 * Callbacks: every asynchronous function either returns 0 and later calls
 * its callback exactly once, from a libuv callback (never before the
 * function returns), or returns a negative code and never calls it.
 * Strings handed to a callback are borrowed for the duration of the call.
 * Strings and arrays passed in are copied unless marked borrowed.
 *
 * Thread: everything here runs on the one libuv loop thread.
 * Errors: 0 or a negative code from base/err.h (ERR_PG for a PostgreSQL
 * error or a failing PostgreSQL program, ERR_TIMEOUT for a passed deadline,
 * ERR_IO for system call failures, ERR_UNAVAILABLE when the object is busy
 * with another operation). Messages wrap: "promote: pg_ctl: exit 1: ...".
 */
#ifndef PGC_H
#define PGC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

/* ------------------------------------------------------------------ */
/* Limits and file names                                                */
/* ------------------------------------------------------------------ */

#define PGC_TAIL_MAX 4096        /* bytes of stdout/stderr kept, each */
#define PGC_ERRMSG_MAX 256       /* bytes, with the NUL */
#define PGC_LSN_STRLEN 18        /* "FFFFFFFF/FFFFFFFF" + NUL */
#define PGC_CONF_FILE "pgwarden.conf"
#define PGC_CONF_INCLUDE "include_if_exists = 'pgwarden.conf'"
#define PGC_REWIND_FAILED_FILE "pgwarden.rewind_failed"

/* ------------------------------------------------------------------ */
/* Text helpers (pure)                                                  */
/* ------------------------------------------------------------------ */

/* Parse an LSN "16/B374D848" (hex, both halves at most 8 digits, nothing
 * after) into *out. ERR_INVAL on anything else. */
int pgc_lsn_parse(const char *s, uint64_t *out);
/* Format lsn as "%X/%X" into buf (PGC_LSN_STRLEN bytes); returns buf. */
char *pgc_lsn_format(uint64_t lsn, char buf[PGC_LSN_STRLEN]);

/* Build a libpq keyword=value connection string from parallel
 * NULL-terminated arrays (NULL or "" values are skipped), quoting every
 * value that needs it: 'a b' and backslash-escaping ' and \. Writes a
 * NUL-terminated string into buf; ERR_TOOBIG if cap is too small,
 * ERR_INVAL for an empty or non-identifier keyword. */
int pgc_conninfo_build(char *buf, size_t cap, const char *const *keywords,
		       const char *const *values);

/* Quote val as a postgresql.conf string literal ('...' with ' doubled and
 * \ doubled) into buf. ERR_TOOBIG if cap is too small. */
int pgc_conf_quote(char *buf, size_t cap, const char *val);

/* What postmaster.pid says (PostgreSQL 15 layout). */
struct pgc_pidfile {
	pid_t pid;            /* line 1 (negative for a single-user backend) */
	char data_dir[1024];  /* line 2 */
	int64_t start_time;   /* line 3, epoch seconds */
	unsigned port;        /* line 4 */
	char sock_dir[1024];  /* line 5, first directory; may be empty */
	char listen[256];     /* line 6, first address; may be empty */
	char status[16];      /* line 8: "starting", "ready", "stopping",
				 "standby"; may be empty (still starting) */
};
/* Parse the text of postmaster.pid. ERR_CORRUPT when the first four lines
 * are not there or not numbers. */
int pgc_pidfile_parse(const char *text, struct pgc_pidfile *out);
/* Read DATA_DIR/postmaster.pid (small synchronous read). ERR_NOTFOUND when
 * there is none, ERR_IO / ERR_CORRUPT otherwise; errmsg (cap bytes, may be
 * NULL) says why. */
int pgc_pidfile_read(const char *data_dir, struct pgc_pidfile *out,
		     char *errmsg, size_t cap);

/* What pg_controldata prints that pgwarden needs. */
struct pgc_controldata {
	uint64_t system_id;         /* "Database system identifier" */
	char state[40];             /* "Database cluster state": "in
				       production", "shut down", "shut down in
				       recovery", "in archive recovery",
				       "in crash recovery", ... */
	uint32_t timeline;          /* "Latest checkpoint's TimeLineID" */
	uint64_t checkpoint_lsn;    /* "Latest checkpoint location" */
	uint32_t min_recovery_tli;  /* "Min recovery ending loc's timeline" */
	uint64_t min_recovery_lsn;  /* "Minimum recovery ending location" */
	bool data_checksums;        /* "Data page checksum version" != 0 */
	bool wal_log_hints;         /* "wal_log_hints setting" == on */
};
/* Parse pg_controldata output (C or English locale). ERR_CORRUPT when the
 * system identifier, state or timeline is missing. */
int pgc_controldata_parse(const char *text, struct pgc_controldata *out);

/* ------------------------------------------------------------------ */
/* Data directory files (small synchronous writes)                      */
/* ------------------------------------------------------------------ */

/* Content of pgwarden.conf. All strings borrowed during the call. */
struct pgc_conf {
	const char *const *parameters; /* "name=value", NULL-terminated;
					  cluster-wide settings; may be NULL */
	bool replica;                  /* write the replica settings and
					  standby.signal; else remove it */
	const char *primary_conninfo;  /* replica: libpq conninfo (build it
					  with pgc_conninfo_build) */
	const char *primary_slot_name; /* replica: may be NULL */
};

/* Write DATA_DIR/pgwarden.conf (mode 0600, atomically), append the
 * include line to postgresql.conf unless it is already there, and create
 * or remove standby.signal per c->replica. ERR_INVAL for a parameter that
 * is not "name=value" with a plain name; ERR_IO with errmsg otherwise. */
int pgc_conf_write(const char *data_dir, const struct pgc_conf *c,
		   char *errmsg, size_t cap);
/* pgc_conf_write for the loop thread: the same files, but the disk flush
 * of pgwarden.conf (fdatasync, then fsync of the directory) runs on loop's
 * thread pool after the rename (pgc_file_sync_async): the new content is
 * what PostgreSQL reads from the return on, and the loop never waits for
 * the disk. A machine crash before the flush completed (milliseconds) may
 * leave the old content, or on some file systems an empty file; pgctl
 * rewrites pgwarden.conf at every start of PostgreSQL, before the
 * postmaster reads it. loop NULL: pgc_conf_write. */
int pgc_conf_write_on(uv_loop_t *loop, const char *data_dir,
		      const struct pgc_conf *c, char *errmsg, size_t cap);
/* Append PGC_CONF_INCLUDE to DATA_DIR/postgresql.conf unless a line equal
 * to it is there already. */
int pgc_conf_ensure_include(const char *data_dir, char *errmsg, size_t cap);
/* Create (empty) or remove DATA_DIR/standby.signal; removing a missing
 * file is success. */
int pgc_standby_signal_set(const char *data_dir, bool present, char *errmsg,
			   size_t cap);
/* Replace DATA_DIR/pg_hba.conf with a header and the given lines
 * (NULL-terminated, borrowed), atomically. Include a local line for the
 * superuser pgwarden connects as, or the probes will fail. */
int pgc_hba_write(const char *data_dir, const char *const *lines,
		  char *errmsg, size_t cap);
/* The same with the flush on loop's thread pool (as pgc_conf_write_on). */
int pgc_hba_write_on(uv_loop_t *loop, const char *data_dir,
		     const char *const *lines, char *errmsg, size_t cap);
/* Make the file open on fd, already renamed to path, durable without the
 * caller waiting: fdatasync(fd) and an fsync of path's directory on loop's
 * thread pool; the fd is closed afterwards, on the loop. Takes fd in every
 * case. A failure of either is logged as an error (the content is in
 * place). 0; ERR_NOMEM or ERR_IO when it could not be queued: then the
 * flush was done in the calling thread (logged), fd closed. loop NULL:
 * the flush is done in the calling thread, 0. path copied.
 * The request refers to nothing of the caller's; it keeps loop alive
 * until it completes. Thread: the loop thread. */
int pgc_file_sync_async(uv_loop_t *loop, int fd, const char *path);

/* ------------------------------------------------------------------ */
/* Child processes                                                      */
/* ------------------------------------------------------------------ */

struct pgc_proc;

struct pgc_proc_opts {
	const char *file;            /* program path; borrowed */
	const char *const *argv;     /* NULL-terminated, argv[0] first;
					borrowed during pgc_proc_run */
	const char *const *env_add;  /* "NAME=value" added to (or replacing
					in) the daemon's environment;
					NULL-terminated or NULL; borrowed */
	const char *cwd;             /* NULL: the daemon's cwd; borrowed */
	const char *name;            /* for messages; NULL: basename(file) */
	const char *log_path;        /* NULL: stdout/stderr on pipes (tails
					kept); else both appended to this
					file and the tails stay empty */
	unsigned timeout_ms;         /* 0: none; else SIGTERM at the
					deadline */
	unsigned kill_grace_ms;      /* SIGKILL this long after a SIGTERM
					from the timer or pgc_proc_kill;
					0: 2000 */
	bool set_ids;                /* run as uid/gid (needs root) */
	uid_t uid;
	gid_t gid;
};

struct pgc_proc_result {
	int err;              /* 0: exit status 0; ERR_PG: other exit or a
				 signal; ERR_TIMEOUT: killed at the deadline;
				 ERR_CANCELED: killed by pgc_proc_kill */
	int64_t exit_status;  /* exit code, 0 when signalled */
	int term_signal;      /* 0 unless killed by a signal */
	const char *out;      /* last <= 4 KiB of stdout, NUL-terminated */
	size_t out_len;
	const char *errout;   /* last <= 4 KiB of stderr, NUL-terminated */
	size_t errout_len;
	const char *errmsg;   /* "" on success, else "NAME: exit 1: <last
				 stderr line>" or "NAME: killed by signal 9"
				 or "NAME: timed out after 5000 ms" */
};

/* Fires once after the process has exited and its pipes are drained (or
 * 200 ms after exit when a grandchild keeps them open). r and everything
 * in it are borrowed for the call; the proc is freed after it returns. */
typedef void (*pgc_proc_cb)(void *arg, const struct pgc_proc_result *r);

/* Spawn a program. On 0, *out (may be NULL) is the running process, valid
 * until its callback returns, and cb fires later exactly once. On failure
 * (ERR_NOMEM, ERR_NOTFOUND for a missing program, ERR_IO) nothing runs, cb
 * never fires, and errmsg (cap bytes, may be NULL) says why. */
int pgc_proc_run(uv_loop_t *loop, const struct pgc_proc_opts *o,
		 pgc_proc_cb cb, void *arg, struct pgc_proc **out,
		 char *errmsg, size_t cap);
/* The child's pid. */
pid_t pgc_proc_pid(const struct pgc_proc *p);
/* Send a signal to the running child (0 or ERR_IO; a child that already
 * exited is success). */
int pgc_proc_signal(struct pgc_proc *p, int sig);
/* SIGTERM now, SIGKILL after kill_grace_ms; the callback still fires, with
 * ERR_CANCELED. */
void pgc_proc_kill(struct pgc_proc *p);
/* Forget the process: its callback never fires; its handles close on a
 * later loop turn and the memory is freed then. The process is signalled
 * with sig first unless sig is 0 (then it keeps running, unwatched). */
void pgc_proc_abandon(struct pgc_proc *p, int sig);

/* ------------------------------------------------------------------ */
/* Asynchronous libpq                                                   */
/* ------------------------------------------------------------------ */

struct pgc_conn;

/* Result rows of a query, valid only during the callback. */
struct pgc_rows {
	int nrows;
	int ncols;
	const void *res; /* private: the PGresult */
};
/* Value at (row, col) as text; NULL for SQL NULL or out of range. */
const char *pgc_rows_value(const struct pgc_rows *r, int row, int col);
/* Column name; NULL out of range. */
const char *pgc_rows_name(const struct pgc_rows *r, int col);

/* err 0: rows is the result of the statement (nrows 0 for a command).
 * Else rows is NULL and errmsg says why ("connect: ...", "query: ERROR:
 * ...", "timed out after 2000 ms"). Fires once per pgc_conn_query. */
typedef void (*pgc_query_cb)(void *arg, int err, const char *errmsg,
			     const struct pgc_rows *rows);

/* Connection parameters, libpq keywords and values (NULL-terminated
 * parallel arrays, copied). `host` must be a unix socket directory (starts
 * with '/') or a numeric address, or `hostaddr` must be given: pgctl never
 * resolves names on the loop (resolve with uv_getaddrinfo first).
 * Use host=SOCKDIR port=PORT dbname=postgres user=... locally. */
struct pgc_conn_opts {
	const char *const *keywords;
	const char *const *values;
	const char *name; /* for logs; NULL: "conn" */
};

/* A connection object. It connects on the first query and again after
 * the connection breaks; an idle connection stays open (its socket is
 * watched so that a server restart is noticed). ERR_INVAL for a host name
 * (see above), ERR_NOMEM. */
int pgc_conn_new(uv_loop_t *loop, const struct pgc_conn_opts *o,
		 struct pgc_conn **out);
/* Same from a keyword=value connection string (parsed by libpq without
 * any network access; same host rules). ERR_INVAL for a malformed
 * string. */
int pgc_conn_new_conninfo(uv_loop_t *loop, const char *conninfo,
			  const char *name, struct pgc_conn **out);
/* Run one statement with text parameters $1..$n (params borrowed during
 * the call; sql copied). timeout_ms (> 0) bounds connect plus query; on
 * expiry the connection is dropped (the server ends the backend when it
 * notices) and cb gets ERR_TIMEOUT. ERR_UNAVAILABLE if a query is already
 * running on this connection. */
int pgc_conn_query(struct pgc_conn *c, const char *sql, int nparams,
		   const char *const *params, unsigned timeout_ms,
		   pgc_query_cb cb, void *arg);
/* Close the connection and free c once its handles have closed (a later
 * loop turn). A running query's callback never fires. NULL is a no-op. */
void pgc_conn_free(struct pgc_conn *c);

/* One row of pg_stat_replication on a primary. */
struct pgc_repl {
	char application_name[64];
	char state[16];      /* "streaming", "catchup", "startup", ... */
	char sync_state[16]; /* "async", "sync", "potential", "quorum" */
	uint64_t sent_lsn, write_lsn, flush_lsn, replay_lsn; /* 0 if NULL */
};

/* What one probe round trip found. */
struct pgc_probe {
	bool in_recovery;       /* pg_is_in_recovery() */
	uint32_t timeline;      /* primary: of the current WAL segment (right
				   after promote already the new one);
				   replica: the WAL receiver's received_tli,
				   else the latest checkpoint's */
	uint64_t system_id;     /* pg_control_system() */
	uint64_t wal_lsn;       /* primary: pg_current_wal_lsn(); else 0 */
	uint64_t receive_lsn;   /* replica: pg_last_wal_receive_lsn() (received
				   and flushed); 0 if NULL. Right after the
				   WAL receiver (re)starts it is the start of
				   the segment it streams from, behind
				   replay_lsn: take max(receive, replay) as
				   the WAL a replica has */
	uint64_t replay_lsn;    /* replica: pg_last_wal_replay_lsn() */
	uint64_t flush_lsn;     /* replica: pg_stat_wal_receiver.flushed_lsn;
				   0 without a WAL receiver */
	bool streaming;         /* WAL receiver status = 'streaming' */
	uint32_t received_tli;  /* WAL receiver received_tli, 0 if none */
	bool pending_restart;   /* any pg_settings.pending_restart */
	size_t nrepl;
	const struct pgc_repl *repl; /* nrepl rows, borrowed during the cb */
};

/* err 0: *p is filled (borrowed during the call). Else p is NULL. */
typedef void (*pgc_probe_cb)(void *arg, int err, const char *errmsg,
			     const struct pgc_probe *p);

/* Run the probe query on c (same rules as pgc_conn_query). */
int pgc_conn_probe(struct pgc_conn *c, unsigned timeout_ms, pgc_probe_cb cb,
		   void *arg);

/* ------------------------------------------------------------------ */
/* The node: one data directory and its postmaster                      */
/* ------------------------------------------------------------------ */

struct pgc_node;

/* Postmaster lifecycle (pgc_node_state). */
enum pgc_pm_state {
	PGC_PM_STOPPED = 0, /* no postmaster we know of */
	PGC_PM_STARTING,    /* spawned, not yet accepting connections */
	PGC_PM_RUNNING,     /* accepting connections (or adopted) */
	PGC_PM_STOPPING,    /* stop signal sent */
};
const char *pgc_pm_state_name(enum pgc_pm_state s);

enum pgc_stop_mode {
	PGC_STOP_SMART = 0, /* SIGTERM: wait for clients */
	PGC_STOP_FAST,      /* SIGINT: disconnect clients, checkpoint */
	PGC_STOP_IMMEDIATE, /* SIGQUIT: no checkpoint, crash recovery next */
};

/* The postmaster exited although no pgc_node_stop asked for it (crash,
 * kill -9, OOM killer). exit_status/term_signal are -1 when the postmaster
 * was adopted (not our child: its status is unknown). Fires from a libuv
 * callback; the node is PGC_PM_STOPPED when it does. */
typedef void (*pgc_exit_cb)(void *arg, int64_t exit_status, int term_signal);

/* Completion of a node operation. errmsg is "" on success; borrowed. */
typedef void (*pgc_done_cb)(void *arg, int err, const char *errmsg);

struct pgc_node_config {
	const char *name;             /* for logs; NULL: "pg" */
	const char *bin_dir;          /* /usr/lib/postgresql/15/bin */
	const char *data_dir;         /* absolute */
	const char *sock_dir;         /* absolute; the socket path must stay
					 under 107 bytes */
	const char *listen_addresses; /* NULL or "": unix socket only */
	unsigned port;
	const char *superuser;        /* role pgctl connects as; NULL:
					 "postgres" */
	const char *password;         /* for that role; may be NULL (peer or
					 trust on the socket) */
	const char *const *node_settings; /* per-node "name=value" passed as
					     -c on the postgres command line
					     (survive pg_rewind); may be
					     NULL */
	const char *log_path;         /* postmaster stdout/stderr appended
					 here; NULL: pipes, last 4 KiB kept
					 (lost when adopted later) */
	unsigned watch_ms;            /* adopted postmaster liveness poll;
					 0: 500 */
	bool set_ids;                 /* run PostgreSQL programs as uid/gid */
	uid_t uid;
	gid_t gid;
	pgc_exit_cb on_exit;          /* may be NULL */
	void *on_exit_arg;
};

/* Create a node (copies cfg). Does not look at the data directory. */
int pgc_node_new(uv_loop_t *loop, const struct pgc_node_config *cfg,
		 struct pgc_node **out);
/* Free the node once its handles have closed, then call done(arg) (may be
 * NULL) from a libuv callback. PostgreSQL is NOT stopped: a postmaster
 * keeps running and a later node for the same data directory adopts it.
 * A running operation's callback never fires; a PostgreSQL program it
 * runs (initdb, pg_basebackup, ...) gets SIGTERM. NULL is a no-op. */
void pgc_node_free(struct pgc_node *n, void (*done)(void *), void *arg);

enum pgc_pm_state pgc_node_state(const struct pgc_node *n);
/* The postmaster's pid, 0 when stopped. */
pid_t pgc_node_pid(const struct pgc_node *n);
/* True when the running postmaster was adopted (not our child). */
bool pgc_node_adopted(const struct pgc_node *n);
/* True while an operation runs. */
bool pgc_node_busy(const struct pgc_node *n);

/* If DATA_DIR/postmaster.pid names a live postgres process whose working
 * directory is the data directory (the postmaster chdirs there), watch it
 * as PGC_PM_RUNNING (liveness polled every watch_ms) and return 0.
 * ERR_NOTFOUND when there is none (a stale pid file is left for
 * PostgreSQL to handle), ERR_EXISTS when this node already runs one. */
int pgc_node_adopt(struct pgc_node *n);

/* Write pgwarden.conf, the include line and standby.signal for this role
 * now, the disk flush on the node's loop's thread pool (see
 * pgc_conf_write_on); pgc_node_start does it too. */
int pgc_node_write_conf(struct pgc_node *n, const struct pgc_conf *c);

/* ---- operations: one at a time per node (ERR_UNAVAILABLE while busy,
 * except that pgc_node_stop preempts a start/restart/demote/promote);
 * each returns 0 and fires cb once later, or fails without firing it. */

struct pgc_initdb_opts {
	const char *const *options;  /* extra initdb arguments, e.g.
					"--encoding=UTF8"; may be NULL */
	bool no_checksums;           /* data checksums are on by default */
	const char *auth_local;      /* --auth-local; NULL: "peer" */
	const char *auth_host;       /* --auth-host; NULL: "scram-sha-256" */
	const char *pwfile;          /* --pwfile for the superuser; may be
					NULL */
	unsigned timeout_ms;         /* 0: 60000 */
};
/* initdb -D DATA_DIR --username=SUPERUSER [-k] ... Fails when the
 * directory is not empty (initdb's own check). */
int pgc_node_initdb(struct pgc_node *n, const struct pgc_initdb_opts *o,
		    pgc_done_cb cb, void *arg);

struct pgc_start_opts {
	struct pgc_conf conf; /* written before the start (see
				 pgc_conf_write); strings borrowed */
	unsigned timeout_ms;  /* until it accepts connections; 0: 60000 */
};
/* Start: refuse a data directory marked by a failed pg_rewind (ERR_CORRUPT)
 * -> adopt a postmaster already running for it (then only wait) -> write
 * the configuration -> spawn `postgres -D ... -c port=... -c
 * listen_addresses=... -c unix_socket_directories=... [node_settings]`
 * -> probe until it accepts connections. ERR_TIMEOUT at the deadline (the
 * postmaster is left running: stop it if you give up); ERR_PG when it
 * exited while starting (errmsg carries its stderr tail). ERR_EXISTS if
 * this node already has a postmaster. */
int pgc_node_start(struct pgc_node *n, const struct pgc_start_opts *o,
		   pgc_done_cb cb, void *arg);

/* Stop by signal (SIGTERM/SIGINT/SIGQUIT by mode) and wait for the
 * postmaster to exit. At timeout_ms (0: 30000) a milder mode escalates to
 * immediate, and timeout_ms later to SIGKILL; then err is ERR_TIMEOUT,
 * although the postmaster is down. Stopping a stopped node succeeds (a
 * postmaster found through postmaster.pid is adopted and stopped).
 * A running start, restart, demote or promote is preempted (fencing does
 * not wait): its callback fires later with ERR_CANCELED, before or after
 * this one. Other operations make it ERR_UNAVAILABLE. */
int pgc_node_stop(struct pgc_node *n, enum pgc_stop_mode mode,
		  unsigned timeout_ms, pgc_done_cb cb, void *arg);

/* Stop (mode, timeout) then start (o). */
int pgc_node_restart(struct pgc_node *n, enum pgc_stop_mode mode,
		     unsigned stop_timeout_ms, const struct pgc_start_opts *o,
		     pgc_done_cb cb, void *arg);

/* SIGHUP to the postmaster (synchronous). ERR_UNAVAILABLE when stopped. */
int pgc_node_reload(struct pgc_node *n);

/* `pg_ctl promote -D DATA_DIR -w -t SECS`, then probe until
 * pg_is_in_recovery() is false. timeout_ms 0: 60000. */
int pgc_node_promote(struct pgc_node *n, unsigned timeout_ms, pgc_done_cb cb,
		     void *arg);

/* Demote to a replica: stop (mode, stop_timeout_ms) -> start with o (whose
 * conf.replica should be true). */
int pgc_node_demote(struct pgc_node *n, enum pgc_stop_mode mode,
		    unsigned stop_timeout_ms, const struct pgc_start_opts *o,
		    pgc_done_cb cb, void *arg);

struct pgc_basebackup_opts {
	const char *conninfo;    /* source server (replication user) */
	const char *slot;        /* -S; may be NULL */
	bool create_slot;        /* -C: create the slot on the source */
	const char *const *options; /* extra arguments; may be NULL */
	unsigned timeout_ms;     /* 0: 600000 */
};
/* pg_basebackup -D DATA_DIR -X stream --checkpoint=fast -d CONNINFO
 * [-S slot [-C]] -w (never prompts; no -R: pgctl writes the replica
 * settings at start). The data directory must be missing or empty;
 * pg_basebackup removes what it created on failure. */
int pgc_node_basebackup(struct pgc_node *n,
			const struct pgc_basebackup_opts *o, pgc_done_cb cb,
			void *arg);

/* CHECKPOINT on the source (a fresh promote's end-of-recovery checkpoint
 * may still be running, and until it ends the source's pg_control shows
 * the old timeline, so pg_rewind would find "no rewind required") ->
 * pg_rewind --target-pgdata=DATA_DIR --source-server=CONNINFO. The node
 * must be stopped (ERR_EXISTS otherwise) and not marked. A failing
 * checkpoint fails the operation and changes nothing; a failing pg_rewind
 * marks the data directory unusable (pgwarden.rewind_failed) and
 * pgc_node_start refuses it: err ERR_PG "rewind: pg_rewind: exit 1: ...".
 * conninfo needs a superuser (or pg_checkpoint plus pg_rewind's function
 * grants). timeout_ms 0: 600000. */
int pgc_node_rewind(struct pgc_node *n, const char *source_conninfo,
		    unsigned timeout_ms, pgc_done_cb cb, void *arg);

/* Result of pg_controldata: cd is NULL unless err is 0. */
typedef void (*pgc_controldata_cb)(void *arg, int err, const char *errmsg,
				   const struct pgc_controldata *cd);
/* Run pg_controldata on the data directory and parse it (not an exclusive
 * operation: allowed while another one runs). */
int pgc_node_controldata(struct pgc_node *n, pgc_controldata_cb cb,
			 void *arg);

/* `rm -rf -- DATA_DIR` in a child process (the node must be stopped). */
int pgc_node_wipe(struct pgc_node *n, pgc_done_cb cb, void *arg);

/* ---- queries on the local server (socket, superuser); not exclusive:
 * they run beside an operation. */

/* Probe the local server on the node's probe connection (kept open
 * between probes). ERR_UNAVAILABLE while a probe is already running. */
int pgc_node_probe(struct pgc_node *n, unsigned timeout_ms, pgc_probe_cb cb,
		   void *arg);
/* One statement on a fresh connection, closed afterwards. */
int pgc_node_query(struct pgc_node *n, const char *sql, int nparams,
		   const char *const *params, unsigned timeout_ms,
		   pgc_query_cb cb, void *arg);
/* Create a physical replication slot (reserving WAL now) unless it exists;
 * drop it if it exists (ERR_PG if it is in use). Fresh connection each. */
int pgc_node_slot_create(struct pgc_node *n, const char *slot,
			 unsigned timeout_ms, pgc_done_cb cb, void *arg);
int pgc_node_slot_drop(struct pgc_node *n, const char *slot,
		       unsigned timeout_ms, pgc_done_cb cb, void *arg);

/* Why the last operation failed ("" if none); owned by n. */
const char *pgc_node_errmsg(const struct pgc_node *n);

#endif
