/* routes_cluster.c - the cluster routes: Raft membership (/v1/members*,
 * /v1/transfer-leader) and the HA operator actions (/cluster, /switchover,
 * /failover, /pause, /resume, /history, /reinitialize). */
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
#include "ha/ha_agent.h"
#include "ha/ha_member.h"

void api_route_members(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct rs_member *ms = NULL;
	size_t n = 0;
	int rv = rs_store_members(a->store, &ms, &n);
	if (rv != 0) {
		api_respond_err(req, rv, "members");
		return;
	}
	struct rs_member l;
	uint64_t lid = 0;
	const char *lname = "";
	if (rs_store_leader(a->store, &l) == 0) {
		lid = l.id;
		lname = l.name;
	}
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, api_member_json(&ms[i], lid));
	mem_free(ms);
	api_respond_json(req, 200,
			 json_pack("{s:s,s:s,s:o}", "cluster", a->cluster,
				   "leader", lname, "members", arr));
}

static void member_change(struct api *a, struct http_req *req, json_t *b,
			  int kind)
{
	static const char *const add_fields[] = { "name", "peer_url", "api_url",
						  NULL };
	static const char *const name_only[] = { "name", NULL };
	const char *name, *peer = NULL, *api = NULL;
	if (api_only_fields(req, b, kind == OP_ADD ? add_fields : name_only))
		return;
	bool name_required = kind != OP_TRANSFER;
	if (api_get_str(req, b, "name", name_required, RS_MAX_NAME, &name,
			NULL))
		return;
	if (name && !api_valid_name(name)) {
		api_respond_error(req, 400, ERR_INVAL,
				  "invalid member name '%s' (letters, digits, "
				  "'_', '.', '-')",
				  name);
		return;
	}
	if (kind == OP_ADD &&
	    (api_get_str(req, b, "peer_url", true, RS_MAX_ADDR, &peer, NULL) ||
	     api_get_str(req, b, "api_url", false, RS_MAX_ADDR, &api, NULL)))
		return;
	if (kind == OP_ADD && !api_raft_address(peer)) {
		api_respond_error(req, 400, ERR_INVAL,
				  "peer_url must be IPV4-ADDRESS:PORT (libraft's "
				  "TCP transport takes IPv4 addresses only; "
				  "`pgwarden member add` resolves a host name "
				  "before sending)");
		return;
	}
	if (api && *api && strncmp(api, "http://", 7) != 0 &&
	    strncmp(api, "https://", 8) != 0) {
		api_respond_error(
			req, 400, ERR_INVAL,
			"api_url must start with http:// or https://");
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	if (kind == OP_ADD && api_refuse_pg_name(a, req, name, "member add"))
		return;
	struct op *o = api_op_new(a, req, kind);
	if (!o)
		return;
	if (name)
		snprintf(o->name, sizeof o->name, "%s", name);
	int rv;
	switch (kind) {
	case OP_ADD:
		rv = rs_store_member_add(a->store, name, peer, api,
					 api_on_store_done, o);
		api_started(o, rv, "member add");
		break;
	case OP_PROMOTE:
		rv = rs_store_member_promote(a->store, name, api_on_store_done,
					     o);
		api_started(o, rv, "member promote");
		break;
	case OP_REMOVE: {
		struct rs_member m;
		if (api_find_member(a, name, &m)) {
			o->id = m.id;
			snprintf(o->api, sizeof o->api, "%s", m.api);
		}
		rv = rs_store_member_remove(a->store, name, api_on_store_done,
					    o);
		api_started(o, rv, "member remove");
		break;
	}
	default:
		rv = rs_store_transfer(a->store, name, api_on_store_done, o);
		api_started(o, rv, "transfer leadership");
		break;
	}
}

/* ------------------------------------------------------------------ */
/* HA operator actions: switchover, failover, pause, history, reinit    */
/* ------------------------------------------------------------------ */

/* Value of /service/<cluster>/<leaf> from the local store (mem_malloc'd)
 * or NULL; *rev its mod revision. */
static char *ha_get(struct api *a, const char *leaf, uint64_t *rev)
{
	char key[256];
	ha_key(key, sizeof key, a->cluster, leaf);
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t r;
	char *val = NULL;
	if (rs_fsm_range(rs_store_fsm(a->store), key, strlen(key), false, 1,
			 &kvs, &n, &r) == 0 &&
	    n == 1) {
		val = mem_strdup(kvs[0].value);
		if (rev)
			*rev = kvs[0].mod_rev;
	}
	rs_kvs_free(kvs, n);
	return val;
}

static bool ha_member_get(struct api *a, const char *name, struct ha_member *m)
{
	char key[256];
	ha_member_key(key, sizeof key, a->cluster, name);
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t r;
	bool ok = false;
	if (rs_fsm_range(rs_store_fsm(a->store), key, strlen(key), false, 1,
			 &kvs, &n, &r) == 0 &&
	    n == 1)
		ok = ha_member_decode(kvs[0].value, kvs[0].value_len, m) == 0;
	rs_kvs_free(kvs, n);
	return ok;
}

/* Write (or, value NULL, delete) an HA key through raft; create_only puts
 * fail with 409 when the key exists. */
static void ha_write(struct api *a, struct http_req *req, const char *leaf,
		     const char *value, bool create_only, uint64_t del_rev,
		     const char *msg)
{
	char key[256];
	ha_key(key, sizeof key, a->cluster, leaf);
	struct rs_cmd c;
	memset(&c, 0, sizeof c);
	c.key.p = key;
	c.key.len = (uint32_t)strlen(key);
	if (value) {
		c.op = RS_OP_PUT;
		c.value.p = value;
		c.value.len = (uint32_t)strlen(value);
		if (create_only) {
			c.flags = RS_CMD_HAS_PREV;
			c.prev_rev = 0;
		}
	} else {
		c.op = RS_OP_DELETE;
		if (del_rev) {
			c.flags = RS_CMD_HAS_PREV;
			c.prev_rev = del_rev;
		}
	}
	struct op *o = api_op_new(a, req, OP_ACTION);
	if (!o)
		return;
	snprintf(o->msg, sizeof o->msg, "%s", msg);
	api_started(o, rs_store_submit(a->store, &c, api_on_store_done, o),
		    msg);
}

/* "2026-11-26T12:00:00Z", "2026-11-26T12:00:00+01:00" or epoch seconds. */
static int parse_when(json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -1;
	int64_t t = (int64_t)timegm(&tm);
	if (*end == 'Z' && end[1] == '\0') {
		*out = t;
		return 0;
	}
	int hh, mm;
	char sign;
	if (sscanf(end, "%c%2d:%2d", &sign, &hh, &mm) == 3 &&
	    (sign == '+' || sign == '-') && strlen(end) == 6) {
		int64_t off = (int64_t)(hh * 3600 + mm * 60);
		*out = sign == '+' ? t - off : t + off;
		return 0;
	}
	return -1;
}

static void switchover(struct api *a, struct http_req *req, json_t *b, bool del)
{
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	uint64_t rev = 0;
	char *cur = ha_get(a, "switchover", &rev);
	if (del) {
		if (!cur) {
			api_respond_error(req, 404, ERR_NOTFOUND,
					  "no switchover is pending");
			return;
		}
		mem_free(cur);
		ha_write(a, req, "switchover", NULL, false, rev,
			 "switchover cancelled");
		return;
	}
	if (cur) {
		api_respond_error(req, 409, ERR_CONFLICT,
				  "a switchover is pending already: %s", cur);
		mem_free(cur);
		return;
	}
	static const char *const fields[] = { "leader", "candidate",
					      "scheduled_at", NULL };
	const char *from, *to;
	if (api_only_fields(req, b, fields) ||
	    api_get_str(req, b, "leader", false, RS_MAX_NAME, &from, NULL) ||
	    api_get_str(req, b, "candidate", false, RS_MAX_NAME, &to, NULL))
		return;
	int64_t at = 0;
	json_t *when = json_object_get(b, "scheduled_at");
	if (when && parse_when(when, &at) != 0) {
		api_respond_error(
			req, 400, ERR_INVAL,
			"scheduled_at: an ISO 8601 time with Z or an "
			"offset (2026-11-26T12:00:00Z), or epoch seconds");
		return;
	}
	char *leader = ha_get(a, "leader", NULL);
	if (!leader) {
		api_respond_error(req, 412, ERR_UNAVAILABLE,
				  "no primary holds the lease: use failover");
		return;
	}
	if (from && *from && strcmp(from, leader) != 0) {
		api_respond_error(req, 412, ERR_CONFLICT,
				  "%s is not the primary (%s is)", from,
				  leader);
		mem_free(leader);
		return;
	}
	if (to && *to) {
		struct ha_member m;
		const char *no = NULL;
		if (strcmp(to, leader) == 0)
			no = "it is the primary already";
		else if (!ha_member_get(a, to, &m))
			no = "it does not report";
		else if (m.tags.nofailover || m.tags.failover_priority <= 0)
			no = "it is tagged nofailover";
		else if (m.role != HA_ROLE_REPLICA ||
			 m.state != HA_ST_STREAMING)
			no = "it is not a streaming replica";
		if (no) {
			api_respond_error(req, 412, ERR_CONFLICT,
					  "cannot switch over to %s: %s", to,
					  no);
			mem_free(leader);
			return;
		}
	}
	if (!to || !*to) {
		/* any candidate: at least one must be able to take over now */
		char prefix[256];
		ha_key(prefix, sizeof prefix, a->cluster, "members/");
		struct rs_kv *kvs = NULL;
		size_t n = 0;
		uint64_t r;
		bool any = false;
		if (rs_fsm_range(rs_store_fsm(a->store), prefix, strlen(prefix),
				 true, 0, &kvs, &n, &r) == 0) {
			for (size_t i = 0; i < n; i++) {
				struct ha_member m;
				if (ha_member_decode(kvs[i].value,
						     kvs[i].value_len,
						     &m) == 0 &&
				    strcmp(m.name, leader) != 0 &&
				    m.role == HA_ROLE_REPLICA &&
				    m.state == HA_ST_STREAMING &&
				    !m.tags.nofailover &&
				    m.tags.failover_priority > 0)
					any = true;
			}
			rs_kvs_free(kvs, n);
		}
		if (!any && at == 0) {
			api_respond_error(req, 412, ERR_UNAVAILABLE,
					  "no streaming replica may take over");
			mem_free(leader);
			return;
		}
	}
	json_t *v = json_pack("{s:s,s:s,s:I}", "from", leader, "to",
			      to ? to : "", "at", (json_int_t)at);
	char *js = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	char msg[200];
	if (at > 0)
		snprintf(msg, sizeof msg, "switchover from %s to %s scheduled",
			 leader, to && *to ? to : "the best replica");
	else
		snprintf(msg, sizeof msg, "switchover from %s to %s started",
			 leader, to && *to ? to : "the best replica");
	mem_free(leader);
	if (!js) {
		api_respond_err(req, ERR_NOMEM, "switchover");
		return;
	}
	ha_write(a, req, "switchover", js, true, 0, msg);
	free(js);
}

void api_route_failover(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "candidate", "leader", NULL };
	const char *to, *from;
	if (api_only_fields(req, b, fields) ||
	    api_get_str(req, b, "candidate", true, RS_MAX_NAME, &to, NULL) ||
	    api_get_str(req, b, "leader", false, RS_MAX_NAME, &from, NULL))
		return;
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct ha_member m;
	if (!ha_member_get(a, to, &m)) {
		api_respond_error(req, 412, ERR_NOTFOUND,
				  "cannot fail over to %s: it does not report",
				  to);
		return;
	}
	if (m.tags.nofailover || m.tags.failover_priority <= 0) {
		api_respond_error(
			req, 412, ERR_CONFLICT,
			"cannot fail over to %s: it is tagged nofailover", to);
		return;
	}
	char *leader = ha_get(a, "leader", NULL);
	if (leader && strcmp(leader, to) == 0) {
		api_respond_error(req, 412, ERR_CONFLICT,
				  "%s is the primary already", to);
		mem_free(leader);
		return;
	}
	json_t *v =
		json_pack("{s:s,s:s}", "to", to, "from", leader ? leader : "");
	char *js = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	char msg[200];
	snprintf(msg, sizeof msg, "failover to %s started", to);
	mem_free(leader);
	if (!js) {
		api_respond_err(req, ERR_NOMEM, "failover");
		return;
	}
	ha_write(a, req, "failover", js, true, 0, msg);
	free(js);
}

static void pause_resume(struct api *a, struct http_req *req, bool pause)
{
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	uint64_t rev = 0;
	char *cur = ha_get(a, "pause", &rev);
	bool paused = cur != NULL;
	mem_free(cur);
	if (pause == paused) {
		api_respond_json(
			req, 200,
			json_pack("{s:s}", "message",
				  pause ? "already paused" : "not paused"));
		return;
	}
	if (pause)
		ha_write(a, req, "pause", "true", true, 0,
			 "maintenance mode on: no automatic failover");
	else
		ha_write(a, req, "pause", NULL, false, rev,
			 "maintenance mode off");
}

void api_route_history(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	char *h = ha_get(a, "history", NULL);
	json_t *arr = h ? json_loads(h, 0, NULL) : NULL;
	mem_free(h);
	if (!json_is_array(arr)) {
		json_decref(arr);
		arr = json_array();
	}
	api_respond_json(
		req, 200,
		json_pack("{s:s,s:o}", "cluster", a->cluster, "history", arr));
}

void api_route_reinit(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	if (!a->agent_reinit) {
		api_respond_error(req, 503, ERR_UNAVAILABLE,
				  "this node runs no PostgreSQL");
		return;
	}
	int rv = a->agent_reinit(a->agent_ctx);
	if (rv == ERR_CONFLICT) {
		api_respond_error(
			req, 409, rv,
			"%s is the primary: it cannot be reinitialized",
			a->name);
		return;
	}
	if (rv != 0) {
		api_respond_err(req, rv, "reinitialize");
		return;
	}
	api_respond_json(req, 200,
			 json_pack("{s:s}", "message",
				   "reinitialize scheduled: the data directory "
				   "is wiped and cloned from the primary"));
}

void api_route_cluster(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	char prefix[256], key[256];
	ha_key(prefix, sizeof prefix, a->cluster, "members/");
	struct rs_fsm *f = rs_store_fsm(a->store);
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev;
	int rv = rs_fsm_range(f, prefix, strlen(prefix), true, 0, &kvs, &n,
			      &rev);
	if (rv != 0) {
		api_respond_err(req, rv, "cluster");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct ha_member m;
		if (ha_member_decode(kvs[i].value, kvs[i].value_len, &m) == 0)
			json_array_append_new(arr, api_member_obj(&m));
	}
	rs_kvs_free(kvs, n);
	json_t *o = json_pack("{s:s,s:o,s:I}", "cluster", a->cluster, "members",
			      arr, "revision", (json_int_t)rev);
	const char *leaves[] = { "leader",     "initialize", "pause",
				 "switchover", "failover",   NULL };
	for (size_t i = 0; leaves[i]; i++) {
		ha_key(key, sizeof key, a->cluster, leaves[i]);
		kvs = NULL;
		n = 0;
		if (rs_fsm_range(f, key, strlen(key), false, 1, &kvs, &n,
				 &rev) == 0 &&
		    n == 1)
			json_object_set_new(o, leaves[i],
					    json_string(kvs[0].value));
		else
			json_object_set_new(o, leaves[i], json_null());
		rs_kvs_free(kvs, n);
	}
	api_respond_json(req, 200, o);
}

void api_route_member_add(struct api *a, struct http_req *req, json_t *b)
{
	member_change(a, req, b, OP_ADD);
}

void api_route_member_promote(struct api *a, struct http_req *req, json_t *b)
{
	member_change(a, req, b, OP_PROMOTE);
}

void api_route_member_remove(struct api *a, struct http_req *req, json_t *b)
{
	member_change(a, req, b, OP_REMOVE);
}

void api_route_transfer_leader(struct api *a, struct http_req *req, json_t *b)
{
	member_change(a, req, b, OP_TRANSFER);
}

void api_route_switchover(struct api *a, struct http_req *req, json_t *b)
{
	switchover(a, req, b, false);
}

void api_route_switchover_cancel(struct api *a, struct http_req *req, json_t *b)
{
	switchover(a, req, b, true);
}

void api_route_pause(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	pause_resume(a, req, true);
}

void api_route_resume(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	pause_resume(a, req, false);
}
