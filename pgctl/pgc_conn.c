/* pgc_conn.c - one libpq connection driven by the loop, one query at a
 * time, and the probe built on it.
 *
 * Happy path of pgc_conn_query: [no open connection] PQconnectStartParams
 * -> uv_poll on PQsocket for what PQconnectPoll asks (the poll is stopped
 * around every PQconnectPoll call and re-created when the socket number
 * changes, because libpq may close one socket and open another while it
 * tries hosts/addresses) -> CONNECTION_OK, PQsetnonblocking ->
 * PQsendQueryParams -> PQflush (write-watch until flushed) -> on readable
 * PQconsumeInput, PQgetResult while !PQisBusy until NULL -> callback with
 * the first result's rows -> idle, socket read-watched.
 *
 * Failure paths:
 *   - PQconnectStartParams NULL / CONNECTION_BAD / PQconnectPoll FAILED:
 *     ERR_PG "connect: <libpq message>", connection dropped;
 *   - send/flush/consume failure: ERR_PG "query: <message>", dropped;
 *   - an error result: ERR_PG "query: ERROR: ..." (connection kept);
 *   - the uv_timer deadline: ERR_TIMEOUT, connection dropped (no blocking
 *     PQcancel on the loop);
 *   - poll error: ERR_IO, dropped;
 *   - idle connection readable: PQconsumeInput; if that fails (server
 *     gone) the connection is dropped and the next query reconnects;
 *   - pgc_conn_free during a query: the callback never fires.
 */
#include "pgc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "err.h"
#include "log.h"
#include "mem.h"

enum conn_state { C_IDLE, C_CONNECTING, C_QUERY };

struct pollh {
	uv_poll_t h;
	struct pgc_conn *c;
	int fd;
};

struct pgc_conn {
	uv_loop_t *loop;
	char **kw, **vals;     /* owned, NULL-terminated */
	char name[48];
	PGconn *pg;            /* NULL when not connected */
	struct pollh *poll;    /* current poll handle, NULL if none */
	int poll_events;       /* armed events, 0 = stopped */
	uv_timer_t timer;
	int open_handles;      /* timer + polls not yet closed */
	bool freeing;
	enum conn_state st;
	/* the running query */
	char *sql;             /* owned */
	char **params;         /* owned */
	int nparams;
	unsigned timeout_ms;   /* ms */
	pgc_query_cb cb;
	void *arg;
	PGresult *res;         /* first result, owned */
	char qerr[PGC_ERRMSG_MAX];
	/* probe adapter */
	pgc_probe_cb probe_cb;
	void *probe_arg;
};

static void conn_drop(struct pgc_conn *c);
static void arm(struct pgc_conn *c, int events);

/* libpq messages end with a newline and may span lines; keep one line. */
static void copy_pgmsg(char *dst, size_t cap, const char *prefix,
		       const char *m)
{
	snprintf(dst, cap, "%s%s", prefix, m ? m : "");
	for (char *p = dst; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	size_t n = strlen(dst);
	while (n && dst[n - 1] == ' ')
		dst[--n] = '\0';
}

/* Free c and its connection keywords (no handle is open any more). */
static void conn_release(struct pgc_conn *c)
{
	for (size_t i = 0; c->kw && c->kw[i]; i++) {
		mem_free(c->kw[i]);
		mem_free(c->vals[i]);
	}
	mem_free(c->kw);
	mem_free(c->vals);
	mem_free(c);
}

static void on_close(uv_handle_t *h)
{
	struct pgc_conn *c = h->data;
	if (h != (uv_handle_t *)&c->timer)
		mem_free((struct pollh *)(void *)h); /* h is the first member */
	if (--c->open_handles == 0 && c->freeing)
		conn_release(c);
}

static void poll_close(struct pgc_conn *c)
{
	if (!c->poll)
		return;
	uv_poll_stop(&c->poll->h);
	uv_close((uv_handle_t *)&c->poll->h, on_close);
	c->poll = NULL;
	c->poll_events = 0;
}

static void poll_stop(struct pgc_conn *c)
{
	if (c->poll && c->poll_events) {
		uv_poll_stop(&c->poll->h);
		c->poll_events = 0;
	}
}

static void query_clear(struct pgc_conn *c)
{
	mem_free(c->sql);
	c->sql = NULL;
	for (int i = 0; i < c->nparams; i++)
		mem_free(c->params[i]);
	mem_free(c->params);
	c->params = NULL;
	c->nparams = 0;
	if (c->res)
		PQclear(c->res);
	c->res = NULL;
}

/* Finish the running query: callback, then back to idle. */
static void query_done(struct pgc_conn *c, int err, const char *msg)
{
	uv_timer_stop(&c->timer);
	pgc_query_cb cb = c->cb;
	void *arg = c->arg;
	c->cb = NULL;
	c->st = C_IDLE;
	PGresult *res = c->res;
	c->res = NULL;
	query_clear(c);
	if (err && c->pg && PQstatus(c->pg) != CONNECTION_OK)
		conn_drop(c);
	if (c->pg)
		arm(c, UV_READABLE); /* notice a server that goes away */
	struct pgc_rows rows = {0};
	if (!err && res) {
		rows.nrows = PQntuples(res);
		rows.ncols = PQnfields(res);
		rows.res = res;
	}
	if (cb)
		cb(arg, err, err ? msg : "", err ? NULL : &rows);
	if (res)
		PQclear(res);
}

static void query_fail(struct pgc_conn *c, int err, const char *prefix,
		       const char *m)
{
	char msg[PGC_ERRMSG_MAX];
	copy_pgmsg(msg, sizeof msg, prefix, m);
	log_debug("pgc[conn=%s] %s", c->name, msg);
	conn_drop(c);
	query_done(c, err, msg);
}

static void conn_drop(struct pgc_conn *c)
{
	poll_close(c);
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watch the current PQsocket for events, creating the poll handle when
 * the socket number is new. */
static void arm(struct pgc_conn *c, int events)
{
	int fd = c->pg ? PQsocket(c->pg) : -1;
	if (fd < 0) {
		poll_close(c);
		return;
	}
	if (c->poll && c->poll->fd != fd)
		poll_close(c);
	if (!c->poll) {
		struct pollh *ph = mem_calloc(1, sizeof *ph);
		if (!ph)
			return; /* the deadline timer reports it */
		if (uv_poll_init(c->loop, &ph->h, fd) < 0) {
			mem_free(ph);
			return;
		}
		ph->c = c;
		ph->fd = fd;
		ph->h.data = c;
		c->poll = ph;
		c->open_handles++;
	}
	if (c->poll_events == events)
		return;
	c->poll_events = events;
	uv_poll_start(&c->poll->h, events, on_poll);
}

static void send_query(struct pgc_conn *c)
{
	c->st = C_QUERY;
	if (!PQsendQueryParams(c->pg, c->sql, c->nparams, NULL,
			       (const char *const *)c->params, NULL, NULL, 0)) {
		query_fail(c, ERR_PG, "query: ", PQerrorMessage(c->pg));
		return;
	}
	int f = PQflush(c->pg);
	if (f < 0) {
		query_fail(c, ERR_PG, "query: ", PQerrorMessage(c->pg));
		return;
	}
	arm(c, f ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void connect_step(struct pgc_conn *c)
{
	/* Stop watching before PQconnectPoll: it may close this socket and
	 * open another with the same number (see the top of the file). */
	poll_stop(c);
	PostgresPollingStatusType s = PQconnectPoll(c->pg);
	switch (s) {
	case PGRES_POLLING_READING:
		arm(c, UV_READABLE);
		return;
	case PGRES_POLLING_WRITING:
		arm(c, UV_WRITABLE);
		return;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(c->pg, 1) != 0) {
			query_fail(c, ERR_PG, "connect: ",
				   PQerrorMessage(c->pg));
			return;
		}
		log_debug("pgc[conn=%s] connected", c->name);
		send_query(c);
		return;
	case PGRES_POLLING_FAILED:
	case PGRES_POLLING_ACTIVE:
	default:
		query_fail(c, ERR_PG, "connect: ", PQerrorMessage(c->pg));
		return;
	}
}

static void read_results(struct pgc_conn *c)
{
	if (!PQconsumeInput(c->pg)) {
		query_fail(c, ERR_PG, "query: ", PQerrorMessage(c->pg));
		return;
	}
	while (!PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (!r) {
			if (c->qerr[0]) {
				char msg[PGC_ERRMSG_MAX];
				snprintf(msg, sizeof msg, "%s", c->qerr);
				query_done(c, ERR_PG, msg);
			} else {
				query_done(c, 0, "");
			}
			return;
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			if (!c->res && !c->qerr[0]) {
				c->res = r;
				continue;
			}
		} else if (!c->qerr[0]) {
			copy_pgmsg(c->qerr, sizeof c->qerr, "query: ",
				   PQresultErrorMessage(r));
		}
		PQclear(r);
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct pgc_conn *c = h->data;
	if (c->freeing)
		return;
	if (status < 0) {
		if (c->st == C_IDLE) {
			conn_drop(c);
			return;
		}
		query_fail(c, ERR_IO, "poll: ", uv_strerror(status));
		return;
	}
	switch (c->st) {
	case C_CONNECTING:
		connect_step(c);
		return;
	case C_IDLE:
		/* Idle: a notice, or the server closing the connection. */
		if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK) {
			log_debug("pgc[conn=%s] closed by server", c->name);
			conn_drop(c);
			return;
		}
		while (!PQisBusy(c->pg)) {
			PGresult *r = PQgetResult(c->pg);
			if (!r)
				break;
			PQclear(r);
		}
		return;
	case C_QUERY:
		if (events & UV_WRITABLE) {
			int f = PQflush(c->pg);
			if (f < 0) {
				query_fail(c, ERR_PG, "query: ",
					   PQerrorMessage(c->pg));
				return;
			}
			if (f == 0)
				arm(c, UV_READABLE);
		}
		if (events & UV_READABLE)
			read_results(c);
		return;
	}
}

static void on_timeout(uv_timer_t *t)
{
	struct pgc_conn *c = t->data;
	char msg[96];
	snprintf(msg, sizeof msg, "%s timed out after %u ms",
		 c->st == C_CONNECTING ? "connect" : "query", c->timeout_ms);
	log_debug("pgc[conn=%s] %s", c->name, msg);
	conn_drop(c);
	query_done(c, ERR_TIMEOUT, msg);
}

static void on_notice(void *arg, const char *message)
{
	struct pgc_conn *c = arg;
	char msg[PGC_ERRMSG_MAX];
	copy_pgmsg(msg, sizeof msg, "", message);
	log_debug("pgc[conn=%s] notice: %s", c->name, msg);
}

/* The first step of a query runs from this zero-delay timer callback so
 * that no callback ever fires before pgc_conn_query returns. */
static void on_kickoff(uv_timer_t *t)
{
	struct pgc_conn *c = t->data;
	uv_timer_start(&c->timer, on_timeout, c->timeout_ms, 0);
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK) {
		/* Drain anything that arrived while idle first. */
		if (!PQconsumeInput(c->pg))
			conn_drop(c);
	} else if (c->pg) {
		conn_drop(c);
	}
	if (c->pg) {
		send_query(c);
		return;
	}
	c->st = C_CONNECTING;
	c->pg = PQconnectStartParams((const char *const *)c->kw,
				     (const char *const *)c->vals, 0);
	if (!c->pg) {
		query_done(c, ERR_NOMEM, "connect: out of memory");
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		query_fail(c, ERR_PG, "connect: ", PQerrorMessage(c->pg));
		return;
	}
	/* libpq prints notices (and "terminating connection" FATALs on an
	 * idle connection) to stderr by default: log them instead. */
	PQsetNoticeProcessor(c->pg, on_notice, c);
	/* As if PQconnectPoll had returned PGRES_POLLING_WRITING. */
	arm(c, UV_WRITABLE);
}

static bool numeric_host(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, h, buf) == 1 ||
	       inet_pton(AF_INET6, h, buf) == 1;
}

int pgc_conn_new(uv_loop_t *loop, const struct pgc_conn_opts *o,
		 struct pgc_conn **out)
{
	size_t n = 0;
	bool has_hostaddr = false;
	const char *host = NULL;
	while (o->keywords && o->keywords[n]) {
		if (strcmp(o->keywords[n], "hostaddr") == 0 && o->values[n] &&
		    *o->values[n])
			has_hostaddr = true;
		if (strcmp(o->keywords[n], "host") == 0)
			host = o->values[n];
		n++;
	}
	if (!has_hostaddr && host && *host) {
		/* Every comma-separated host must be a path or numeric. */
		char tmp[1024];
		snprintf(tmp, sizeof tmp, "%s", host);
		char *save = NULL;
		for (char *h = strtok_r(tmp, ",", &save); h;
		     h = strtok_r(NULL, ",", &save))
			if (h[0] != '/' && h[0] != '@' && !numeric_host(h))
				return ERR_INVAL;
	}
	struct pgc_conn *c = mem_calloc(1, sizeof *c);
	if (!c)
		return ERR_NOMEM;
	c->loop = loop;
	snprintf(c->name, sizeof c->name, "%s", o->name ? o->name : "conn");
	c->kw = mem_calloc(n + 1, sizeof *c->kw);
	c->vals = mem_calloc(n + 1, sizeof *c->vals);
	if (!c->kw || !c->vals)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		c->kw[i] = mem_strdup(o->keywords[i]);
		c->vals[i] = mem_strdup(o->values[i] ? o->values[i] : "");
		if (!c->kw[i] || !c->vals[i]) {
			mem_free(c->kw[i]);
			mem_free(c->vals[i]);
			c->kw[i] = c->vals[i] = NULL;
			goto nomem;
		}
	}
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->open_handles = 1;
	*out = c;
	return 0;
nomem:
	conn_release(c);
	return ERR_NOMEM;
}

int pgc_conn_new_conninfo(uv_loop_t *loop, const char *conninfo,
			  const char *name, struct pgc_conn **out)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	if (!opts) {
		int rc = err ? ERR_INVAL : ERR_NOMEM;
		PQfreemem(err);
		return rc;
	}
	size_t n = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val)
			n++;
	const char **kw = mem_calloc(n + 1, sizeof *kw);
	const char **val = mem_calloc(n + 1, sizeof *val);
	int rc = ERR_NOMEM;
	if (kw && val) {
		size_t i = 0;
		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (o->val) {
				kw[i] = o->keyword;
				val[i++] = o->val;
			}
		struct pgc_conn_opts co = {.keywords = kw, .values = val,
					   .name = name};
		rc = pgc_conn_new(loop, &co, out);
	}
	mem_free(kw);
	mem_free(val);
	PQconninfoFree(opts);
	return rc;
}

int pgc_conn_query(struct pgc_conn *c, const char *sql, int nparams,
		   const char *const *params, unsigned timeout_ms,
		   pgc_query_cb cb, void *arg)
{
	if (c->freeing || !sql || nparams < 0 || timeout_ms == 0)
		return ERR_INVAL;
	if (c->cb || c->st != C_IDLE)
		return ERR_UNAVAILABLE;
	c->sql = mem_strdup(sql);
	if (!c->sql)
		return ERR_NOMEM;
	if (nparams) {
		c->params = mem_calloc((size_t)nparams, sizeof *c->params);
		if (!c->params) {
			query_clear(c);
			return ERR_NOMEM;
		}
		c->nparams = nparams;
		for (int i = 0; i < nparams; i++) {
			if (params[i] && !(c->params[i] =
						   mem_strdup(params[i]))) {
				query_clear(c);
				return ERR_NOMEM;
			}
		}
	}
	c->cb = cb;
	c->arg = arg;
	c->timeout_ms = timeout_ms;
	c->qerr[0] = '\0';
	uv_timer_start(&c->timer, on_kickoff, 0, 0);
	return 0;
}

void pgc_conn_free(struct pgc_conn *c)
{
	if (!c || c->freeing)
		return;
	c->freeing = true;
	c->cb = NULL;
	query_clear(c);
	conn_drop(c);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_close);
}

const char *pgc_rows_value(const struct pgc_rows *r, int row, int col)
{
	if (!r || !r->res || row < 0 || col < 0 || row >= r->nrows ||
	    col >= r->ncols)
		return NULL;
	const PGresult *res = r->res;
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

const char *pgc_rows_name(const struct pgc_rows *r, int col)
{
	if (!r || !r->res || col < 0 || col >= r->ncols)
		return NULL;
	return PQfname(r->res, col);
}

/* ------------------------------------------------------------------ */
/* Probe                                                                */
/* ------------------------------------------------------------------ */

/* One round trip: the scalars repeat on every row; one row per
 * pg_stat_replication entry (or one row of NULLs for none). On a primary
 * the timeline comes from the current WAL segment name, right after a
 * promotion already the new one (pg_control_checkpoint() only changes at
 * the next checkpoint). */
static const char probe_sql[] =
	"SELECT pg_is_in_recovery(),"
	" CASE WHEN pg_is_in_recovery() THEN NULL ELSE"
	"  ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))"
	"  ::bit(32)::int END,"
	" (SELECT timeline_id FROM pg_control_checkpoint()),"
	" (SELECT system_identifier FROM pg_control_system()),"
	" CASE WHEN pg_is_in_recovery() THEN NULL"
	"  ELSE pg_current_wal_lsn() END,"
	" pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),"
	" w.status, w.received_tli, w.flushed_lsn,"
	" (SELECT coalesce(bool_or(pending_restart), false)"
	"  FROM pg_settings),"
	" r.application_name, r.state, r.sync_state,"
	" r.sent_lsn, r.write_lsn, r.flush_lsn, r.replay_lsn"
	" FROM (SELECT 1) AS one"
	" LEFT JOIN pg_stat_wal_receiver w ON true"
	" LEFT JOIN pg_stat_replication r ON true";

enum {
	P_REC, P_WALTLI, P_CKPTTLI, P_SYSID, P_WALLSN, P_RECV, P_REPLAY,
	P_WSTATUS, P_WTLI, P_WFLUSH, P_PENDING, P_APP, P_STATE, P_SYNC,
	P_SENT, P_WRITE, P_FLUSH, P_REPLAYR, P_NCOLS
};

static uint64_t lsn_or0(const struct pgc_rows *r, int row, int col)
{
	uint64_t v = 0;
	const char *s = pgc_rows_value(r, row, col);
	if (s)
		(void)pgc_lsn_parse(s, &v);
	return v;
}

static uint32_t u32_or0(const struct pgc_rows *r, int row, int col)
{
	const char *s = pgc_rows_value(r, row, col);
	if (!s)
		return 0;
	long long v = strtoll(s, NULL, 10);
	return v > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
}

static void copy_col(char *dst, size_t cap, const struct pgc_rows *r,
		     int row, int col)
{
	const char *s = pgc_rows_value(r, row, col);
	snprintf(dst, cap, "%s", s ? s : "");
}

static void on_probe_rows(void *arg, int err, const char *errmsg,
			  const struct pgc_rows *rows)
{
	struct pgc_conn *c = arg;
	pgc_probe_cb cb = c->probe_cb;
	void *parg = c->probe_arg;
	c->probe_cb = NULL;
	if (err) {
		cb(parg, err, errmsg, NULL);
		return;
	}
	if (rows->nrows < 1 || rows->ncols != P_NCOLS) {
		cb(parg, ERR_PG, "probe: unexpected result shape", NULL);
		return;
	}
	struct pgc_probe p = {0};
	const char *rec = pgc_rows_value(rows, 0, P_REC);
	p.in_recovery = rec && rec[0] == 't';
	const char *sysid = pgc_rows_value(rows, 0, P_SYSID);
	p.system_id = sysid ? (uint64_t)strtoull(sysid, NULL, 10) : 0;
	p.wal_lsn = lsn_or0(rows, 0, P_WALLSN);
	p.receive_lsn = lsn_or0(rows, 0, P_RECV);
	p.replay_lsn = lsn_or0(rows, 0, P_REPLAY);
	p.flush_lsn = lsn_or0(rows, 0, P_WFLUSH);
	const char *ws = pgc_rows_value(rows, 0, P_WSTATUS);
	p.streaming = ws && strcmp(ws, "streaming") == 0;
	p.received_tli = u32_or0(rows, 0, P_WTLI);
	const char *pend = pgc_rows_value(rows, 0, P_PENDING);
	p.pending_restart = pend && pend[0] == 't';
	if (!p.in_recovery)
		p.timeline = u32_or0(rows, 0, P_WALTLI);
	else if (p.received_tli)
		p.timeline = p.received_tli;
	if (!p.timeline)
		p.timeline = u32_or0(rows, 0, P_CKPTTLI);

	struct pgc_repl *repl = NULL;
	size_t nrepl = 0;
	if (pgc_rows_value(rows, 0, P_APP) || pgc_rows_value(rows, 0, P_STATE)) {
		repl = mem_calloc((size_t)rows->nrows, sizeof *repl);
		if (!repl) {
			cb(parg, ERR_NOMEM, "probe: out of memory", NULL);
			return;
		}
		for (int i = 0; i < rows->nrows; i++) {
			struct pgc_repl *x = &repl[nrepl++];
			copy_col(x->application_name,
				 sizeof x->application_name, rows, i, P_APP);
			copy_col(x->state, sizeof x->state, rows, i, P_STATE);
			copy_col(x->sync_state, sizeof x->sync_state, rows, i,
				 P_SYNC);
			x->sent_lsn = lsn_or0(rows, i, P_SENT);
			x->write_lsn = lsn_or0(rows, i, P_WRITE);
			x->flush_lsn = lsn_or0(rows, i, P_FLUSH);
			x->replay_lsn = lsn_or0(rows, i, P_REPLAYR);
		}
	}
	p.nrepl = nrepl;
	p.repl = repl;
	cb(parg, 0, "", &p);
	mem_free(repl);
}

int pgc_conn_probe(struct pgc_conn *c, unsigned timeout_ms, pgc_probe_cb cb,
		   void *arg)
{
	if (c->probe_cb)
		return ERR_UNAVAILABLE;
	int rc = pgc_conn_query(c, probe_sql, 0, NULL, timeout_ms,
				on_probe_rows, c);
	if (rc == 0) {
		c->probe_cb = cb;
		c->probe_arg = arg;
	}
	return rc;
}
