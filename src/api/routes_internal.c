/* routes_internal.c - node-to-node routes (/internal/...): registration,
 * removal notice, store commands from followers' kv clients, WAL position. */
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

void api_route_register(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "id", "name", "peer", "api",
					      NULL };
	uint64_t id;
	const char *name, *peer, *api;
	if (api_only_fields(req, b, fields) ||
	    api_get_id(req, b, "id", true, &id) ||
	    api_get_str(req, b, "name", true, RS_MAX_NAME, &name, NULL) ||
	    api_get_str(req, b, "peer", true, RS_MAX_ADDR, &peer, NULL) ||
	    api_get_str(req, b, "api", true, RS_MAX_ADDR, &api, NULL))
		return;
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	if (api_refuse_pg_name(a, req, name, "register"))
		return;
	struct op *o = api_op_new(a, req, OP_REGISTER);
	if (!o)
		return;
	api_started(o,
		    rs_store_register_member(a->store, id, name, peer, api,
					     api_on_store_done, o),
		    "register");
}

/* A store command encoded by a follower's kv client (src/api/kv.c). */
void api_route_apply(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	size_t len;
	const char *body = http_req_body(req, &len);
	struct rs_cmd c;
	if (rs_cmd_decode(body, len, &c) != 0) {
		api_respond_error(req, 400, ERR_CORRUPT,
				  "malformed store command");
		return;
	}
	if (c.op == RS_OP_LEASE_EXPIRE || c.op == RS_OP_MEMBER_SET ||
	    c.op == RS_OP_MEMBER_DEL) {
		api_respond_error(req, 400, ERR_INVAL,
				  "%s is proposed by the leader itself",
				  rs_op_name(c.op));
		return;
	}
	/* everything stored is read back as JSON strings (GET /v1/kv):
	 * bytes that are not UTF-8 would make every read of the key fail */
	if (!api_utf8_valid(c.key.p, c.key.len) ||
	    !api_utf8_valid(c.value.p, c.value.len)) {
		api_respond_error(req, 400, ERR_INVAL,
				  "%s: the key or value is not UTF-8",
				  rs_op_name(c.op));
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct op *o = api_op_new(a, req, OP_APPLY);
	if (!o)
		return;
	api_started(o, rs_store_submit(a->store, &c, api_on_store_done, o),
		    "apply");
}

void api_route_removed(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "id", "name", NULL };
	uint64_t id;
	const char *name;
	if (api_only_fields(req, b, fields) ||
	    api_get_id(req, b, "id", true, &id) ||
	    api_get_str(req, b, "name", true, RS_MAX_NAME, &name, NULL))
		return;
	if (strcmp(name, a->name) != 0 ||
	    id != rs_member_id(a->cluster, a->name)) {
		api_respond_error(req, 409, ERR_CONFLICT,
				  "this node is %s, not %s", a->name, name);
		return;
	}
	rs_store_mark_removed(a->store);
	api_respond_json(req, 200, json_pack("{s:s}", "removed", a->name));
}

/* ------------------------------------------------------------------ */
/* GET /internal/lsn: the controller asks a replica for its WAL position */
/* ------------------------------------------------------------------ */

struct lsn_op {
	struct http_req *req;
	char name[RS_MAX_NAME + 1];
};

static void on_lsn(void *arg, const struct ha_lsn_answer *ans)
{
	struct lsn_op *o = arg;
	if (ans->err != 0)
		api_respond_err(o->req, ans->err, "PostgreSQL probe");
	else
		api_respond_json(
			o->req, 200,
			json_pack("{s:s,s:b,s:i,s:I,s:I,s:I}", "name", o->name,
				  "in_recovery", ans->in_recovery, "timeline",
				  (int)ans->timeline, "lsn_received",
				  (json_int_t)ans->received, "lsn_replayed",
				  (json_int_t)ans->replayed, "lsn_current",
				  (json_int_t)ans->current));
	mem_free(o);
}

void api_route_lsn(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	if (!a->agent_lsn) {
		api_respond_error(req, 503, ERR_UNAVAILABLE,
				  "no PostgreSQL is managed on this node");
		return;
	}
	struct lsn_op *o = mem_calloc(1, sizeof *o);
	if (!o) {
		api_respond_err(req, ERR_NOMEM, "lsn");
		return;
	}
	o->req = req;
	snprintf(o->name, sizeof o->name, "%s", a->name);
	int rv = a->agent_lsn(a->agent_ctx, on_lsn, o);
	if (rv != 0) {
		mem_free(o);
		api_respond_err(req, rv, "PostgreSQL probe");
	}
}
