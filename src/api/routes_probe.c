/* routes_probe.c - this node's own state: /status and the load-balancer
 * probes (/primary, /replica, /read-only, /health, /readiness, /). */
#include "api/api_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "wd_lag.h"
#include "ha/ha_agent.h"
#include "ha/ha_member.h"

static const char *state_str(enum rs_state st)
{
	switch (st) {
	case RS_FOLLOWER:
		return "follower";
	case RS_CANDIDATE:
		return "candidate";
	case RS_LEADER:
		return "leader";
	case RS_REMOVED:
		return "removed";
	case RS_UNAVAILABLE:
		break;
	}
	return "unavailable";
}

void api_route_status(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	struct rs_status st;
	rs_store_status_full(a->store, &st);
	struct rs_member l;
	const char *lname = "";
	if (rs_store_leader(a->store, &l) == 0)
		lname = l.name;
	json_t *j = json_pack(
		"{s:o,s:s,s:s,s:s,s:b,s:b,s:b,s:b,s:s,s:o,s:I,s:I,s:I,s:I,"
		"s:I,s:I,s:o,s:I,s:s,s:s,s:s}",
		"id", api_json_hex(st.id), "name", a->name, "cluster",
		a->cluster, "state", state_str(st.state), "is_leader",
		st.state == RS_LEADER, "is_learner",
		st.is_member && st.role != RS_VOTER, "is_member", st.is_member,
		"ready", st.ready, "leader", lname, "leader_id",
		api_json_hex(st.leader_id), "raft_term", (json_int_t)st.term,
		"raft_index", (json_int_t)st.last_index, "commit_index",
		(json_int_t)st.commit_index, "applied_index",
		(json_int_t)st.applied_index, "revision",
		(json_int_t)st.revision, "db_size", (json_int_t)st.db_size,
		"fsm_hash", api_json_hex(st.fsm_hash), "snapshot_index",
		(json_int_t)st.snapshot_index, "api_url", a->api_url,
		"peer_url", a->peer_url, "version", a->version);
	if (j && a->lag) {
		struct wd_lag_stats ls;
		wd_lag_get(a->lag, &ls);
		json_object_set_new(j, "loop",
				    json_pack("{s:I,s:I}", "stalls",
					      (json_int_t)ls.stalls,
					      "worst_stall_ms",
					      (json_int_t)ls.worst_ms));
	}
	api_respond_json(req, 200, j);
}

static json_t *node_status_json(struct api *a, const struct ha_status *st)
{
	json_t *o = api_member_obj(&st->self);
	json_object_set_new(o, "cluster", json_string(a->cluster));
	json_object_set_new(o, "leader", json_string(st->leader));
	json_object_set_new(o, "holds_lease", json_boolean(st->holds_lease));
	json_object_set_new(o, "lease_left_ms",
			    json_integer(st->lease_left_ms));
	json_object_set_new(o, "writable", json_boolean(st->writable));
	json_object_set_new(o, "paused", json_boolean(st->paused));
	json_object_set_new(o, "version", json_string(a->version));
	return o;
}

/* The largest lag a member can report (ha_member.lag_bytes is int64). */
#define LAG_MAX 9223372036854775807ull

/* Parse "16MB", "1048576", "512kB": decimal digits only, then nothing or
 * one of B, kB, MB, GB, TB (1024-based, as PostgreSQL; case ignored), at
 * most LAG_MAX bytes in all. The digits are accumulated with an overflow
 * check, so no value wraps around to a small one. */
int api_parse_lag(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (LAG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (i == 0)
		return -1;
	static const struct {
		const char *unit;
		unsigned shift;
	} units[] = { { "", 0 },    { "B", 0 },	  { "kB", 10 },
		      { "MB", 20 }, { "GB", 30 }, { "TB", 40 } };
	for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
		if (strcasecmp(s + i, units[u].unit) != 0)
			continue;
		if (v > LAG_MAX >> units[u].shift)
			return -1;
		*out = v << units[u].shift;
		return 0;
	}
	return -1;
}

enum probe_kind {
	P_PRIMARY,
	P_REPLICA,
	P_READ_ONLY,
	P_HEALTH,
	P_READINESS,
	P_ROOT,
};

static void probe(struct api *a, struct http_req *req, enum probe_kind k)
{
	/* a malformed lag is the client's error whatever this node is, so it
	 * is checked first: a primary or a store-only node answers 400 too */
	uint64_t max_lag = 0;
	const char *lag = k == P_REPLICA ? http_req_query(req, "lag") : NULL;
	if (lag && api_parse_lag(lag, &max_lag) != 0) {
		api_respond_error(req, 400, ERR_INVAL,
				  "lag must be a byte count or a size with "
				  "a unit (B, kB, MB, GB, TB; 1024-based), "
				  "at most 2^63-1 bytes: not '%.64s'",
				  lag);
		return;
	}
	if (!a->agent_status) {
		api_respond_error(req, 503, ERR_UNAVAILABLE,
				  "this node runs no PostgreSQL");
		return;
	}
	struct ha_status st;
	a->agent_status(a->agent_ctx, &st);
	bool ok = false;
	switch (k) {
	case P_PRIMARY:
	case P_ROOT:
		ok = st.holds_lease && st.writable;
		break;
	case P_REPLICA: {
		ok = st.streaming && !st.self.tags.noloadbalance;
		if (ok && lag)
			ok = st.self.lag_bytes >= 0 &&
			     (uint64_t)st.self.lag_bytes <= max_lag;
		break;
	}
	case P_READ_ONLY:
		ok = (st.holds_lease && st.writable) || st.streaming ||
		     (st.pg_running && !st.writable);
		break;
	case P_HEALTH:
		ok = st.pg_running;
		break;
	case P_READINESS:
		ok = (st.holds_lease && st.writable) || st.streaming;
		break;
	}
	if (!a->probe_body || memcmp(&st, &a->probe_st, sizeof st) != 0) {
		json_t *o = node_status_json(a, &st);
		char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		char *body = js ? mem_malloc(strlen(js) + 2) : NULL;
		if (!body) {
			free(js);
			api_respond_err(req, ERR_NOMEM, "status");
			return;
		}
		size_t n = strlen(js);
		memcpy(body, js, n);
		body[n] = '\n';
		body[n + 1] = '\0';
		free(js);
		mem_free(a->probe_body);
		a->probe_body = body;
		a->probe_len = n + 1;
		a->probe_st = st;
	}
	http_respond(req, ok ? 200 : 503, "application/json", a->probe_body,
		     a->probe_len, NULL, NULL);
}

void api_route_liveness(struct api *a, struct http_req *req, json_t *b)
{
	(void)a;
	(void)b;
	static const char ok[] = "{\"status\":\"ok\"}\n";
	http_respond(req, 200, "application/json", ok, sizeof ok - 1, NULL,
		     NULL);
}

void api_route_primary(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	probe(a, req, P_PRIMARY);
}

void api_route_replica(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	probe(a, req, P_REPLICA);
}

void api_route_read_only(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	probe(a, req, P_READ_ONLY);
}

void api_route_health(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	probe(a, req, P_HEALTH);
}

void api_route_readiness(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	probe(a, req, P_READINESS);
}

void api_route_root(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	probe(a, req, P_ROOT);
}
