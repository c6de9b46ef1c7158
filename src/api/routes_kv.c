/* routes_kv.c - the key-value and lease routes (/v1/kv, /v1/kv/put,
 * /v1/kv/delete, /v1/lease/grant, keepalive, revoke, list). */
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

/* ------------------------------------------------------------------ */
/* Handlers                                                             */
/* ------------------------------------------------------------------ */

void api_route_kv_get(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	static const char *const allowed[] = { "key", "prefix", "serializable",
					       "limit", NULL };
	const char *bad = http_req_unknown_query(req, allowed);
	if (bad) {
		api_respond_error(req, 400, ERR_INVAL,
				  "unknown query parameter '%s'", bad);
		return;
	}
	const char *key = http_req_query(req, "key");
	if (!key || !*key) {
		api_respond_error(req, 400, ERR_INVAL,
				  "missing query parameter 'key'");
		return;
	}
	if (strlen(key) > RS_MAX_KEY) {
		api_respond_error(req, 400, ERR_INVAL,
				  "key is longer than %d bytes", RS_MAX_KEY);
		return;
	}
	int prefix = api_query_bool(req, "prefix");
	int ser = api_query_bool(req, "serializable");
	if (prefix < 0 || ser < 0) {
		api_respond_error(req, 400, ERR_INVAL,
				  "prefix and serializable take true or false");
		return;
	}
	size_t limit = 0;
	const char *lim = http_req_query(req, "limit");
	if (lim) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(lim, &end, 10);
		if (!*lim || *end || errno || *lim == '-') {
			api_respond_error(
				req, 400, ERR_INVAL,
				"limit must be a non-negative integer");
			return;
		}
		limit = (size_t)v;
	}
	if (!ser && !rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct op *o = api_op_new(a, req, OP_GET);
	if (!o)
		return;
	o->key = mem_strdup(key);
	o->prefix = prefix;
	o->limit = limit;
	if (!o->key) {
		api_respond_err(req, ERR_NOMEM, "read");
		api_op_free(o);
		return;
	}
	if (ser) {
		struct rs_result res = { 0 };
		api_on_store_done(o, 0, &res);
		return;
	}
	api_started(o, rs_store_barrier(a->store, api_on_store_done, o),
		    "read");
}

void api_route_kv_put(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "key", "value", "lease",
					      "prev_revision", NULL };
	const char *key, *value, *lease_s;
	size_t vlen;
	bool has_prev;
	uint64_t prev, lease = 0;
	if (api_only_fields(req, b, fields) ||
	    api_get_str(req, b, "key", true, RS_MAX_KEY, &key, NULL) ||
	    api_get_str(req, b, "value", true, RS_MAX_VALUE, &value, &vlen) ||
	    api_get_str(req, b, "lease", false, 16, &lease_s, NULL) ||
	    api_get_u64(req, b, "prev_revision", &has_prev, &prev))
		return;
	if (!*key) {
		api_respond_error(req, 400, ERR_INVAL, "key must not be empty");
		return;
	}
	if (lease_s && !api_parse_hex_id(lease_s, &lease)) {
		api_respond_error(req, 400, ERR_INVAL,
				  "lease must be a hex id");
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct rs_cmd c = {
		.op = RS_OP_PUT,
		.flags = has_prev ? RS_CMD_HAS_PREV : 0,
		.key = { key, (uint32_t)strlen(key) },
		.value = { value, (uint32_t)vlen },
		.lease = lease,
		.prev_rev = prev,
	};
	api_submit(a, req, OP_PUT, &c, "put");
}

void api_route_kv_delete(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "key", "prefix", "prev_revision",
					      NULL };
	const char *key;
	bool has_prev;
	uint64_t prev;
	if (api_only_fields(req, b, fields) ||
	    api_get_str(req, b, "key", true, RS_MAX_KEY, &key, NULL) ||
	    api_get_u64(req, b, "prev_revision", &has_prev, &prev))
		return;
	json_t *p = json_object_get(b, "prefix");
	if (p && !json_is_boolean(p)) {
		api_respond_error(req, 400, ERR_INVAL,
				  "'prefix' must be a boolean");
		return;
	}
	bool prefix = p && json_is_true(p);
	if (!*key) {
		api_respond_error(req, 400, ERR_INVAL, "key must not be empty");
		return;
	}
	if (prefix && has_prev) {
		api_respond_error(
			req, 400, ERR_INVAL,
			"prefix and prev_revision cannot be combined");
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct rs_cmd c = {
		.op = RS_OP_DELETE,
		.flags = (prefix ? RS_CMD_PREFIX : 0u) |
			 (has_prev ? RS_CMD_HAS_PREV : 0u),
		.key = { key, (uint32_t)strlen(key) },
		.prev_rev = prev,
	};
	api_submit(a, req, OP_DELETE, &c, "delete");
}

void api_route_lease_grant(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "ttl", NULL };
	if (api_only_fields(req, b, fields))
		return;
	json_t *t = json_object_get(b, "ttl");
	if (!t || !json_is_number(t)) {
		api_respond_error(req, 400, ERR_INVAL,
				  "'ttl' (seconds, a number) is required");
		return;
	}
	double ttl = json_number_value(t);
	if (!(ttl >= 0.1 && ttl <= 86400.0)) {
		api_respond_error(req, 400, ERR_INVAL,
				  "ttl must be between 0.1 and 86400 seconds");
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct rs_cmd c = { .op = RS_OP_LEASE_GRANT,
			    .ttl_ms = (uint64_t)(ttl * 1000.0 + 0.5) };
	api_submit(a, req, OP_GRANT, &c, "lease grant");
}

static void lease_id_op(struct api *a, struct http_req *req, json_t *b,
			int kind)
{
	static const char *const fields[] = { "id", NULL };
	uint64_t id;
	if (api_only_fields(req, b, fields) ||
	    api_get_id(req, b, "id", true, &id))
		return;
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct rs_cmd c = { .op = kind == OP_KEEPALIVE ? RS_OP_LEASE_KEEPALIVE
						       : RS_OP_LEASE_REVOKE,
			    .lease = id };
	api_submit(a, req, kind, &c,
		   kind == OP_KEEPALIVE ? "lease keepalive" : "lease revoke");
}

void api_route_lease_keepalive(struct api *a, struct http_req *req, json_t *b)
{
	lease_id_op(a, req, b, OP_KEEPALIVE);
}

void api_route_lease_revoke(struct api *a, struct http_req *req, json_t *b)
{
	lease_id_op(a, req, b, OP_REVOKE);
}

void api_route_lease_list(struct api *a, struct http_req *req, json_t *b)
{
	(void)b;
	if (!rs_store_is_leader(a->store)) {
		api_forward(a, req);
		return;
	}
	struct rs_lease_info *ls = NULL;
	size_t n = 0;
	int rv = rs_fsm_leases(rs_store_fsm(a->store), &ls, &n);
	if (rv != 0) {
		api_respond_err(req, rv, "lease list");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(
			arr, json_pack("{s:o,s:o,s:I,s:I}", "id",
				       api_json_hex(ls[i].id), "ttl",
				       api_json_ttl(ls[i].ttl_ms), "keys",
				       (json_int_t)ls[i].nkeys, "remaining_ms",
				       (json_int_t)rs_store_lease_remaining(
					       a->store, ls[i].id)));
	mem_free(ls);
	api_respond_json(req, 200, json_pack("{s:o}", "leases", arr));
}
