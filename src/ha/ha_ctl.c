/* ha_ctl.c - the controller runtime (the decision itself: ha_decide.c).
 *
 * Every interval (and when poked), on the ready Raft leader only: read the
 * initialize, leader, candidate, last_leader, pause keys and the member
 * records from the local state machine (authoritative on the leader once
 * its barrier completed), call ha_decide(), and carry out its action with
 * one compare-and-swap write: SET creates the candidate key only if it is
 * absent; CLEAR deletes it only at the revision that was decided on. At
 * most one write is in flight; a failed or conflicting write is simply
 * decided again at the next look.
 */
#include "ha/ha_ctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "log.h"
#include "mem.h"

/* ------------------------------------------------------------------ */
/* Runtime                                                              */
/* ------------------------------------------------------------------ */

struct ha_ctl {
	uv_loop_t *loop;
	struct rs_store *store;
	struct kv *kv;
	char *cluster;
	unsigned interval_ms;
	const struct cfg *cfg;  /* borrowed */
	struct cfg_ha ha;       /* the cluster's [ha] in force */
	uint64_t ha_rev;        /* mod revision of the config key applied */
	struct ha_ctl_timing t; /* derived from ha's ttl and loop_wait */
	uv_timer_t timer;
	bool inflight;
	bool closing;
	/* candidate age tracking */
	uint64_t cand_rev;
	uint64_t cand_first_ms;
	uint64_t last_primary_lsn;
	char last_why[256];
	/* freshness: when each member's seq last changed (this node's clock;
	 * a member first seen counts as fresh from then) */
	struct fresh {
		char name[HA_NAME_MAX + 1];
		uint64_t seq;
		uint64_t changed_ms;
	} *fresh;
	size_t nfresh;
	/* steady state: a leader holds the key and nothing is pending; while
	 * the store does not change, there is nothing to look at */
	bool steady;
	uint64_t steady_rev;
	bool was_ready;
	uint64_t ready_ms;       /* when this controller became active */
	uint64_t leader_gone_ms; /* when this controller first saw no leader
				    key (0: a leader is there) */
	/* the WAL positions asked of the replicas once the lease is gone */
	struct http_client *client;
	char *token;
	enum { POLL_IDLE, POLL_RUNNING, POLL_DONE } poll;
	uint64_t poll_gen;     /* requests of older polls are ignored */
	uint64_t poll_start_ms, poll_done_ms;
	size_t poll_pending;   /* answers this poll still waits for */
	size_t poll_inflight;  /* requests of any poll not yet called back */
	struct poll_res {
		char name[HA_NAME_MAX + 1];
		bool ok;
		struct ha_lsn_pos pos;
		char err[96];
	} *poll_res;
	size_t npoll;
	bool timer_closed;
	/* Raft leadership moved off the primary's node */
	const char *self;
	uint64_t move_tried_ms, move_checked_ms;
	unsigned move_inflight;
	void (*close_cb)(void *);
	void *close_arg;
};

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

/* Value of key (mem_malloc'd) and its mod revision, or NULL. */
static char *get_key(struct ha_ctl *c, const char *leaf, uint64_t *mod_rev)
{
	char key[256];
	ha_key(key, sizeof key, c->cluster, leaf);
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev;
	char *val = NULL;
	if (rs_fsm_range(rs_store_fsm(c->store), key, strlen(key), false, 1,
			 &kvs, &n, &rev) == 0 &&
	    n == 1) {
		val = mem_strdup(kvs[0].value);
		if (mod_rev)
			*mod_rev = kvs[0].mod_rev;
	}
	rs_kvs_free(kvs, n);
	return val;
}

/* True when m reported within stale_ms (its seq moved). */
static bool is_fresh(struct ha_ctl *c, const struct ha_member *m, uint64_t now)
{
	for (size_t i = 0; i < c->nfresh; i++) {
		struct fresh *f = &c->fresh[i];
		if (strcmp(f->name, m->name) != 0)
			continue;
		if (f->seq != m->seq) {
			f->seq = m->seq;
			f->changed_ms = now;
		}
		return f->changed_ms != 0 &&
		       now - f->changed_ms <= c->t.stale_ms;
	}
	struct fresh *n = mem_realloc(c->fresh, (c->nfresh + 1) * sizeof *n);
	if (!n)
		return true;
	c->fresh = n;
	struct fresh *f = &c->fresh[c->nfresh++];
	snprintf(f->name, sizeof f->name, "%s", m->name);
	f->seq = m->seq;
	/* A record seen for the first time proves nothing (a new Raft leader
	 * sees the dead primary's last record too): fresh only once it
	 * changes, i.e. after the node's next report (<= 1 s). */
	f->changed_ms = 0;
	return false;
}

static void look(struct ha_ctl *c);
static void maybe_closed(struct ha_ctl *c);
static void follow_stored_config(struct ha_ctl *c);

void ha_ctl_timing(unsigned ttl_ms, unsigned loop_wait_ms, unsigned interval_ms,
		   struct ha_ctl_timing *t)
{
	/* docs/architecture.md, "Controller timing": each formula's reason */
	unsigned report = HA_REPORT_INTERVAL_MS;
	t->stale_ms = ttl_ms > 2 * report ? ttl_ms : 2 * report;
	t->candidate_timeout_ms = 4 * ttl_ms;
	t->lsn_timeout_ms = 3 * loop_wait_ms / 4 > 100 ? 3 * loop_wait_ms / 4
							: 100;
	t->poll_reuse_ms = report;
	t->pending_ms = report + loop_wait_ms + interval_ms;
	t->move_after_ms = 5 * loop_wait_ms;
	t->move_retry_ms = 2 * ttl_ms;
	t->move_check_ms = report;
	t->write_timeout_ms = 4 * ttl_ms / 5;
}

static void on_moved(void *arg, int status, const struct rs_result *res)
{
	struct ha_ctl *c = arg;
	(void)res;
	c->move_inflight--;
	if (status != 0)
		log_info("ha-ctl Raft leadership not moved: %s",
			 err_str(status));
	maybe_closed(c);
}

/* This node is the Raft leader; if it is also the PostgreSQL primary's,
 * its death would cost a Raft election before the lease can even expire.
 * Hand leadership to a voter whose member record says it is a streaming
 * replica (the record lives on that node's lease: the node is alive). */
static void move_leader_off_primary(struct ha_ctl *c, uint64_t now)
{
	if (!c->ha.move_raft_leader || !c->self || c->move_inflight ||
	    now - c->ready_ms < c->t.move_after_ms ||
	    (c->move_tried_ms && now - c->move_tried_ms < c->t.move_retry_ms) ||
	    now - c->move_checked_ms < c->t.move_check_ms)
		return;
	c->move_checked_ms = now;
	char *leader = get_key(c, "leader", NULL);
	bool mine = leader && strcmp(leader, c->self) == 0;
	mem_free(leader);
	if (!mine)
		return;
	c->move_tried_ms = now;
	struct rs_member *rms = NULL;
	size_t n = 0;
	if (rs_store_members(c->store, &rms, &n) != 0)
		return;
	char target[RS_MAX_NAME + 1] = "";
	for (size_t i = 0; i < n && !target[0]; i++) {
		if (rms[i].role != RS_VOTER || !rms[i].name[0] ||
		    strcmp(rms[i].name, c->self) == 0)
			continue;
		char leaf[HA_NAME_MAX + 16];
		snprintf(leaf, sizeof leaf, "members/%s", rms[i].name);
		char *rec = get_key(c, leaf, NULL);
		struct ha_member m;
		if (rec && ha_member_decode(rec, strlen(rec), &m) == 0 &&
		    m.role == HA_ROLE_REPLICA && m.state == HA_ST_STREAMING)
			snprintf(target, sizeof target, "%s", rms[i].name);
		mem_free(rec);
	}
	mem_free(rms);
	if (!target[0])
		return;
	log_info("ha-ctl this node is the Raft leader and the primary: handing "
		 "Raft leadership to %s",
		 target);
	if (rs_store_transfer(c->store, target, on_moved, c) == 0)
		c->move_inflight++;
}

struct poll_req {
	struct ha_ctl *c;
	uint64_t gen;
	size_t idx;
};

static void poll_finish(struct ha_ctl *c)
{
	c->poll = POLL_DONE;
	c->poll_done_ms = now_ms();
	char line[512];
	size_t off = 0;
	line[0] = '\0';
	for (size_t i = 0; i < c->npoll && off < sizeof line; i++) {
		const struct poll_res *r = &c->poll_res[i];
		int n = r->ok ? snprintf(line + off, sizeof line - off,
					 "%s%s=%X/%X,%X/%X", i ? " " : "",
					 r->name,
					 (unsigned)(r->pos.received >> 32),
					 (unsigned)r->pos.received,
					 (unsigned)(r->pos.replayed >> 32),
					 (unsigned)r->pos.replayed)
			      : snprintf(line + off, sizeof line - off,
					 "%s%s=(%s)", i ? " " : "", r->name,
					 r->err);
		if (n > 0)
			off += (size_t)n;
	}
	log_info("ha-ctl WAL positions of %zu replica(s) in %" PRIu64
		 " ms (received,replayed): %s",
		 c->npoll, c->poll_done_ms - c->poll_start_ms, line);
}

int ha_ctl_parse_lsn(const char *body, size_t len, struct ha_lsn_pos *out,
		     char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	json_t *o = json_loadb(body, len, 0, NULL);
	json_t *rv = o ? json_object_get(o, "lsn_received") : NULL;
	json_t *pv = o ? json_object_get(o, "lsn_replayed") : NULL;
	json_t *tv = o ? json_object_get(o, "timeline") : NULL;
	json_t *ir = o ? json_object_get(o, "in_recovery") : NULL;
	const char *why = NULL;
	if (!json_is_object(o))
		why = "answer is not a JSON object";
	else if (!json_is_integer(rv) || !json_is_integer(pv))
		why = "LSN missing or not an integer";
	else if (json_integer_value(rv) < 0 || json_integer_value(pv) < 0)
		/* a negative LSN cast to uint64 would win every ranking */
		why = "negative LSN";
	else if (tv && (!json_is_integer(tv) || json_integer_value(tv) < 0 ||
			json_integer_value(tv) > UINT32_MAX))
		why = "timeline not a 32-bit unsigned integer";
	else if (!json_is_true(ir))
		why = "not in recovery";
	if (why) {
		snprintf(err, errlen, "%s", why);
		json_decref(o);
		return ERR_CORRUPT;
	}
	out->received = (uint64_t)json_integer_value(rv);
	out->replayed = (uint64_t)json_integer_value(pv);
	out->timeline = tv ? (uint32_t)json_integer_value(tv) : 0;
	json_decref(o);
	return 0;
}

static void on_lsn_answer(void *arg, int err, long status, const char *body,
			  size_t len)
{
	struct poll_req *q = arg;
	struct ha_ctl *c = q->c;
	c->poll_inflight--;
	if (q->gen == c->poll_gen && c->poll == POLL_RUNNING &&
	    q->idx < c->npoll) {
		struct poll_res *r = &c->poll_res[q->idx];
		if (err != 0)
			snprintf(r->err, sizeof r->err, "%s", err_str(err));
		else if (status != 200)
			snprintf(r->err, sizeof r->err, "HTTP %ld", status);
		else
			r->ok = ha_ctl_parse_lsn(body, len, &r->pos, r->err,
						 sizeof r->err) == 0;
		if (--c->poll_pending == 0) {
			poll_finish(c);
			if (!c->closing)
				look(c);
		}
	}
	mem_free(q);
	maybe_closed(c);
}

/* Ask every replica in ms[0..n) for its WAL position; POLL_DONE at once
 * when there is none to ask. */
static void poll_start(struct ha_ctl *c, const struct ha_member *ms, size_t n)
{
	c->poll_gen++;
	c->poll = POLL_RUNNING;
	c->poll_start_ms = now_ms();
	c->poll_pending = 0;
	c->npoll = 0;
	struct poll_res *res = mem_realloc(c->poll_res,
					  (n ? n : 1) * sizeof *res);
	if (!res) {
		poll_finish(c);
		return;
	}
	c->poll_res = res;
	char auth[4200];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s",
		 c->token ? c->token : "");
	const char *headers[] = { auth, NULL };
	for (size_t i = 0; i < n; i++) {
		const struct ha_member *m = &ms[i];
		if (m->role != HA_ROLE_REPLICA || !m->api_url[0])
			continue;
		struct poll_res *r = &c->poll_res[c->npoll];
		memset(r, 0, sizeof *r);
		snprintf(r->name, sizeof r->name, "%s", m->name);
		snprintf(r->err, sizeof r->err, "no answer");
		struct poll_req *q = mem_calloc(1, sizeof *q);
		char url[300];
		snprintf(url, sizeof url, "%s/internal/lsn", m->api_url);
		if (!q)
			continue;
		*q = (struct poll_req){ .c = c, .gen = c->poll_gen,
					.idx = c->npoll };
		c->npoll++;
		if (http_client_request(c->client, "GET", url, headers, NULL, 0,
					c->t.lsn_timeout_ms, on_lsn_answer,
					q) != 0) {
			snprintf(r->err, sizeof r->err, "not sent");
			mem_free(q);
			continue;
		}
		c->poll_pending++;
		c->poll_inflight++;
	}
	if (c->poll_pending == 0)
		poll_finish(c);
}

/* What the replicas answered, over their records: a position only grows.
 * An answer on a newer timeline replaces the record's position; one on an
 * older timeline than the record (a record written after the answer) is
 * ignored. An answer without a timeline (0, unknown) only raises LSNs. */
void ha_ctl_apply_lsn(struct ha_member *m, const struct ha_lsn_pos *p)
{
	if (p->timeline && m->timeline && p->timeline < m->timeline)
		return;
	if (p->timeline > m->timeline) {
		m->timeline = p->timeline;
		m->lsn_received = p->received;
		m->lsn_replayed = p->replayed;
		return;
	}
	if (p->received > m->lsn_received)
		m->lsn_received = p->received;
	if (p->replayed > m->lsn_replayed)
		m->lsn_replayed = p->replayed;
}

static void poll_apply(const struct ha_ctl *c, struct ha_member *ms, size_t n)
{
	for (size_t i = 0; i < c->npoll; i++) {
		const struct poll_res *r = &c->poll_res[i];
		if (!r->ok)
			continue;
		for (size_t j = 0; j < n; j++)
			if (strcmp(ms[j].name, r->name) == 0)
				ha_ctl_apply_lsn(&ms[j], &r->pos);
	}
}

static void on_written(void *arg, int status, const struct rs_result *res)
{
	struct ha_ctl *c = arg;
	c->inflight = false;
	if (status != 0)
		log_info("ha-ctl decision not written: %s", err_str(status));
	else if (res->code != 0)
		log_info("ha-ctl decision not written: %s (changed meanwhile)",
			 err_str(res->code));
}

static void look(struct ha_ctl *c)
{
	if (c->closing || c->inflight)
		return;
	struct rs_status st;
	rs_store_status(c->store, &st);
	if (!st.ready) {
		c->steady = false;
		c->was_ready = false;
		return;
	}
	if (!c->was_ready) {
		/* active again (or for the first time): what this controller
		 * remembered from an earlier term proves nothing now */
		c->was_ready = true;
		c->nfresh = 0;
		c->leader_gone_ms = 0;
		c->ready_ms = now_ms();
	}
	follow_stored_config(c);
	move_leader_off_primary(c, now_ms());
	if (c->steady && st.revision == c->steady_rev)
		return;
	c->steady = false;

	struct ha_view v;
	memset(&v, 0, sizeof v);
	v.maximum_lag = c->ha.maximum_lag_on_failover;
	v.candidate_timeout_ms = c->t.candidate_timeout_ms;
	char *s;
	if ((s = get_key(c, "pause", NULL))) {
		v.paused = true;
		mem_free(s);
	}
	if ((s = get_key(c, "initialize", NULL))) {
		v.initialized = true;
		snprintf(v.sysid, sizeof v.sysid, "%s", s);
		mem_free(s);
	}
	if ((s = get_key(c, "leader", NULL))) {
		v.has_leader = true;
		snprintf(v.leader, sizeof v.leader, "%s", s);
		mem_free(s);
	}
	if ((s = get_key(c, "last_leader", NULL))) {
		snprintf(v.last_leader, sizeof v.last_leader, "%s", s);
		mem_free(s);
	}
	if ((s = get_key(c, "sync", NULL))) {
		json_t *o = json_loads(s, 0, NULL);
		const char *mode =
			o ? json_string_value(json_object_get(o, "mode")) : NULL;
		json_t *arr = o ? json_object_get(o, "standbys") : NULL;
		if (mode && (strcmp(mode, "on") == 0 ||
			     strcmp(mode, "strict") == 0) &&
		    json_is_array(arr)) {
			v.sync_active = true;
			v.sync_k = (unsigned)json_integer_value(
				json_object_get(o, "k"));
			size_t i;
			json_t *e;
			json_array_foreach(arr, i, e)
			{
				if (v.nsync < 16 && json_is_string(e))
					snprintf(v.sync_standbys[v.nsync++],
						 64, "%s", json_string_value(e));
			}
		}
		json_decref(o);
		mem_free(s);
	}
	uint64_t fo_rev = 0;
	if ((s = get_key(c, "failover", &fo_rev))) {
		json_t *o = json_loads(s, 0, NULL);
		const char *to =
			o ? json_string_value(json_object_get(o, "to")) : NULL;
		if (to && *to) {
			v.has_failover = true;
			snprintf(v.failover_to, sizeof v.failover_to, "%s", to);
		}
		json_decref(o);
		mem_free(s);
	}
	uint64_t cand_rev = 0;
	if ((s = get_key(c, "candidate", &cand_rev))) {
		json_t *o = json_loads(s, 0, NULL);
		const char *n = o ? json_string_value(json_object_get(o, "name"))
				  : NULL;
		v.has_candidate = true;
		snprintf(v.candidate, sizeof v.candidate, "%s", n ? n : "");
		json_decref(o);
		mem_free(s);
		if (cand_rev != c->cand_rev) {
			c->cand_rev = cand_rev;
			c->cand_first_ms = now_ms();
		}
		v.candidate_age_ms = now_ms() - c->cand_first_ms;
	}

	char prefix[256];
	ha_key(prefix, sizeof prefix, c->cluster, "members/");
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev;
	if (rs_fsm_range(rs_store_fsm(c->store), prefix, strlen(prefix), true,
			 0, &kvs, &n, &rev) != 0)
		return;
	struct ha_member *ms = mem_calloc(n ? n : 1, sizeof *ms);
	if (!ms) {
		rs_kvs_free(kvs, n);
		return;
	}
	size_t nm = 0;
	uint64_t now = now_ms();
	for (size_t i = 0; i < n; i++) {
		if (ha_member_decode(kvs[i].value, kvs[i].value_len,
				     &ms[nm]) == 0) {
			/* A record whose node stopped reporting is not a
			 * candidate, even before its lease takes it away. */
			if (!is_fresh(c, &ms[nm], now))
				continue;
			if (ms[nm].role == HA_ROLE_PRIMARY &&
			    v.has_leader &&
			    strcmp(ms[nm].name, v.leader) == 0 &&
			    ms[nm].lsn_current > c->last_primary_lsn)
				c->last_primary_lsn = ms[nm].lsn_current;
			nm++;
		}
	}
	rs_kvs_free(kvs, n);
	v.members = ms;
	v.nmembers = nm;
	v.last_primary_lsn = c->last_primary_lsn;
	if (v.has_leader) {
		c->leader_gone_ms = 0;
	} else {
		if (c->leader_gone_ms == 0)
			c->leader_gone_ms = now;
		for (size_t i = 0; i < c->nfresh; i++) {
			if (strcmp(c->fresh[i].name, v.last_leader) != 0)
				continue;
			if (c->fresh[i].changed_ms > c->leader_gone_ms)
				v.last_leader_recent = true;
			/* its record exists (seen, maybe not yet changed) */
			if (now - c->ready_ms < c->t.pending_ms)
				v.last_leader_pending = true;
		}
	}

	/* The lease is gone and a failover decision is near: the records
	 * may be up to a report interval old, so ask the replicas first. */
	if (v.has_leader || !v.initialized || v.paused || v.has_candidate ||
	    !c->client) {
		if (v.has_leader)
			c->poll = POLL_IDLE;
	} else {
		if (c->poll == POLL_DONE &&
		    now_ms() - c->poll_done_ms > c->t.poll_reuse_ms)
			c->poll = POLL_IDLE;
		if (c->poll == POLL_IDLE)
			poll_start(c, ms, nm);
		if (c->poll == POLL_RUNNING) {
			mem_free(ms);
			return; /* looked at again when the answers are in */
		}
		poll_apply(c, ms, nm);
	}

	struct ha_action act;
	ha_decide(&v, &act);
	/* nothing can change without a store write while a leader holds the
	 * key and no decision or request is pending (member freshness only
	 * matters once the key is gone, and that is a write) */
	if (act.kind == HA_ACT_NONE && !v.has_candidate && !v.has_failover &&
	    (v.has_leader || n == 0)) {
		c->steady = true;
		c->steady_rev = st.revision;
	}
	if (act.kind == HA_ACT_NONE) {
		if (strcmp(act.why, c->last_why) != 0)
			log_debug("ha-ctl no action: %s", act.why);
		snprintf(c->last_why, sizeof c->last_why, "%s", act.why);
		mem_free(ms);
		return;
	}
	c->last_why[0] = '\0';
	char key[256];
	ha_key(key, sizeof key, c->cluster, "candidate");
	struct rs_cmd cmd;
	memset(&cmd, 0, sizeof cmd);
	char *val = NULL;
	if (act.kind == HA_ACT_SET_CANDIDATE) {
		json_t *o = json_pack("{s:s,s:s}", "name", act.name, "reason",
				      act.reason);
		char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		val = js ? mem_strdup(js) : NULL;
		free(js);
		if (!val) {
			mem_free(ms);
			return;
		}
		cmd.op = RS_OP_PUT;
		cmd.flags = RS_CMD_HAS_PREV;
		cmd.prev_rev = 0; /* create only */
		cmd.value.p = val;
		cmd.value.len = (uint32_t)strlen(val);
		log_info("ha-ctl candidate=%s reason=%s: %s", act.name,
			 act.reason, act.why);
	} else if (act.kind == HA_ACT_DROP_FAILOVER) {
		ha_key(key, sizeof key, c->cluster, "failover");
		cmd.op = RS_OP_DELETE;
		cmd.flags = RS_CMD_HAS_PREV;
		cmd.prev_rev = fo_rev;
		log_warn("ha-ctl %s", act.why);
	} else {
		cmd.op = RS_OP_DELETE;
		cmd.flags = RS_CMD_HAS_PREV;
		cmd.prev_rev = cand_rev;
		log_info("ha-ctl candidate cleared: %s", act.why);
	}
	cmd.key.p = key;
	cmd.key.len = (uint32_t)strlen(key);
	if (kv_submit(c->kv, &cmd, c->t.write_timeout_ms, on_written, c) == 0)
		c->inflight = true;
	mem_free(val);
	mem_free(ms);
}

static void use_ha(struct ha_ctl *c, const struct cfg_ha *h)
{
	c->ha = *h;
	ha_ctl_timing(h->ttl_ms, h->loop_wait_ms, c->interval_ms, &c->t);
}

int ha_ctl_follow_config(struct ha_ctl *c, const char *json)
{
	struct cfg_ha h;
	char err[256];
	if (cfg_ha_from_json(c->cfg, json, &h, err, sizeof err) != 0) {
		log_error("ha-ctl %s: deciding with the [ha] in force (ttl "
			  "%ums, loop_wait %ums)",
			  err, c->ha.ttl_ms, c->ha.loop_wait_ms);
		return ERR_INVAL;
	}
	char d[256];
	cfg_ha_diff(&c->ha, &h, d, sizeof d);
	if (d[0])
		log_info("ha-ctl following the cluster's [ha]: %s", d);
	use_ha(c, &h);
	return 0;
}

/* The config key changed (or was seen for the first time): follow it. */
static void follow_stored_config(struct ha_ctl *c)
{
	uint64_t rev = 0;
	char *s = get_key(c, "config", &rev);
	if (s && rev != c->ha_rev) {
		c->ha_rev = rev;
		(void)ha_ctl_follow_config(c, s);
	}
	mem_free(s);
}

static void on_timer(uv_timer_t *t)
{
	look(t->data);
}

int ha_ctl_new(uv_loop_t *loop, struct rs_store *store, struct kv *kv,
	       const struct ha_ctl_options *o, struct ha_ctl **out)
{
	struct ha_ctl *c = mem_calloc(1, sizeof *c);
	if (!c)
		return ERR_NOMEM;
	c->loop = loop;
	c->store = store;
	c->kv = kv;
	c->cluster = mem_strdup(o->cluster);
	if (!c->cluster) {
		mem_free(c);
		return ERR_NOMEM;
	}
	c->interval_ms = o->interval_ms ? o->interval_ms : 100;
	c->cfg = o->cfg;
	struct cfg_ha h;
	cfg_ha_of(o->cfg, &h);
	use_ha(c, &h);
	c->client = o->client;
	c->self = o->self;
	if (o->token && !(c->token = mem_strdup(o->token))) {
		mem_free(c->cluster);
		mem_free(c);
		return ERR_NOMEM;
	}
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	uv_timer_start(&c->timer, on_timer, c->interval_ms, c->interval_ms);
	*out = c;
	return 0;
}

const struct ha_ctl_timing *ha_ctl_timing_of(const struct ha_ctl *c)
{
	return &c->t;
}

const struct cfg_ha *ha_ctl_ha_of(const struct ha_ctl *c)
{
	return &c->ha;
}

void ha_ctl_poke(struct ha_ctl *c)
{
	look(c);
}

/* closed once the timer is and no poll request waits for its answer
 * (each has a timeout) */
static void maybe_closed(struct ha_ctl *c)
{
	if (!c->closing || !c->timer_closed || c->poll_inflight > 0 ||
	    c->move_inflight > 0)
		return;
	void (*cb)(void *) = c->close_cb;
	c->close_cb = NULL;
	if (cb)
		cb(c->close_arg);
}

static void on_closed(uv_handle_t *h)
{
	struct ha_ctl *c = h->data;
	c->timer_closed = true;
	maybe_closed(c);
}

void ha_ctl_close(struct ha_ctl *c, void (*cb)(void *arg), void *arg)
{
	c->closing = true;
	c->close_cb = cb;
	c->close_arg = arg;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_closed);
}

void ha_ctl_free(struct ha_ctl *c)
{
	if (!c)
		return;
	mem_free(c->fresh);
	mem_free(c->poll_res);
	mem_free(c->token);
	mem_free(c->cluster);
	mem_free(c);
}
