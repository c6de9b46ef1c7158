/* api.c - HTTP API: dispatch, shared request/response helpers, forwarding
 * to the leader, the store completion, and follower self-registration.
 * The routes themselves live by resource in routes_*.c (api_int.h).
 *
 * Request flow:
 *   route by path -> method check (405) -> token check for mutating
 *   methods (401/403) -> parse JSON body (400) -> if the operation needs
 *   the leader and this node is not it: forward (503 when no leader is
 *   known or reachable) -> else run it on the store; the store's callback
 *   answers (its errors map to 404/409/503; raft bounds every wait: a
 *   leader that loses its majority fails pending requests).
 * Follower self-registration: a 1 s timer checks this node's registry entry
 * in the local state machine and, when it is missing or stale, sends it to
 * the leader (POST /internal/register).
 */
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

#define FORWARD_TIMEOUT_MS 10000u
#define REGISTER_INTERVAL_MS 1000u

/* ------------------------------------------------------------------ */
/* Responses                                                            */
/* ------------------------------------------------------------------ */

void api_respond_json(struct http_req *req, unsigned status, json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (!s) {
		static const char oom[] =
			"{\"error\":\"out of memory\",\"code\":\"ERR_NOMEM\"}\n";
		http_respond(req, 500, "application/json", oom, sizeof oom - 1,
			     NULL, NULL);
		return;
	}
	size_t n = strlen(s);
	char *body = mem_malloc(n + 2);
	if (body) {
		memcpy(body, s, n);
		body[n] = '\n';
		body[n + 1] = '\0';
		http_respond(req, status, "application/json", body, n + 1,
			     NULL, NULL);
		mem_free(body);
	} else {
		http_respond(req, status, "application/json", s, n, NULL,
			     NULL);
	}
	free(s);
}

void api_respond_error(struct http_req *req, unsigned status, int code,
			  const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	api_respond_json(req, status,
		     json_pack("{s:s,s:s}", "error", msg, "code",
			       err_name(code)));
}

unsigned api_status_of(int err)
{
	switch (err) {
	case ERR_INVAL:
	case ERR_CORRUPT:
		return 400;
	case ERR_AUTH:
		return 403;
	case ERR_NOTFOUND:
		return 404;
	case ERR_CONFLICT:
	case ERR_EXISTS:
		return 409;
	case ERR_TOOBIG:
		return 413;
	case ERR_NOTLEADER:
	case ERR_UNAVAILABLE:
	case ERR_SHUTDOWN:
	case ERR_CANCELED:
		return 503;
	case ERR_TIMEOUT:
		return 504;
	default:
		return 500;
	}
}

void api_respond_err(struct http_req *req, int err, const char *what)
{
	api_respond_error(req, api_status_of(err), err, "%s: %s", what, err_str(err));
}

json_t *api_json_hex(uint64_t v)
{
	char buf[17];
	snprintf(buf, sizeof buf, "%016" PRIx64, v);
	return json_string(buf);
}

json_t *api_json_ttl(uint64_t ttl_ms)
{
	if (ttl_ms % 1000 == 0)
		return json_integer((json_int_t)(ttl_ms / 1000));
	return json_real((double)ttl_ms / 1000.0);
}

/* ------------------------------------------------------------------ */
/* Request parsing                                                      */
/* ------------------------------------------------------------------ */

bool api_is_mutating(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	       strcmp(method, "OPTIONS") != 0;
}

static bool token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);
	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* 0 when authorized, else answered. */
int api_check_auth(struct api *a, struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");
	if (!h || strncmp(h, "Bearer ", 7) != 0) {
		api_respond_error(req, 401, ERR_AUTH,
			      "this request needs the cluster token "
			      "(Authorization: Bearer ...)");
		return -1;
	}
	if (!token_equal(h + 7, a->token)) {
		api_respond_error(req, 403, ERR_AUTH, "wrong cluster token");
		return -1;
	}
	return 0;
}

/* Parse the body as a JSON object, or answer 400 and return NULL. */
json_t *api_body_object(struct http_req *req)
{
	size_t len;
	const char *body = http_req_body(req, &len);
	json_error_t jerr;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		api_respond_error(req, 400, ERR_INVAL, "malformed JSON body: %s",
			      jerr.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		api_respond_error(req, 400, ERR_INVAL,
			      "the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* Only the listed fields may appear. 0 ok, else answered. */
int api_only_fields(struct http_req *req, json_t *o,
		       const char *const *allowed)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], k) == 0)
				ok = true;
		if (!ok) {
			api_respond_error(req, 400, ERR_INVAL, "unknown field '%s'",
				      k);
			return -1;
		}
	}
	return 0;
}

/* String field; required or optional (NULL when absent). Embedded NULs
 * are refused. 0 ok, else answered. */
int api_get_str(struct http_req *req, json_t *o, const char *field,
		   bool required, size_t maxlen, const char **out,
		   size_t *outlen)
{
	json_t *v = json_object_get(o, field);
	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!v) {
		if (!required)
			return 0;
		api_respond_error(req, 400, ERR_INVAL, "missing field '%s'", field);
		return -1;
	}
	if (!json_is_string(v)) {
		api_respond_error(req, 400, ERR_INVAL, "'%s' must be a string",
			      field);
		return -1;
	}
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if (n > maxlen) {
		api_respond_error(req, 400, ERR_INVAL,
			      "'%s' is longer than %zu bytes", field, maxlen);
		return -1;
	}
	if (!outlen && strlen(s) != n) {
		api_respond_error(req, 400, ERR_INVAL,
			      "'%s' must not contain NUL characters", field);
		return -1;
	}
	*out = s;
	if (outlen)
		*outlen = n;
	return 0;
}

int api_get_u64(struct http_req *req, json_t *o, const char *field,
		   bool *present, uint64_t *out)
{
	json_t *v = json_object_get(o, field);
	*present = v != NULL;
	*out = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		api_respond_error(req, 400, ERR_INVAL,
			      "'%s' must be a non-negative integer", field);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

bool api_parse_hex_id(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	if (n == 0 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	*out = strtoull(s, NULL, 16);
	return true;
}

int api_get_id(struct http_req *req, json_t *o, const char *field,
		  bool required, uint64_t *out)
{
	const char *s;
	*out = 0;
	if (api_get_str(req, o, field, required, 16, &s, NULL) != 0)
		return -1;
	if (!s)
		return 0;
	if (!api_parse_hex_id(s, out)) {
		api_respond_error(req, 400, ERR_INVAL,
			      "'%s' must be a hex id (up to 16 digits)", field);
		return -1;
	}
	return 0;
}

bool api_valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > RS_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

/* "true"/"1" true, "false"/"0"/absent false, else -1 */
int api_query_bool(struct http_req *req, const char *name)
{
	const char *v = http_req_query(req, name);
	if (!v)
		return 0;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || *v == '\0')
		return 1;
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return 0;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Forwarding                                                           */
/* ------------------------------------------------------------------ */

struct fwd {
	struct http_req *req;
	char url[RS_MAX_ADDR + 64];
};

static void on_forwarded(void *arg, int err, long status, const char *body,
			 size_t len)
{
	struct fwd *f = arg;
	if (err != 0) {
		api_respond_error(f->req, err == ERR_TIMEOUT ? 504 : 503,
			      ERR_UNAVAILABLE, "leader at %s unreachable: %s",
			      f->url, err_str(err));
	} else {
		http_respond(f->req, (unsigned)status, "application/json", body,
			     len, NULL, NULL);
	}
	mem_free(f);
}

void api_forward(struct api *a, struct http_req *req)
{
	if (http_req_header(req, "X-Pgwarden-Forwarded")) {
		api_respond_error(req, 503, ERR_NOTLEADER,
			      "%s is not the leader (any more)", a->name);
		return;
	}
	struct rs_member leader;
	if (rs_store_leader(a->store, &leader) != 0) {
		api_respond_error(req, 503, ERR_UNAVAILABLE,
			      "no raft leader known right now");
		return;
	}
	if (!leader.api[0]) {
		api_respond_error(req, 503, ERR_UNAVAILABLE,
			      "the leader has not registered its API URL yet");
		return;
	}
	struct fwd *f = mem_calloc(1, sizeof *f);
	if (!f) {
		api_respond_err(req, ERR_NOMEM, "forward");
		return;
	}
	f->req = req;
	const char *q = http_req_query_string(req);
	char *url = mem_malloc(strlen(leader.api) + strlen(http_req_path(req)) +
			       strlen(q) + 2);
	if (!url) {
		mem_free(f);
		api_respond_err(req, ERR_NOMEM, "forward");
		return;
	}
	sprintf(url, "%s%s%s%s", leader.api, http_req_path(req), *q ? "?" : "",
		q);
	snprintf(f->url, sizeof f->url, "%s", leader.api);
	char auth[4200];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", a->token);
	const char *headers[] = { auth, "X-Pgwarden-Forwarded: 1",
				  "Content-Type: application/json",
				  "Expect:", NULL };
	size_t len;
	const char *body = http_req_body(req, &len);
	const char *method = http_req_method(req);
	int rv = http_client_request(a->client, method, url, headers,
				     api_is_mutating(method) ? body : NULL, len,
				     FORWARD_TIMEOUT_MS, on_forwarded, f);
	mem_free(url);
	if (rv != 0) {
		mem_free(f);
		api_respond_err(req, rv, "forward to the leader");
	}
}

/* ------------------------------------------------------------------ */
/* Store operations                                                     */
/* ------------------------------------------------------------------ */

struct op *api_op_new(struct api *a, struct http_req *req, int kind)
{
	struct op *o = mem_calloc(1, sizeof *o);
	if (!o) {
		api_respond_err(req, ERR_NOMEM, "request");
		return NULL;
	}
	o->a = a;
	o->req = req;
	o->kind = kind;
	return o;
}

void api_op_free(struct op *o)
{
	mem_free(o->key);
	mem_free(o);
}

json_t *api_member_json(const struct rs_member *m, uint64_t leader)
{
	static const char *roles[] = { "voter", "learner", "spare" };
	return json_pack("{s:o,s:s,s:s,s:s,s:s,s:b}", "id", api_json_hex(m->id),
			 "name", m->name, "peer_url", m->peer, "api_url",
			 m->api, "role", roles[m->role], "is_leader",
			 m->id == leader);
}

bool api_find_member(struct api *a, const char *name, struct rs_member *out)
{
	struct rs_member *ms = NULL;
	size_t n = 0;
	bool found = false;
	if (rs_store_members(a->store, &ms, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ms[i].name, name) == 0) {
			*out = ms[i];
			found = true;
		}
	}
	mem_free(ms);
	return found;
}

static void notify_removed_done(void *arg, int err, long status,
				const char *body, size_t len)
{
	(void)body;
	(void)len;
	char *who = arg;
	if (err != 0 || status != 200)
		log_info("api removed member %s not notified (%s, status %ld):"
			 " it stops by itself once it sees the change",
			 who, err ? err_str(err) : "answered", status);
	mem_free(who);
}

static void notify_removed(struct api *a, const char *name, uint64_t id,
			   const char *api_url)
{
	if (!api_url[0])
		return;
	char url[RS_MAX_ADDR + 32];
	snprintf(url, sizeof url, "%s/internal/removed", api_url);
	char auth[4200];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", a->token);
	const char *headers[] = { auth, "Content-Type: application/json",
				  "Expect:", NULL };
	json_t *o = json_pack("{s:o,s:s}", "id", api_json_hex(id), "name", name);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	char *who = mem_strdup(name);
	if (!body || !who ||
	    http_client_request(a->client, "POST", url, headers, body,
				strlen(body), 2000, notify_removed_done,
				who) != 0)
		mem_free(who);
	free(body);
}

void api_on_store_done(void *arg, int status, const struct rs_result *res)
{
	struct op *o = arg;
	struct api *a = o->a;
	struct http_req *req = o->req;
	if (o->kind == OP_APPLY && status == 0) {
		/* the raw result, whatever its code: the caller interprets */
		api_respond_json(req, 200,
			     json_pack("{s:i,s:I,s:o,s:I,s:I}", "code", res->code,
				       "revision", (json_int_t)res->revision,
				       "lease", api_json_hex(res->lease), "ttl_ms",
				       (json_int_t)res->ttl_ms, "count",
				       (json_int_t)res->count));
		api_op_free(o);
		return;
	}
	int code = status != 0 ? status : (res ? res->code : 0);
	if (code != 0) {
		const char *what = "request";
		switch (o->kind) {
		case OP_PUT:
			what = "put";
			break;
		case OP_DELETE:
			what = "delete";
			break;
		case OP_GRANT:
			what = "lease grant";
			break;
		case OP_KEEPALIVE:
			what = "lease keepalive";
			break;
		case OP_REVOKE:
			what = "lease revoke";
			break;
		case OP_ADD:
			what = "member add";
			break;
		case OP_PROMOTE:
			what = "member promote";
			break;
		case OP_REMOVE:
			what = "member remove";
			break;
		case OP_TRANSFER:
			what = "transfer leadership";
			break;
		case OP_GET:
			what = "read";
			break;
		case OP_REGISTER:
			what = "register";
			break;
		case OP_APPLY:
			what = "apply";
			break;
		case OP_ACTION:
			what = o->msg;
			break;
		default:
			break;
		}
		if (code == ERR_CONFLICT && o->kind == OP_ACTION)
			api_respond_error(req, 409, code,
				      "%s: another request is pending", what);
		else if (code == ERR_CONFLICT && o->kind != OP_TRANSFER)
			api_respond_error(req, 409, code, "%s: compare failed",
				      what);
		else if (code == ERR_NOTFOUND && (o->kind == OP_PUT ||
						  o->kind == OP_KEEPALIVE ||
						  o->kind == OP_REVOKE))
			api_respond_error(req, 404, code, "%s: lease not found",
				      what);
		else
			api_respond_err(req, code, what);
		api_op_free(o);
		return;
	}
	json_t *j = NULL;
	switch (o->kind) {
	case OP_PUT:
		j = json_pack("{s:I}", "revision", (json_int_t)res->revision);
		break;
	case OP_DELETE:
	case OP_REVOKE:
		j = json_pack("{s:I,s:I}", "revision",
			      (json_int_t)res->revision, "deleted",
			      (json_int_t)res->count);
		break;
	case OP_GRANT:
	case OP_KEEPALIVE:
		j = json_pack("{s:o,s:o}", "id", api_json_hex(res->lease), "ttl",
			      api_json_ttl(res->ttl_ms));
		break;
	case OP_GET: {
		struct rs_kv *kvs = NULL;
		size_t n = 0;
		uint64_t rev = 0;
		int rv = rs_fsm_range(rs_store_fsm(a->store), o->key,
				      strlen(o->key), o->prefix, o->limit,
				      &kvs, &n, &rev);
		if (rv != 0) {
			api_respond_err(req, rv, "read");
			api_op_free(o);
			return;
		}
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < n; i++)
			json_array_append_new(
				arr,
				json_pack("{s:s,s:s%,s:I,s:I,s:I,s:o}", "key",
					  kvs[i].key, "value", kvs[i].value,
					  kvs[i].value_len, "create_revision",
					  (json_int_t)kvs[i].create_rev,
					  "mod_revision",
					  (json_int_t)kvs[i].mod_rev, "version",
					  (json_int_t)kvs[i].version, "lease",
					  api_json_hex(kvs[i].lease)));
		rs_kvs_free(kvs, n);
		j = json_pack("{s:I,s:I,s:o}", "revision", (json_int_t)rev,
			      "count", (json_int_t)n, "kvs", arr);
		break;
	}
	case OP_ADD: {
		struct rs_member m;
		if (api_find_member(a, o->name, &m))
			j = json_pack("{s:o,s:s}", "member",
				      api_member_json(&m, 0), "cluster",
				      a->cluster);
		else
			j = json_pack("{s:{s:s},s:s}", "member", "name",
				      o->name, "cluster", a->cluster);
		break;
	}
	case OP_PROMOTE: {
		struct rs_member m;
		if (api_find_member(a, o->name, &m))
			j = json_pack("{s:o}", "member", api_member_json(&m, 0));
		else
			j = json_pack("{s:{s:s}}", "member", "name", o->name);
		break;
	}
	case OP_REMOVE:
		notify_removed(a, o->name, o->id, o->api);
		j = json_pack("{s:s}", "removed", o->name);
		break;
	case OP_TRANSFER: {
		struct rs_member l;
		const char *lname = "";
		if (rs_store_leader(a->store, &l) == 0)
			lname = l.name;
		j = json_pack("{s:s}", "leader", lname);
		break;
	}
	case OP_REGISTER:
		j = json_pack("{s:I}", "revision", (json_int_t)res->revision);
		break;
	case OP_ACTION:
		j = json_pack("{s:s,s:I}", "message", o->msg, "revision",
			      (json_int_t)res->revision);
		break;
	default:
		break;
	}
	api_respond_json(req, 200, j);
	api_op_free(o);
}

/* Run a store call's result: 0 -> wait for api_on_store_done; else answer. */
void api_started(struct op *o, int rv, const char *what)
{
	if (rv == 0)
		return;
	if (rv == ERR_NOTLEADER) {
		/* Leadership moved between the check and the call. */
		struct http_req *req = o->req;
		struct api *a = o->a;
		api_op_free(o);
		api_forward(a, req);
		return;
	}
	const char *msg = rs_store_errmsg(o->a->store);
	if ((rv == ERR_NOTFOUND || rv == ERR_EXISTS || rv == ERR_INVAL) &&
	    msg[0])
		api_respond_error(o->req, api_status_of(rv), rv, "%s: %s", what, msg);
	else
		api_respond_err(o->req, rv, what);
	api_op_free(o);
}

void api_submit(struct api *a, struct http_req *req, int kind,
		   const struct rs_cmd *c, const char *what)
{
	struct op *o = api_op_new(a, req, kind);
	if (!o)
		return;
	api_started(o, rs_store_submit(a->store, c, api_on_store_done, o), what);
}

/* ------------------------------------------------------------------ */
/* An HA member record as JSON (the probes, /cluster)                  */
/* ------------------------------------------------------------------ */

json_t *api_member_obj(const struct ha_member *m)
{
	char *js = ha_member_encode(m);
	json_t *o = js ? json_loads(js, 0, NULL) : NULL;
	mem_free(js);
	return o ? o : json_object();
}

/* ------------------------------------------------------------------ */
/* Router                                                               */
/* ------------------------------------------------------------------ */

enum route_id {
	R_LIVENESS,
	R_STATUS,
	R_KV,
	R_KV_PUT,
	R_KV_DELETE,
	R_LEASE_GRANT,
	R_LEASE_KEEPALIVE,
	R_LEASE_REVOKE,
	R_LEASE_LIST,
	R_MEMBERS,
	R_MEMBERS_ADD,
	R_MEMBERS_PROMOTE,
	R_MEMBERS_REMOVE,
	R_TRANSFER,
	R_REGISTER,
	R_REMOVED,
	R_APPLY,
	R_PRIMARY,
	R_REPLICA,
	R_READ_ONLY,
	R_HEALTH,
	R_READINESS,
	R_ROOT,
	R_CLUSTER,
	R_SWITCHOVER,
	R_FAILOVER,
	R_PAUSE,
	R_RESUME,
	R_HISTORY,
	R_REINIT,
	R_LSN,
};

struct route {
	const char *path;
	enum route_id id;
	bool write; /* POST (or PUT) with a JSON body and the token */
};

static const struct route routes[] = {
	{ "/liveness", R_LIVENESS, false },
	{ "/status", R_STATUS, false },
	{ "/v1/kv", R_KV, false },
	{ "/v1/kv/put", R_KV_PUT, true },
	{ "/v1/kv/delete", R_KV_DELETE, true },
	{ "/v1/lease/grant", R_LEASE_GRANT, true },
	{ "/v1/lease/keepalive", R_LEASE_KEEPALIVE, true },
	{ "/v1/lease/revoke", R_LEASE_REVOKE, true },
	{ "/v1/lease/list", R_LEASE_LIST, false },
	{ "/v1/members", R_MEMBERS, false },
	{ "/v1/members/add", R_MEMBERS_ADD, true },
	{ "/v1/members/promote", R_MEMBERS_PROMOTE, true },
	{ "/v1/members/remove", R_MEMBERS_REMOVE, true },
	{ "/v1/transfer-leader", R_TRANSFER, true },
	{ "/internal/register", R_REGISTER, true },
	{ "/internal/removed", R_REMOVED, true },
	{ "/internal/apply", R_APPLY, true },
	{ "/internal/lsn", R_LSN, false },
	{ "/primary", R_PRIMARY, false },
	{ "/master", R_PRIMARY, false },
	{ "/leader", R_PRIMARY, false },
	{ "/read-write", R_PRIMARY, false },
	{ "/replica", R_REPLICA, false },
	{ "/read-only", R_READ_ONLY, false },
	{ "/health", R_HEALTH, false },
	{ "/readiness", R_READINESS, false },
	{ "/", R_ROOT, false },
	{ "/patroni", R_ROOT, false },
	{ "/cluster", R_CLUSTER, false },
	{ "/switchover", R_SWITCHOVER, true },
	{ "/failover", R_FAILOVER, true },
	{ "/pause", R_PAUSE, true },
	{ "/resume", R_RESUME, true },
	{ "/history", R_HISTORY, false },
	{ "/reinitialize", R_REINIT, true },
};

void api_handle(void *arg, struct http_req *req)
{
	struct api *a = arg;
	const char *path = http_req_path(req);
	const char *method = http_req_method(req);
	const struct route *r = NULL;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (strcmp(routes[i].path, path) == 0)
			r = &routes[i];
	if (!r) {
		api_respond_error(req, 404, ERR_NOTFOUND, "no such path: %s", path);
		return;
	}
	bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
		      (r->id >= R_PRIMARY && r->id <= R_ROOT &&
		       strcmp(method, "OPTIONS") == 0);
	bool is_post = strcmp(method, "POST") == 0 ||
		       (r->id == R_KV_PUT && strcmp(method, "PUT") == 0) ||
		       (r->id == R_SWITCHOVER && strcmp(method, "DELETE") == 0);
	if (r->write ? !is_post : !is_get) {
		static const char msg[] =
			"{\"error\":\"method not allowed\",\"code\":"
			"\"ERR_INVAL\"}\n";
		http_respond(req, 405, "application/json", msg, sizeof msg - 1,
			     "Allow",
			     r->write ? (r->id == R_KV_PUT	   ? "POST, PUT"
					 : r->id == R_SWITCHOVER ? "POST, DELETE"
								 : "POST")
				      : "GET, HEAD");
		return;
	}
	if (r->id == R_LIVENESS) {
		static const char ok[] = "{\"status\":\"ok\"}\n";
		http_respond(req, 200, "application/json", ok, sizeof ok - 1,
			     NULL, NULL);
		return;
	}
	if ((r->write || r->id == R_LSN) && api_check_auth(a, req) != 0)
		return;
	if (r->id == R_LSN) {
		api_route_lsn(a, req);
		return;
	}
	if (r->id == R_APPLY) {
		api_route_apply(a, req);
		return;
	}
	json_t *b = NULL;
	size_t blen = 0;
	http_req_body(req, &blen);
	bool empty_ok = r->id == R_PAUSE || r->id == R_RESUME ||
			r->id == R_REINIT ||
			(r->id == R_SWITCHOVER &&
			 strcmp(method, "DELETE") == 0);
	if (r->write && empty_ok && blen == 0)
		b = json_object();
	else if (r->write && !(b = api_body_object(req)))
		return;
	switch (r->id) {
	case R_STATUS:
		api_route_status(a, req);
		break;
	case R_KV:
		api_route_kv_get(a, req);
		break;
	case R_KV_PUT:
		api_route_kv_put(a, req, b);
		break;
	case R_KV_DELETE:
		api_route_kv_delete(a, req, b);
		break;
	case R_LEASE_GRANT:
		api_route_lease_grant(a, req, b);
		break;
	case R_LEASE_KEEPALIVE:
		api_route_lease_id_op(a, req, b, OP_KEEPALIVE);
		break;
	case R_LEASE_REVOKE:
		api_route_lease_id_op(a, req, b, OP_REVOKE);
		break;
	case R_LEASE_LIST:
		api_route_lease_list(a, req);
		break;
	case R_MEMBERS:
		api_route_members(a, req);
		break;
	case R_MEMBERS_ADD:
		api_route_member_change(a, req, b, OP_ADD);
		break;
	case R_MEMBERS_PROMOTE:
		api_route_member_change(a, req, b, OP_PROMOTE);
		break;
	case R_MEMBERS_REMOVE:
		api_route_member_change(a, req, b, OP_REMOVE);
		break;
	case R_TRANSFER:
		api_route_member_change(a, req, b, OP_TRANSFER);
		break;
	case R_REGISTER:
		api_route_register(a, req, b);
		break;
	case R_REMOVED:
		api_route_removed(a, req, b);
		break;
	case R_PRIMARY:
		api_route_probe(a, req, P_PRIMARY);
		break;
	case R_REPLICA:
		api_route_probe(a, req, P_REPLICA);
		break;
	case R_READ_ONLY:
		api_route_probe(a, req, P_READ_ONLY);
		break;
	case R_HEALTH:
		api_route_probe(a, req, P_HEALTH);
		break;
	case R_READINESS:
		api_route_probe(a, req, P_READINESS);
		break;
	case R_ROOT:
		api_route_probe(a, req, P_ROOT);
		break;
	case R_CLUSTER:
		api_route_cluster(a, req);
		break;
	case R_SWITCHOVER:
		api_route_switchover(a, req, b);
		break;
	case R_FAILOVER:
		api_route_failover(a, req, b);
		break;
	case R_PAUSE:
		api_route_pause(a, req, true);
		break;
	case R_RESUME:
		api_route_pause(a, req, false);
		break;
	case R_HISTORY:
		api_route_history(a, req);
		break;
	case R_REINIT:
		api_route_reinit(a, req);
		break;
	case R_LIVENESS:
	case R_APPLY:
	case R_LSN:
		break;
	}
	json_decref(b);
}

/* ------------------------------------------------------------------ */
/* Follower self-registration                                           */
/* ------------------------------------------------------------------ */

static void on_registered(void *arg, int err, long status, const char *body,
			  size_t len)
{
	struct api *a = arg;
	a->reg_inflight = false;
	if (err != 0 || status != 200)
		log_debug("api[%s] registration: %s status=%ld %.*s", a->name,
			  err ? err_str(err) : "answered", status, (int)len,
			  body);
}

static void on_reg_timer(uv_timer_t *t)
{
	struct api *a = t->data;
	if (a->reg_inflight || a->closing || rs_store_is_leader(a->store))
		return;
	struct rs_status st;
	rs_store_status(a->store, &st);
	if (!st.is_member || st.state == RS_REMOVED)
		return;
	struct rs_member_rec *recs = NULL;
	size_t n = 0;
	bool current = false;
	if (rs_fsm_members(rs_store_fsm(a->store), &recs, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (recs[i].id == st.id &&
			    strcmp(recs[i].name, a->name) == 0 &&
			    strcmp(recs[i].api, a->api_url) == 0 &&
			    strcmp(recs[i].peer, a->peer_url) == 0)
				current = true;
		mem_free(recs);
	}
	if (current)
		return;
	struct rs_member leader;
	if (rs_store_leader(a->store, &leader) != 0 || !leader.api[0])
		return;
	char url[RS_MAX_ADDR + 32];
	snprintf(url, sizeof url, "%s/internal/register", leader.api);
	char auth[4200];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", a->token);
	const char *headers[] = { auth, "Content-Type: application/json",
				  "X-Pgwarden-Forwarded: 1", "Expect:", NULL };
	json_t *o = json_pack("{s:o,s:s,s:s,s:s}", "id", api_json_hex(st.id),
			      "name", a->name, "peer", a->peer_url, "api",
			      a->api_url);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return;
	if (http_client_request(a->client, "POST", url, headers, body,
				strlen(body), 2000, on_registered, a) == 0)
		a->reg_inflight = true;
	free(body);
}

int api_new(uv_loop_t *loop, struct rs_store *store,
	    struct http_client *client, const struct api_options *o,
	    struct api **out)
{
	struct api *a = mem_calloc(1, sizeof *a);
	if (!a)
		return ERR_NOMEM;
	a->loop = loop;
	a->store = store;
	a->client = client;
	a->cluster = mem_strdup(o->cluster);
	a->name = mem_strdup(o->name);
	a->token = mem_strdup(o->token);
	a->api_url = mem_strdup(o->api_url);
	a->peer_url = mem_strdup(o->peer_url);
	a->version = mem_strdup(o->version);
	if (!a->cluster || !a->name || !a->token || !a->api_url ||
	    !a->peer_url || !a->version) {
		api_free(a);
		return ERR_NOMEM;
	}
	uv_timer_init(loop, &a->reg_timer);
	a->reg_timer.data = a;
	uv_timer_start(&a->reg_timer, on_reg_timer, REGISTER_INTERVAL_MS,
		       REGISTER_INTERVAL_MS);
	uv_unref((uv_handle_t *)&a->reg_timer);
	*out = a;
	return 0;
}

static void on_api_closed(uv_handle_t *h)
{
	struct api *a = h->data;
	if (a->close_cb)
		a->close_cb(a->close_arg);
}

void api_close(struct api *a, void (*cb)(void *arg), void *arg)
{
	a->closing = true;
	a->close_cb = cb;
	a->close_arg = arg;
	uv_timer_stop(&a->reg_timer);
	uv_close((uv_handle_t *)&a->reg_timer, on_api_closed);
}

void api_set_agent(struct api *a, api_status_fn fn, int (*reinit)(void *),
		   void *ctx)
{
	a->agent_status = fn;
	a->agent_reinit = reinit;
	a->agent_ctx = ctx;
	if (!fn)
		a->agent_lsn = NULL;
}

void api_set_agent_lsn(struct api *a, api_lsn_fn fn)
{
	a->agent_lsn = fn;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	mem_free(a->probe_body);
	mem_free(a->cluster);
	mem_free(a->name);
	mem_free(a->token);
	mem_free(a->api_url);
	mem_free(a->peer_url);
	mem_free(a->version);
	mem_free(a);
}
