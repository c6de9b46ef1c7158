/* test_agent.c - the agent's life cycle (src/ha/ha_fsm.c) and its flows
 * (src/ha/ha_agent.c) against a fake PostgreSQL control and store.
 *
 * The table: every state is reachable from init; every state but the
 * terminal shutdown has a way out; no two rows say the same or contradict
 * each other; every step is bound to a function and reachable; every end
 * a flow can reach is a row of the table. The flows: each row is run
 * through ha_agent_io (tests/unit/agent's fake records the calls and
 * completes them with success or failure) and must land where the life
 * cycle documented at the top of ha_fsm.c says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "err.h"
#include "ha/ha_agent.h"
#include "ha/ha_agent_io.h"
#include "ha/ha_fsm.h"
#include "log.h"
#include "mem.h"

#define S(x) HA_FSM_##x
#define FL(x) HA_FLOW_##x

/* ------------------------------------------------------------------ */
/* The table                                                            */
/* ------------------------------------------------------------------ */

static bool terminal(enum ha_fsm_state s)
{
	return s == S(SHUTDOWN);
}

static void test_every_state_reachable_from_init(void **state)
{
	(void)state;
	bool seen[HA_FSM__N] = { false };
	seen[S(INIT)] = true;
	/* fixed point: at most one new state per round */
	for (int round = 0; round < HA_FSM__N; round++)
		for (size_t i = 0; i < ha_fsm_nrows; i++)
			for (int s = 0; s < HA_FSM__N; s++)
				if (seen[s] &&
				    ha_fsm_row_from(&ha_fsm_rows[i],
						    (enum ha_fsm_state)s))
					seen[ha_fsm_rows[i].to] = true;
	for (int s = 0; s < HA_FSM__N; s++) {
		if (!seen[s])
			fail_msg("state %s is not reachable from init",
				 ha_fsm_state_name((enum ha_fsm_state)s));
	}
}

static void test_every_state_has_a_way_out(void **state)
{
	(void)state;
	for (int s = 0; s < HA_FSM__N; s++) {
		bool out = false;
		for (size_t i = 0; i < ha_fsm_nrows; i++)
			if (ha_fsm_row_from(&ha_fsm_rows[i],
					    (enum ha_fsm_state)s) &&
			    ha_fsm_rows[i].to != (enum ha_fsm_state)s)
				out = true;
		if (terminal((enum ha_fsm_state)s)) {
			if (out)
				fail_msg("terminal state %s has a row out",
					 ha_fsm_state_name(
						 (enum ha_fsm_state)s));
		} else if (!out) {
			fail_msg("state %s has no way out",
				 ha_fsm_state_name((enum ha_fsm_state)s));
		}
	}
	/* refused is terminal for PostgreSQL: only the daemon's stop
	 * leaves it */
	for (size_t i = 0; i < ha_fsm_nrows; i++)
		if (ha_fsm_row_from(&ha_fsm_rows[i], S(REFUSED)))
			assert_int_equal(ha_fsm_rows[i].to, S(SHUTDOWN));
}

/* What observation shows is a fact: every change between observable
 * states (and the first look from init) is a row, so that agent_move never
 * records one the table does not explain. */
static void test_every_observation_is_a_row(void **state)
{
	(void)state;
	for (int from = 0; from < HA_FSM__N; from++)
		for (int to = 0; to < HA_FSM__N; to++) {
			if (from == to || !ha_fsm_observable((enum ha_fsm_state)to) ||
			    !(from == S(INIT) ||
			      ha_fsm_observable((enum ha_fsm_state)from)))
				continue;
			if (!ha_fsm_observed((enum ha_fsm_state)from,
					     (enum ha_fsm_state)to))
				fail_msg("no observed row %s -> %s",
					 ha_fsm_state_name((enum ha_fsm_state)from),
					 ha_fsm_state_name((enum ha_fsm_state)to));
		}
	/* and none leaves a terminal state */
	for (int to = 0; to < HA_FSM__N; to++) {
		assert_null(ha_fsm_observed(S(REFUSED), (enum ha_fsm_state)to));
		assert_null(ha_fsm_observed(S(SHUTDOWN), (enum ha_fsm_state)to));
	}
}

static bool overlap(const struct ha_fsm_row *a, const struct ha_fsm_row *b)
{
	for (int s = 0; s < HA_FSM__N; s++)
		if (ha_fsm_row_from(a, (enum ha_fsm_state)s) &&
		    ha_fsm_row_from(b, (enum ha_fsm_state)s))
			return true;
	return false;
}

static void test_no_duplicate_or_contradictory_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < ha_fsm_nrows; i++) {
		const struct ha_fsm_row *a = &ha_fsm_rows[i];
		assert_non_null(a->why);
		assert_true(strlen(a->why) > 0 && strlen(a->why) <= 70);
		assert_true(a->to < HA_FSM__N); /* a goal is one state */
		for (size_t j = i + 1; j < ha_fsm_nrows; j++) {
			const struct ha_fsm_row *b = &ha_fsm_rows[j];
			/* same move by the same flow from a common state:
			 * either a duplicate or two entries that contradict */
			if (a->flow == b->flow && a->to == b->to && overlap(a, b))
				fail_msg("rows %zu and %zu: %s -> %s by %s twice",
					 i, j, ha_fsm_state_name(a->from),
					 ha_fsm_state_name(a->to),
					 ha_flow_name(a->flow));
		}
		/* rows of one flow from one state agree on where it starts */
		for (size_t j = 0; j < ha_fsm_nrows; j++) {
			const struct ha_fsm_row *b = &ha_fsm_rows[j];
			if (i != j && a->flow == b->flow &&
			    a->flow != FL(NONE) && a->from == b->from)
				assert_int_equal(a->entry, b->entry);
		}
	}
}

/* Walk flow f's steps from `from` (entry e) and check every end. */
static void check_ends(const struct ha_fsm_row *r, bool *reached)
{
	enum ha_step todo[HA_STEP__N];
	bool queued[HA_STEP__N] = { false };
	size_t n = 0;
	todo[n++] = r->entry;
	queued[r->entry] = true;
	bool goal = false;
	while (n > 0) {
		enum ha_step s = todo[--n];
		const struct ha_step_def *d = ha_flow_step(r->flow, s);
		if (!d)
			fail_msg("flow %s: step %d not in the flow",
				 ha_flow_name(r->flow), (int)s);
		reached[s] = true;
		if (!ha_agent_step_bound(s))
			fail_msg("step %s has no function", d->name);
		const struct ha_next *nx[2] = { &d->ok, &d->err };
		for (int k = 0; k < 2; k++) {
			switch (nx[k]->kind) {
			case HA_NEXT_STEP:
				if (!ha_flow_step(r->flow, nx[k]->step))
					fail_msg("%s: next step outside flow "
						 "%s",
						 d->name,
						 ha_flow_name(r->flow));
				if (!queued[nx[k]->step]) {
					queued[nx[k]->step] = true;
					todo[n++] = nx[k]->step;
				}
				break;
			case HA_NEXT_GOAL:
				goal = true;
				break;
			case HA_NEXT_AT:
			case HA_NEXT_FAIL_AT:
				if (!ha_fsm_find(r->from, nx[k]->state,
						 r->flow))
					fail_msg("flow %s from %s can end in "
						 "%s: no such row",
						 ha_flow_name(r->flow),
						 ha_fsm_state_name(r->from),
						 ha_fsm_state_name(
							 nx[k]->state));
				break;
			case HA_NEXT_FAIL:
				break;
			}
		}
	}
	if (!goal)
		fail_msg("flow %s never reaches its goal",
			 ha_flow_name(r->flow));
}

static void test_flows_are_closed(void **state)
{
	(void)state;
	bool reached[HA_STEP__N] = { false };
	bool has_row[HA_FLOW__N] = { false };
	for (size_t i = 0; i < ha_fsm_nrows; i++) {
		const struct ha_fsm_row *r = &ha_fsm_rows[i];
		has_row[r->flow] = true;
		if (r->flow == FL(NONE)) {
			/* an observation is of what PostgreSQL can show */
			assert_true(ha_fsm_observable(r->to));
			assert_int_equal(r->entry, HA_STEP_NONE);
			continue;
		}
		check_ends(r, reached);
	}
	for (int f = 1; f < HA_FLOW__N; f++) {
		if (!has_row[f])
			fail_msg("flow %s has no row",
				 ha_flow_name((enum ha_flow)f));
		const struct ha_flow_def *d = ha_flow_get((enum ha_flow)f);
		for (size_t i = 0; i < d->nsteps; i++)
			if (!reached[d->steps[i].id])
				fail_msg("step %s of %s is never reached",
					 d->steps[i].name, d->name);
	}
	/* every step id belongs to exactly one flow */
	for (int s = 1; s < HA_STEP__N; s++) {
		int in = 0;
		for (int f = 1; f < HA_FLOW__N; f++)
			in += ha_flow_step((enum ha_flow)f, (enum ha_step)s) !=
			      NULL;
		assert_int_equal(in, 1);
	}
}

static void test_print(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	ha_fsm_print(f, false);
	fclose(f);
	for (size_t i = 0; i < ha_fsm_nrows; i++)
		assert_non_null(strstr(buf, ha_fsm_rows[i].why));
	for (int fl = 1; fl < HA_FLOW__N; fl++) {
		const struct ha_flow_def *d = ha_flow_get((enum ha_flow)fl);
		for (size_t i = 0; i < d->nsteps; i++)
			assert_non_null(strstr(buf, d->steps[i].does));
	}
	free(buf);

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	ha_fsm_print(f, true);
	fclose(f);
	assert_memory_equal(buf, "digraph ", 8);
	size_t edges = 0;
	for (const char *p = strstr(buf, " -> "); p; p = strstr(p + 1, " -> "))
		edges++;
	assert_int_equal(edges, ha_fsm_nrows);
	assert_non_null(strstr(buf, "primary -> replica [label=\"rejoin\"]"));
	assert_string_equal(buf + len - 2, "}\n");
	free(buf);
}

/* docs/architecture.md shows the table as `pgwarden fsm` prints it. */
static void test_docs_show_the_table(void **state)
{
	(void)state;
	const char *src = getenv("PGW_SRCDIR");
	assert_non_null(src);
	char path[4096];
	snprintf(path, sizeof path, "%s/docs/architecture.md", src);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char doc[1 << 20];
	size_t n = fread(doc, 1, sizeof doc - 1, f);
	fclose(f);
	doc[n] = '\0';
	const char *begin_mark = "<!-- pgwarden fsm: begin -->\n```\n";
	char *b = strstr(doc, begin_mark);
	assert_non_null(b);
	b += strlen(begin_mark);
	char *e = strstr(b, "```\n<!-- pgwarden fsm: end -->");
	assert_non_null(e);
	*e = '\0';
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	assert_non_null(m);
	ha_fsm_print(m, false);
	fclose(m);
	if (strcmp(b, buf) != 0)
		fail_msg("docs/architecture.md differs from `pgwarden fsm`: "
			 "paste its output between the fsm markers");
	free(buf);
}

/* ------------------------------------------------------------------ */
/* The fake PostgreSQL control and store                                */
/* ------------------------------------------------------------------ */

enum pend { P_NONE, P_DONE, P_CD, P_QUERY };

static struct fake {
	enum pgc_pm_state pm;
	int next_rv;              /* returned by the next operation */
	char calls[64][24];
	int ncalls;
	enum pend pend;
	pgc_done_cb done_cb;
	pgc_controldata_cb cd_cb;
	pgc_query_cb q_cb;
	void *arg;
	bool start_replica;       /* last start */
	char start_conninfo[1024];
	char rewind_conninfo[1024];
	char bb_conninfo[1024];
	struct pgc_controldata cd; /* what pg_controldata answers */
	/* store: commands queued until flush_store */
	struct sub {
		enum rs_op op;
		char key[256];
		char value[256];
		bool create_only;
		kv_cb cb;
		void *arg;
		bool answered;
	} sub[128];
	int nsub;
	int store_code;           /* rs_result.code for PUTs */
	/* what the local copy of the store holds (range answers it) */
	struct kvent {
		char key[256];
		char value[1024];
		uint64_t lease;
	} kv[16];
	int nkv;
	pgc_probe_cb probe_cb;    /* a probe in flight */
	void *probe_arg;
} F;

static void store_set(const char *leaf, const char *value)
{
	assert_true(F.nkv < 16);
	snprintf(F.kv[F.nkv].key, sizeof F.kv[0].key, "/service/c1/%s", leaf);
	snprintf(F.kv[F.nkv].value, sizeof F.kv[0].value, "%s", value);
	F.kv[F.nkv].lease = 0;
	F.nkv++;
}

/* Change a key the store holds (it must be there). */
static void store_change(const char *leaf, const char *value, uint64_t lease)
{
	char key[256];
	snprintf(key, sizeof key, "/service/c1/%s", leaf);
	for (int i = 0; i < F.nkv; i++)
		if (strcmp(F.kv[i].key, key) == 0) {
			snprintf(F.kv[i].value, sizeof F.kv[0].value, "%s",
				 value);
			F.kv[i].lease = lease;
			return;
		}
	fail_msg("no key %s", key);
}

static void called(const char *what)
{
	assert_true(F.ncalls < 64);
	snprintf(F.calls[F.ncalls++], sizeof F.calls[0], "%s", what);
}

/* "a,b,c": the PostgreSQL operations called so far, in order */
static const char *calls(void)
{
	static char buf[64 * 25];
	buf[0] = '\0';
	for (int i = 0; i < F.ncalls; i++) {
		strcat(buf, i ? "," : "");
		strcat(buf, F.calls[i]);
	}
	return buf;
}

static int op_rv(void)
{
	int rv = F.next_rv;
	F.next_rv = 0;
	return rv;
}

static int pend_done(const char *what, pgc_done_cb cb, void *arg)
{
	called(what);
	int rv = op_rv();
	if (rv != 0)
		return rv;
	assert_int_equal(F.pend, P_NONE); /* one operation at a time */
	F.pend = P_DONE;
	F.done_cb = cb;
	F.arg = arg;
	return 0;
}

static enum pgc_pm_state f_state(const struct pgc_node *n)
{
	(void)n;
	return F.pm;
}
static pid_t f_pid(const struct pgc_node *n)
{
	(void)n;
	return 0; /* nothing to signal */
}
static bool f_busy(const struct pgc_node *n)
{
	(void)n;
	return F.pend == P_DONE;
}
static const char *f_errmsg(const struct pgc_node *n)
{
	(void)n;
	return "fake error";
}
static int f_write_conf(struct pgc_node *n, const struct pgc_conf *c)
{
	(void)n;
	called("write_conf");
	snprintf(F.start_conninfo, sizeof F.start_conninfo, "%s",
		 c->primary_conninfo ? c->primary_conninfo : "");
	return op_rv();
}
static int f_reload(struct pgc_node *n)
{
	(void)n;
	called("reload");
	return 0;
}
static int f_initdb(struct pgc_node *n, const struct pgc_initdb_opts *o,
		    pgc_done_cb cb, void *arg)
{
	(void)n;
	(void)o;
	return pend_done("initdb", cb, arg);
}
static int f_start(struct pgc_node *n, const struct pgc_start_opts *o,
		   pgc_done_cb cb, void *arg)
{
	(void)n;
	F.start_replica = o->conf.replica;
	snprintf(F.start_conninfo, sizeof F.start_conninfo, "%s",
		 o->conf.primary_conninfo ? o->conf.primary_conninfo : "");
	return pend_done(o->conf.replica ? "start_replica" : "start_primary",
			 cb, arg);
}
static int f_stop(struct pgc_node *n, enum pgc_stop_mode mode,
		  unsigned timeout_ms, pgc_done_cb cb, void *arg)
{
	(void)n;
	(void)timeout_ms;
	assert_int_equal(mode, PGC_STOP_FAST);
	return pend_done("stop", cb, arg);
}
static int f_promote(struct pgc_node *n, unsigned timeout_ms, pgc_done_cb cb,
		     void *arg)
{
	(void)n;
	(void)timeout_ms;
	return pend_done("promote", cb, arg);
}
static int f_basebackup(struct pgc_node *n,
			const struct pgc_basebackup_opts *o, pgc_done_cb cb,
			void *arg)
{
	(void)n;
	snprintf(F.bb_conninfo, sizeof F.bb_conninfo, "%s", o->conninfo);
	return pend_done("basebackup", cb, arg);
}
static int f_rewind(struct pgc_node *n, const char *src, unsigned timeout_ms,
		    pgc_done_cb cb, void *arg)
{
	(void)n;
	(void)timeout_ms;
	snprintf(F.rewind_conninfo, sizeof F.rewind_conninfo, "%s", src);
	return pend_done("rewind", cb, arg);
}
static int f_wipe(struct pgc_node *n, pgc_done_cb cb, void *arg)
{
	(void)n;
	return pend_done("wipe", cb, arg);
}
static int f_controldata(struct pgc_node *n, pgc_controldata_cb cb,
			 void *arg)
{
	(void)n;
	called("controldata");
	int rv = op_rv();
	if (rv != 0)
		return rv;
	assert_int_equal(F.pend, P_NONE);
	F.pend = P_CD;
	F.cd_cb = cb;
	F.arg = arg;
	return 0;
}
static int f_probe(struct pgc_node *n, unsigned timeout_ms, pgc_probe_cb cb,
		   void *arg)
{
	(void)n;
	(void)timeout_ms;
	if (F.probe_cb)
		return ERR_UNAVAILABLE;
	F.probe_cb = cb;
	F.probe_arg = arg;
	return 0;
}

/* Answer the probe in flight: PostgreSQL runs, in recovery or not. */
static void probe_answer(bool in_recovery, uint64_t sysid)
{
	assert_non_null(F.probe_cb);
	struct pgc_probe p = { .in_recovery = in_recovery,
			       .system_id = sysid,
			       .timeline = 1,
			       .streaming = in_recovery };
	pgc_probe_cb cb = F.probe_cb;
	F.probe_cb = NULL;
	cb(F.probe_arg, 0, "", &p);
}
static int f_query(struct pgc_node *n, const char *sql, int nparams,
		   const char *const *params, unsigned timeout_ms,
		   pgc_query_cb cb, void *arg)
{
	(void)n;
	(void)sql;
	(void)nparams;
	(void)params;
	(void)timeout_ms;
	called("query");
	int rv = op_rv();
	if (rv != 0)
		return rv;
	assert_int_equal(F.pend, P_NONE);
	F.pend = P_QUERY;
	F.q_cb = cb;
	F.arg = arg;
	return 0;
}
static int f_submit(struct kv *k, const struct rs_cmd *c, unsigned timeout_ms,
		    kv_cb cb, void *arg)
{
	(void)k;
	(void)timeout_ms;
	assert_true(F.nsub < 128);
	struct sub *s = &F.sub[F.nsub++];
	memset(s, 0, sizeof *s);
	s->op = c->op;
	snprintf(s->key, sizeof s->key, "%.*s", (int)c->key.len,
		 c->key.len ? c->key.p : "");
	snprintf(s->value, sizeof s->value, "%.*s", (int)c->value.len,
		 c->value.len ? c->value.p : "");
	s->create_only = (c->flags & RS_CMD_HAS_PREV) && c->prev_rev == 0;
	s->cb = cb;
	s->arg = arg;
	return 0;
}
static int f_range(struct rs_store *st, const char *key, size_t key_len,
		   bool prefix, size_t limit, struct rs_kv **kvs, size_t *n,
		   uint64_t *revision)
{
	(void)st;
	*kvs = NULL;
	*n = 0;
	*revision = 1;
	struct rs_kv *out = mem_calloc(16, sizeof *out);
	assert_non_null(out);
	size_t k = 0;
	for (int i = 0; i < F.nkv && (limit == 0 || k < limit); i++) {
		size_t kl = strlen(F.kv[i].key);
		if (prefix ? strncmp(F.kv[i].key, key, key_len) != 0
			   : kl != key_len || memcmp(F.kv[i].key, key, kl) != 0)
			continue;
		out[k].key = mem_strdup(F.kv[i].key);
		out[k].value = mem_strdup(F.kv[i].value);
		out[k].value_len = strlen(F.kv[i].value);
		out[k].mod_rev = 3;
		out[k].lease = F.kv[i].lease;
		k++;
	}
	*kvs = out;
	*n = k;
	return 0;
}

static const struct ha_agent_io fake_io = {
	.state = f_state,
	.pid = f_pid,
	.busy = f_busy,
	.errmsg = f_errmsg,
	.write_conf = f_write_conf,
	.reload = f_reload,
	.initdb = f_initdb,
	.start = f_start,
	.stop = f_stop,
	.promote = f_promote,
	.basebackup = f_basebackup,
	.rewind = f_rewind,
	.wipe = f_wipe,
	.controldata = f_controldata,
	.probe = f_probe,
	.query = f_query,
	.submit = f_submit,
	.range = f_range,
};

/* Complete the operation in flight: err 0 succeeds. */
static void complete(int err)
{
	enum pend p = F.pend;
	F.pend = P_NONE;
	switch (p) {
	case P_DONE:
		if (err == 0 && strcmp(F.calls[F.ncalls - 1], "stop") == 0)
			F.pm = PGC_PM_STOPPED;
		if (err == 0 && strncmp(F.calls[F.ncalls - 1], "start", 5) == 0)
			F.pm = PGC_PM_RUNNING;
		F.done_cb(F.arg, err, err ? "operation failed" : "");
		break;
	case P_CD:
		F.cd_cb(F.arg, err, err ? "pg_controldata failed" : "",
			err ? NULL : &F.cd);
		break;
	case P_QUERY:
		F.q_cb(F.arg, err, err ? "query failed" : "", NULL);
		break;
	case P_NONE:
		fail_msg("no operation in flight (calls: %s)", calls());
	}
}

/* Answer every store command queued (and those the answers queue). */
static void flush_store(void)
{
	for (int round = 0; round < 32; round++) {
		bool any = false;
		for (int i = 0; i < F.nsub; i++) {
			struct sub *s = &F.sub[i];
			if (s->answered)
				continue;
			s->answered = true;
			any = true;
			struct rs_result res = { .code = 0, .revision = 5 };
			if (s->op == RS_OP_LEASE_GRANT)
				res.lease = 0x99;
			if (s->op == RS_OP_PUT)
				res.code = F.store_code;
			s->cb(s->arg, 0, &res);
		}
		if (!any)
			return;
	}
	fail_msg("store answers never settle");
}

/* Answer store command i alone, with this status and result code. */
static void answer(int i, int status, int code)
{
	assert_true(i < F.nsub && !F.sub[i].answered);
	F.sub[i].answered = true;
	struct rs_result res = { .code = code, .revision = 9 };
	F.sub[i].cb(F.sub[i].arg, status, &res);
}

/* The last PUT of the leader key: its index, or -1. */
static int last_leader_put(void)
{
	for (int i = F.nsub - 1; i >= 0; i--)
		if (F.sub[i].op == RS_OP_PUT &&
		    strcmp(F.sub[i].key, "/service/c1/leader") == 0)
			return i;
	return -1;
}

static int count_sub(enum rs_op op, const char *key_leaf)
{
	int n = 0;
	for (int i = 0; i < F.nsub; i++) {
		size_t kl = strlen(F.sub[i].key), ll = strlen(key_leaf);
		if (F.sub[i].op == op &&
		    (!*key_leaf ||
		     (kl >= ll && strcmp(F.sub[i].key + kl - ll, key_leaf) == 0)))
			n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* An agent on the fake                                                 */
/* ------------------------------------------------------------------ */

struct t {
	uv_loop_t loop;
	char dir[64];
	char pgdir[128];
	char sockdir[128];
	struct cfg cfg;
	struct ha_agent *a;
	bool done;
};

static char *dup_s(const char *s)
{
	char *d = mem_strdup(s);
	assert_non_null(d);
	return d;
}

static int setup(void **state)
{
	memset(&F, 0, sizeof F);
	F.pm = PGC_PM_STOPPED;
	F.cd.system_id = 42;
	snprintf(F.cd.state, sizeof F.cd.state, "shut down");
	F.cd.checkpoint_lsn = 0x3000000;
	struct t *t = calloc(1, sizeof *t);
	assert_non_null(t);
	assert_int_equal(uv_loop_init(&t->loop), 0);
	snprintf(t->dir, sizeof t->dir, "/tmp/pgw-agent-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->pgdir, sizeof t->pgdir, "%s/pg", t->dir);
	snprintf(t->sockdir, sizeof t->sockdir, "%s/s", t->dir);
	assert_int_equal(mkdir(t->pgdir, 0700), 0);
	struct cfg *c = &t->cfg;
	c->cluster_name = dup_s("c1");
	c->node_name = dup_s("node1");
	c->data_dir = dup_s(t->dir);
	c->api_url = dup_s("http://127.0.0.1:1");
	c->pg.enabled = true;
	c->pg.data_dir = dup_s(t->pgdir);
	c->pg.listen = dup_s("127.0.0.1:5999");
	c->pg.socket_dir = dup_s(t->sockdir);
	c->pg.bin_dir = dup_s("/nonexistent");
	c->pg.use_slots = true;
	c->pg.use_rewind = true;
	c->pg.remove_data_on_rewind_failure = true;
	c->pg.failover_priority = 1;
	c->pg.wd_mode = CFG_WD_OFF;
	assert_int_equal(ha_agent_new(&t->loop, c, NULL, NULL, &t->a), 0);
	ha_agent_set_io(t->a, &fake_io);
	*state = t;
	return 0;
}

static void on_shut(void *arg)
{
	((struct t *)arg)->done = true;
}

static int teardown(void **state)
{
	struct t *t = *state;
	if (ha_agent_fsm_state(t->a) != S(SHUTDOWN))
		ha_agent_shutdown(t->a, on_shut, t);
	flush_store();
	for (int i = 0; i < 100 && uv_run(&t->loop, UV_RUN_NOWAIT); i++)
		;
	ha_agent_free(t->a);
	/* file flushes run on libuv's thread pool (pgc_file_sync_async):
	 * wait for them, bounded (2 s) */
	for (int i = 0; i < 2000 && uv_run(&t->loop, UV_RUN_NOWAIT); i++)
		usleep(1000);
	/* every handle the agent and its node opened is closed */
	assert_int_equal(uv_loop_close(&t->loop), 0);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
	assert_int_equal(system(cmd), 0);
	struct cfg *c = &t->cfg;
	mem_free(c->cluster_name);
	mem_free(c->node_name);
	mem_free(c->data_dir);
	mem_free(c->api_url);
	mem_free(c->pg.data_dir);
	mem_free(c->pg.listen);
	mem_free(c->pg.socket_dir);
	mem_free(c->pg.bin_dir);
	free(t);
	return 0;
}

static const struct ha_member *leader2(void)
{
	static struct ha_member m;
	memset(&m, 0, sizeof m);
	snprintf(m.name, sizeof m.name, "node2");
	snprintf(m.host, sizeof m.host, "10.0.0.2");
	m.port = 5432;
	m.role = HA_ROLE_PRIMARY;
	m.state = HA_ST_RUNNING;
	return &m;
}

static void touch(struct t *t, const char *leaf)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", t->pgdir, leaf);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
}

#define BEGIN(t, from, to, flow, leader)                                   \
	assert_int_equal(ha_agent_test_begin((t)->a, HA_FSM_##from,         \
					     HA_FSM_##to, HA_FLOW_##flow,   \
					     (leader)),                     \
			 0)
#define AT(t, st) assert_int_equal(ha_agent_fsm_state((t)->a), HA_FSM_##st)
#define IDLE(t) assert_int_equal(ha_agent_flow((t)->a), FL(NONE))
#define CALLS(s) assert_string_equal(calls(), (s))

/* ---- promote: replica -> primary ---- */

static void test_promote_ok(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	BEGIN(t, REPLICA, PRIMARY, PROMOTE, NULL);
	AT(t, REPLICA); /* until the promotion completed */
	assert_int_equal(ha_agent_flow(t->a), FL(PROMOTE));
	CALLS("promote");
	complete(0);
	AT(t, PRIMARY);
	IDLE(t);
}

static void test_promote_fails_stays_replica(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	BEGIN(t, REPLICA, PRIMARY, PROMOTE, NULL);
	complete(ERR_PG);
	AT(t, REPLICA);
	IDLE(t);
	CALLS("promote");
}

/* The entry operation cannot even start: no flow, no move. */
static void test_promote_cannot_start(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	F.next_rv = ERR_UNAVAILABLE;
	assert_int_equal(ha_agent_test_begin(t->a, S(REPLICA), S(PRIMARY),
					     FL(PROMOTE), NULL),
			 ERR_UNAVAILABLE);
	AT(t, REPLICA);
	IDLE(t);
}

/* A move the table does not have is not made. */
static void test_row_not_in_table(void **state)
{
	struct t *t = *state;
	assert_int_equal(ha_agent_test_begin(t->a, S(REPLICA), S(NO_DATA),
					     FL(CLONE), NULL),
			 ERR_NOTFOUND);
	assert_int_equal(ha_agent_test_begin(t->a, S(REFUSED), S(PRIMARY),
					     FL(START_PRIMARY), NULL),
			 ERR_NOTFOUND);
	CALLS("");
}

/* ---- start: stopped -> primary / replica ---- */

static void test_start_primary(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, PRIMARY, START_PRIMARY, NULL);
	CALLS("start_primary");
	assert_false(F.start_replica);
	complete(0);
	AT(t, PRIMARY);
	IDLE(t);
}

static void test_start_primary_fails(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, PRIMARY, START_PRIMARY, NULL);
	complete(ERR_TIMEOUT);
	AT(t, STOPPED);
	IDLE(t);
}

static void test_start_replica_follows_leader(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, REPLICA, START_REPLICA, leader2());
	CALLS("start_replica");
	assert_true(F.start_replica);
	assert_non_null(strstr(F.start_conninfo, "10.0.0.2"));
	assert_non_null(strstr(F.start_conninfo, "5432"));
	complete(0);
	AT(t, REPLICA);
	IDLE(t);
}

static void test_start_replica_fails(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, REPLICA, START_REPLICA, leader2());
	complete(ERR_PG);
	AT(t, STOPPED);
}

/* ---- clone: no_data -> replica ---- */

static void test_clone_ok(void **state)
{
	struct t *t = *state;
	BEGIN(t, NO_DATA, REPLICA, CLONE, leader2());
	CALLS("basebackup");
	assert_non_null(strstr(F.bb_conninfo, "10.0.0.2"));
	complete(0);
	CALLS("basebackup,start_replica");
	AT(t, NO_DATA);
	complete(0);
	AT(t, REPLICA);
	IDLE(t);
}

static void test_clone_basebackup_fails(void **state)
{
	struct t *t = *state;
	BEGIN(t, NO_DATA, REPLICA, CLONE, leader2());
	complete(ERR_PG);
	AT(t, NO_DATA);
	IDLE(t);
	CALLS("basebackup"); /* never started on a failed copy */
}

/* ---- bootstrap: no_data -> primary, or refused ---- */

static void test_bootstrap_ok(void **state)
{
	struct t *t = *state;
	ha_agent_test_set_leader(t->a, true, 0x77);
	BEGIN(t, NO_DATA, PRIMARY, BOOTSTRAP, NULL);
	CALLS("initdb");
	complete(0);
	CALLS("initdb,start_primary");
	complete(0);
	CALLS("initdb,start_primary,query"); /* users, passwords */
	complete(0);
	CALLS("initdb,start_primary,query,controldata");
	complete(0);
	/* the initialize key, create-only, carries the system id */
	assert_int_equal(count_sub(RS_OP_PUT, "/initialize"), 1);
	for (int i = 0; i < F.nsub; i++)
		if (strstr(F.sub[i].key, "/initialize")) {
			assert_true(F.sub[i].create_only);
			assert_string_equal(F.sub[i].value, "42");
		}
	AT(t, NO_DATA);
	flush_store();
	AT(t, PRIMARY);
	IDLE(t);
	assert_int_equal(count_sub(RS_OP_LEASE_REVOKE, ""), 0);
}

static void test_bootstrap_failure_refuses_and_gives_lease_back(void **state)
{
	struct t *t = *state;
	ha_agent_test_set_leader(t->a, true, 0x77);
	BEGIN(t, NO_DATA, PRIMARY, BOOTSTRAP, NULL);
	complete(0);           /* initdb */
	complete(ERR_TIMEOUT); /* start */
	AT(t, REFUSED);
	IDLE(t);
	assert_int_equal(count_sub(RS_OP_LEASE_REVOKE, ""), 1);
	CALLS("initdb,start_primary");
}

static void test_bootstrap_initdb_fails(void **state)
{
	struct t *t = *state;
	BEGIN(t, NO_DATA, PRIMARY, BOOTSTRAP, NULL);
	complete(ERR_PG);
	AT(t, REFUSED);
	CALLS("initdb");
}

/* existing writable data: only the system id is recorded */
static void test_bootstrap_existing_data_records(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	BEGIN(t, PRIMARY, PRIMARY, BOOTSTRAP, NULL);
	CALLS("controldata");
	complete(0);
	flush_store();
	assert_int_equal(count_sub(RS_OP_PUT, "/initialize"), 1);
	AT(t, PRIMARY);
	IDLE(t);
}

/* the initialize key exists already (another node won): not an error */
static void test_bootstrap_initialize_conflict_is_fine(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	F.store_code = ERR_CONFLICT;
	BEGIN(t, PRIMARY, PRIMARY, BOOTSTRAP, NULL);
	complete(0);
	flush_store();
	AT(t, PRIMARY);
}

/* ---- rejoin: primary/stopped -> replica, via pg_rewind ---- */

static void test_rejoin_running_primary(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	BEGIN(t, PRIMARY, REPLICA, REJOIN, leader2());
	CALLS("stop");
	complete(0);
	CALLS("stop,rewind");
	/* pg_rewind's source is the leader, as the superuser */
	assert_non_null(strstr(F.rewind_conninfo, "10.0.0.2"));
	assert_non_null(strstr(F.rewind_conninfo, "postgres"));
	complete(0);
	CALLS("stop,rewind,start_replica");
	complete(0);
	AT(t, REPLICA);
	IDLE(t);
}

static void test_rejoin_stopped_needs_no_stop(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, REPLICA, REJOIN, leader2());
	CALLS("rewind");
	complete(0);
	complete(0);
	AT(t, REPLICA);
}

/* a crashed primary's data: crash recovery as a standby of no one, a
 * clean stop, and only then pg_rewind */
static void test_rejoin_crashed_primary_recovers_first(void **state)
{
	struct t *t = *state;
	ha_agent_test_set_crashed_primary(t->a, true);
	BEGIN(t, STOPPED, REPLICA, REJOIN, leader2());
	CALLS("start_replica");
	assert_string_equal(F.start_conninfo, ""); /* follows no one */
	complete(0);
	CALLS("start_replica,stop");
	complete(0);
	CALLS("start_replica,stop,rewind");
	complete(0);
	CALLS("start_replica,stop,rewind,start_replica");
	assert_non_null(strstr(F.start_conninfo, "10.0.0.2"));
	complete(0);
	AT(t, REPLICA);
	IDLE(t);
}

static void test_rejoin_crash_recovery_fails(void **state)
{
	struct t *t = *state;
	ha_agent_test_set_crashed_primary(t->a, true);
	BEGIN(t, STOPPED, REPLICA, REJOIN, leader2());
	complete(ERR_PG);
	AT(t, STOPPED);
	IDLE(t);
	CALLS("start_replica"); /* never rewound */
}

/* failed before touching the data (no marker): try again later */
static void test_rejoin_rewind_fails_data_intact(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, REPLICA, REJOIN, leader2());
	complete(ERR_PG);
	AT(t, STOPPED);
	IDLE(t);
	CALLS("rewind"); /* not wiped, not started */
}

static void test_rejoin_rewind_fails_wipes(void **state)
{
	struct t *t = *state;
	touch(t, PGC_REWIND_FAILED_FILE);
	BEGIN(t, STOPPED, REPLICA, REJOIN, leader2());
	complete(ERR_PG);
	CALLS("rewind,wipe");
	complete(0);
	AT(t, NO_DATA); /* the next tick clones */
	IDLE(t);
}

static void test_rejoin_rewind_fails_refuses(void **state)
{
	struct t *t = *state;
	t->cfg.pg.remove_data_on_rewind_failure = false;
	touch(t, PGC_REWIND_FAILED_FILE);
	F.pm = PGC_PM_RUNNING;
	BEGIN(t, PRIMARY, REPLICA, REJOIN, leader2());
	complete(0);      /* stop */
	complete(ERR_PG); /* rewind */
	AT(t, REFUSED);   /* never started with diverged data */
	IDLE(t);
	CALLS("stop,rewind");
}

static void test_rejoin_start_fails(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, REPLICA, REJOIN, leader2());
	complete(0);
	complete(ERR_PG);
	AT(t, STOPPED);
	IDLE(t);
}

/* ---- switchover: primary -> stopped (handed over) ---- */

static void test_switchover_stop_fails_keeps_primary(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	ha_agent_test_set_leader(t->a, true, 0x77);
	BEGIN(t, PRIMARY, STOPPED, SWITCHOVER, leader2());
	CALLS("stop");
	complete(ERR_TIMEOUT);
	AT(t, PRIMARY);
	IDLE(t);
	/* the request is dropped; the lease is still ours */
	assert_int_equal(count_sub(RS_OP_DELETE, "/switchover"), 1);
	assert_int_equal(count_sub(RS_OP_LEASE_REVOKE, ""), 0);
}

static void test_switchover_unclean_stop_abandons(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	snprintf(F.cd.state, sizeof F.cd.state, "in production");
	ha_agent_test_set_leader(t->a, true, 0x77);
	BEGIN(t, PRIMARY, STOPPED, SWITCHOVER, leader2());
	complete(0);
	CALLS("stop,controldata");
	complete(0);
	AT(t, PRIMARY);
	IDLE(t);
	assert_int_equal(count_sub(RS_OP_PUT, "/leader"), 0);
}

static void test_switchover_target_unknown_abandons(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	ha_agent_test_set_leader(t->a, true, 0x77);
	BEGIN(t, PRIMARY, STOPPED, SWITCHOVER, leader2());
	complete(0);
	complete(0); /* clean: but node2 has no member record */
	AT(t, PRIMARY);
	IDLE(t);
	assert_int_equal(count_sub(RS_OP_PUT, "/leader"), 0);
}

/* The handover put (sw_hand_over) without an answer: it may still have
 * committed, so the agent settles it through the store before it resumes
 * as primary or gives the lead up. */
static void handover_unknown(struct t *t)
{
	store_set("leader", "node1");
	store_change("leader", "node1", 0x77);
	ha_agent_test_set_leader(t->a, true, 0x77);
	F.pm = PGC_PM_STOPPED; /* stopped cleanly for the switchover */
	assert_int_equal(ha_agent_test_begin_at(t->a, S(PRIMARY), S(STOPPED),
						FL(SWITCHOVER),
						HA_STEP_SW_HAND_OVER,
						leader2()),
			 0);
	int put = last_leader_put();
	assert_true(put >= 0);
	assert_string_equal(F.sub[put].value, "node2");
	answer(put, ERR_TIMEOUT, 0);
	assert_int_equal(ha_agent_step(t->a), HA_STEP_SW_SETTLE);
	int settle = last_leader_put();
	assert_true(settle > put);
	assert_string_equal(F.sub[settle].value, "node1"); /* claim it back */
}

static bool leading(struct t *t)
{
	return ha_agent_reinit(t->a) == ERR_CONFLICT;
}

static void test_handover_unknown_claimed_back_resumes(void **state)
{
	struct t *t = *state;
	handover_unknown(t);
	answer(last_leader_put(), 0, 0); /* our put committed: theirs never */
	AT(t, PRIMARY);
	IDLE(t);
	assert_true(leading(t)); /* resumes as primary next tick */
	assert_int_equal(count_sub(RS_OP_DELETE, "/switchover"), 1);
}

static void test_handover_unknown_committed_is_handed(void **state)
{
	struct t *t = *state;
	handover_unknown(t);
	store_change("leader", "node2", 0x77);
	answer(last_leader_put(), 0, ERR_CONFLICT);
	AT(t, STOPPED);
	IDLE(t);
	assert_false(leading(t));
	assert_int_equal(count_sub(RS_OP_DELETE, "/switchover"), 1);
}

static void test_handover_unknown_key_elsewhere_lost(void **state)
{
	struct t *t = *state;
	handover_unknown(t);
	store_change("leader", "node3", 0x55);
	answer(last_leader_put(), 0, ERR_CONFLICT);
	AT(t, STOPPED); /* never resumes as primary */
	IDLE(t);
	assert_false(leading(t));
}

static void on_guard(uv_timer_t *g)
{
	(void)g;
}

/* A store without a leader answers "unavailable" at once: the agent asks
 * again only after a pause, never from its own callback (which spun the
 * loop). */
static void test_handover_settle_retries_after_a_pause(void **state)
{
	struct t *t = *state;
	handover_unknown(t);
	int before = F.nsub;
	uint64_t t0 = uv_hrtime();
	answer(last_leader_put(), ERR_UNAVAILABLE, 0);
	assert_true(last_leader_put() < before); /* not from the callback */
	assert_int_equal(ha_agent_step(t->a), HA_STEP_SW_SETTLE);
	static uv_timer_t guard;
	uv_timer_init(&t->loop, &guard);
	uv_timer_start(&guard, on_guard, 50, 50);
	for (int i = 0; i < 40 && last_leader_put() < before; i++)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&t->loop, UV_RUN_NOWAIT);
	assert_true(last_leader_put() >= before); /* asked again */
	assert_true(uv_hrtime() - t0 >= 150 * 1000000ull);
	answer(last_leader_put(), 0, 0);
	AT(t, PRIMARY);
}

/* ---- reinit: any -> no_data ---- */

static void test_reinit_running_replica(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	BEGIN(t, REPLICA, NO_DATA, REINIT, NULL);
	CALLS("stop");
	complete(0);
	CALLS("stop,wipe");
	complete(0);
	AT(t, NO_DATA);
	IDLE(t);
}

static void test_reinit_stopped_wipes_at_once(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, NO_DATA, REINIT, NULL);
	CALLS("wipe");
	complete(ERR_PG);
	AT(t, STOPPED);
	IDLE(t);
}

/* ---- repoint, refuse: immediate ---- */

static void test_repoint(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	BEGIN(t, REPLICA, REPLICA, REPOINT, leader2());
	CALLS("write_conf,reload");
	assert_non_null(strstr(F.start_conninfo, "10.0.0.2"));
	AT(t, REPLICA);
	IDLE(t); /* nothing left running */
}

static void test_repoint_fails_keeps_following(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	F.next_rv = ERR_IO; /* write_conf */
	BEGIN(t, REPLICA, REPLICA, REPOINT, leader2());
	CALLS("write_conf"); /* no reload of a configuration not written */
	AT(t, REPLICA);
	IDLE(t);
}

static void test_refuse(void **state)
{
	struct t *t = *state;
	BEGIN(t, STOPPED, REFUSED, REFUSE, NULL);
	AT(t, REFUSED);
	IDLE(t);
	CALLS(""); /* PostgreSQL is never started */
	/* and nothing but the daemon's stop leaves refused */
	assert_int_equal(ha_agent_test_begin(t->a, S(REFUSED), S(REPLICA),
					     FL(START_REPLICA), leader2()),
			 ERR_NOTFOUND);
}

/* ---- shutdown: the lease goes only once PostgreSQL is down ---- */

static void test_shutdown_revokes_after_stop(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	ha_agent_test_set_leader(t->a, true, 0x77);
	BEGIN(t, PRIMARY, SHUTDOWN, SHUTDOWN, NULL);
	CALLS("stop");
	assert_int_equal(count_sub(RS_OP_LEASE_REVOKE, ""), 0);
	AT(t, PRIMARY);
	complete(0);
	assert_int_equal(count_sub(RS_OP_LEASE_REVOKE, ""), 1);
	flush_store();
	AT(t, SHUTDOWN);
	IDLE(t);
}

static void test_shutdown_stop_fails_still_revokes(void **state)
{
	struct t *t = *state;
	F.pm = PGC_PM_RUNNING;
	ha_agent_test_set_leader(t->a, true, 0x77);
	BEGIN(t, REPLICA, SHUTDOWN, SHUTDOWN, NULL);
	complete(ERR_TIMEOUT);
	flush_store();
	assert_int_equal(count_sub(RS_OP_LEASE_REVOKE, ""), 1);
	AT(t, SHUTDOWN);
}

/* A flow's operation that completes after the shutdown began does not
 * advance the shutdown. */
static void test_shutdown_preempts_flow(void **state)
{
	struct t *t = *state;
	BEGIN(t, NO_DATA, REPLICA, CLONE, leader2());
	CALLS("basebackup");
	pgc_done_cb cb = F.done_cb;
	void *arg = F.arg;
	F.pend = P_NONE;
	assert_int_equal(ha_agent_test_begin(t->a, S(NO_DATA), S(SHUTDOWN),
					     FL(SHUTDOWN), NULL),
			 0);
	CALLS("basebackup,stop");
	cb(arg, ERR_CANCELED, "canceled"); /* the old basebackup */
	assert_int_equal(ha_agent_step(t->a), HA_STEP_SD_STOP);
	complete(0);
	flush_store();
	AT(t, SHUTDOWN);
}

/* ------------------------------------------------------------------ */
/* converge: the goal and the row a tick picks (store view + PostgreSQL)  */
/* ------------------------------------------------------------------ */

/* An initialized cluster (system id 42) led by node2. */
static void cluster_led_by_node2(void)
{
	store_set("initialize", "42");
	store_set("leader", "node2");
	char *js = ha_member_encode(leader2());
	assert_non_null(js);
	store_set("members/node2", js);
	mem_free(js);
}

static void tick(struct t *t)
{
	ha_agent_test_tick(t->a);
}

/* no data, another node leads: clone from it */
static void test_tick_no_data_follower_clones(void **state)
{
	struct t *t = *state;
	cluster_led_by_node2();
	tick(t);
	CALLS("basebackup");
	assert_non_null(strstr(F.bb_conninfo, "10.0.0.2"));
	AT(t, NO_DATA);
	assert_int_equal(ha_agent_flow(t->a), FL(CLONE));
}

/* stopped replica data: start as the leader's replica, no rewind */
static void test_tick_stopped_replica_data_starts_replica(void **state)
{
	struct t *t = *state;
	cluster_led_by_node2();
	touch(t, "PG_VERSION");
	snprintf(F.cd.state, sizeof F.cd.state, "shut down in recovery");
	tick(t);
	CALLS("controldata"); /* what the data was, first */
	complete(0);
	tick(t);
	CALLS("controldata,start_replica");
	assert_non_null(strstr(F.start_conninfo, "10.0.0.2"));
	AT(t, STOPPED);
	assert_int_equal(ha_agent_flow(t->a), FL(START_REPLICA));
}

/* a crashed primary's data (in production): rejoin, recovering first */
static void test_tick_crashed_primary_data_rejoins(void **state)
{
	struct t *t = *state;
	cluster_led_by_node2();
	touch(t, "PG_VERSION");
	snprintf(F.cd.state, sizeof F.cd.state, "in production");
	tick(t);
	complete(0); /* controldata */
	tick(t);
	assert_int_equal(ha_agent_flow(t->a), FL(REJOIN));
	CALLS("controldata,start_replica");
	assert_string_equal(F.start_conninfo, ""); /* a standby of no one */
}

/* data of another cluster is never started */
static void test_tick_other_cluster_refused(void **state)
{
	struct t *t = *state;
	cluster_led_by_node2();
	touch(t, "PG_VERSION");
	F.cd.system_id = 7;
	tick(t);
	complete(0); /* controldata: system id 7 */
	tick(t);
	AT(t, REFUSED);
	tick(t);
	tick(t);
	CALLS("controldata"); /* nothing started, ever */
}

/* a writable PostgreSQL while another node leads: stopped, rewound */
static void test_tick_writable_follower_rejoins(void **state)
{
	struct t *t = *state;
	cluster_led_by_node2();
	touch(t, "PG_VERSION");
	F.pm = PGC_PM_RUNNING;
	tick(t);
	probe_answer(false, 42);
	tick(t);
	AT(t, PRIMARY);
	assert_int_equal(ha_agent_flow(t->a), FL(REJOIN));
	CALLS("stop");
}

/* a replica that follows someone else is re-pointed, not restarted */
static void test_tick_replica_repointed(void **state)
{
	struct t *t = *state;
	cluster_led_by_node2();
	touch(t, "PG_VERSION");
	F.pm = PGC_PM_RUNNING;
	tick(t);
	probe_answer(true, 42);
	tick(t);
	AT(t, REPLICA);
	CALLS("write_conf,reload");
	assert_non_null(strstr(F.start_conninfo, "10.0.0.2"));
	probe_answer(true, 42);
	tick(t);
	CALLS("write_conf,reload"); /* following node2 now: nothing more */
}

/* reinit of a replica: stop, wipe */
static void test_tick_reinit(void **state)
{
	struct t *t = *state;
	cluster_led_by_node2();
	touch(t, "PG_VERSION");
	F.pm = PGC_PM_RUNNING;
	tick(t);
	probe_answer(true, 42);
	tick(t);
	assert_int_equal(ha_agent_reinit(t->a), 0);
	probe_answer(true, 42);
	tick(t);
	assert_int_equal(ha_agent_flow(t->a), FL(REINIT));
	CALLS("write_conf,reload,stop");
	complete(0);
	CALLS("write_conf,reload,stop,wipe");
	complete(0);
	AT(t, NO_DATA);
}

/* the postmaster exits: recorded as the observed row */
static void test_tick_observes_exit(void **state)
{
	struct t *t = *state;
	cluster_led_by_node2();
	touch(t, "PG_VERSION");
	F.pm = PGC_PM_RUNNING;
	tick(t);
	probe_answer(true, 42);
	tick(t);
	AT(t, REPLICA);
	F.pm = PGC_PM_STOPPED;
	snprintf(F.cd.state, sizeof F.cd.state, "in crash recovery");
	F.pend = P_NONE;
	tick(t);
	AT(t, STOPPED);
}

/* this node leads (it holds the lease the leader key names) */
static void cluster_led_by_me(struct t *t, bool initialized)
{
	if (initialized)
		store_set("initialize", "42");
	store_set("leader", "node1");
	ha_agent_test_set_leader(t->a, true, 0x77);
}

static void test_tick_leader_stopped_starts_primary(void **state)
{
	struct t *t = *state;
	cluster_led_by_me(t, true);
	touch(t, "PG_VERSION");
	tick(t);
	CALLS("controldata"); /* this cluster's data? */
	complete(0);
	tick(t);
	CALLS("controldata,start_primary");
	assert_int_equal(ha_agent_flow(t->a), FL(START_PRIMARY));
	complete(0);
	AT(t, PRIMARY);
}

static void test_tick_leader_replica_promotes(void **state)
{
	struct t *t = *state;
	cluster_led_by_me(t, true);
	touch(t, "PG_VERSION");
	F.pm = PGC_PM_RUNNING;
	tick(t);
	probe_answer(true, 42);
	tick(t);
	CALLS("promote");
	assert_int_equal(ha_agent_flow(t->a), FL(PROMOTE));
}

static void test_tick_leader_of_new_cluster_bootstraps(void **state)
{
	struct t *t = *state;
	cluster_led_by_me(t, false);
	tick(t);
	CALLS("initdb");
	assert_int_equal(ha_agent_flow(t->a), FL(BOOTSTRAP));
}

/* not leading and no cluster yet: wait, start nothing */
static void test_tick_no_cluster_waits(void **state)
{
	struct t *t = *state;
	tick(t);
	tick(t);
	CALLS("");
	AT(t, NO_DATA);
	IDLE(t);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_state_reachable_from_init),
		cmocka_unit_test(test_every_state_has_a_way_out),
		cmocka_unit_test(test_no_duplicate_or_contradictory_rows),
		cmocka_unit_test(test_every_observation_is_a_row),
		cmocka_unit_test(test_flows_are_closed),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_docs_show_the_table),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_promote_ok),
		T(test_promote_fails_stays_replica),
		T(test_promote_cannot_start),
		T(test_row_not_in_table),
		T(test_start_primary),
		T(test_start_primary_fails),
		T(test_start_replica_follows_leader),
		T(test_start_replica_fails),
		T(test_clone_ok),
		T(test_clone_basebackup_fails),
		T(test_bootstrap_ok),
		T(test_bootstrap_failure_refuses_and_gives_lease_back),
		T(test_bootstrap_initdb_fails),
		T(test_bootstrap_existing_data_records),
		T(test_bootstrap_initialize_conflict_is_fine),
		T(test_rejoin_running_primary),
		T(test_rejoin_stopped_needs_no_stop),
		T(test_rejoin_crashed_primary_recovers_first),
		T(test_rejoin_crash_recovery_fails),
		T(test_rejoin_rewind_fails_data_intact),
		T(test_rejoin_rewind_fails_wipes),
		T(test_rejoin_rewind_fails_refuses),
		T(test_rejoin_start_fails),
		T(test_switchover_stop_fails_keeps_primary),
		T(test_switchover_unclean_stop_abandons),
		T(test_switchover_target_unknown_abandons),
		T(test_handover_unknown_claimed_back_resumes),
		T(test_handover_unknown_committed_is_handed),
		T(test_handover_unknown_key_elsewhere_lost),
		T(test_handover_settle_retries_after_a_pause),
		T(test_reinit_running_replica),
		T(test_reinit_stopped_wipes_at_once),
		T(test_repoint),
		T(test_repoint_fails_keeps_following),
		T(test_refuse),
		T(test_shutdown_revokes_after_stop),
		T(test_shutdown_stop_fails_still_revokes),
		T(test_shutdown_preempts_flow),
		T(test_tick_no_data_follower_clones),
		T(test_tick_stopped_replica_data_starts_replica),
		T(test_tick_crashed_primary_data_rejoins),
		T(test_tick_other_cluster_refused),
		T(test_tick_writable_follower_rejoins),
		T(test_tick_replica_repointed),
		T(test_tick_reinit),
		T(test_tick_observes_exit),
		T(test_tick_leader_stopped_starts_primary),
		T(test_tick_leader_replica_promotes),
		T(test_tick_leader_of_new_cluster_bootstraps),
		T(test_tick_no_cluster_waits),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
