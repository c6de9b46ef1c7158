/* api.c - HTTP API routes.
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
#include "api/api.h"

#include "ha/ha_agent.h"
#include "ha/ha_member.h"

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

#define FORWARD_TIMEOUT_MS 10000u
#define REGISTER_INTERVAL_MS 1000u

struct api {
	uv_loop_t *loop;
	struct rs_store *store;
	struct http_client *client;
	char *cluster, *name, *token, *api_url, *peer_url, *version;
	const struct wd_lag *lag; /* loop stalls; borrowed, may be NULL */
	uv_timer_t reg_timer;
	bool reg_inflight;
	api_status_fn agent_status; /* NULL on a store-only node */
	/* the last probe body, reused while the status is byte-identical
	 * (building it costs most of a probe: HAProxy asks often) */
	struct ha_status probe_st;
	char *probe_body; /* owned */
	size_t probe_len;
	int (*agent_reinit)(void *ctx);
	api_lsn_fn agent_lsn;
	void *agent_ctx;
	bool closing;
	void (*close_cb)(void *);
	void *close_arg;
};

/* One asynchronous operation waiting for the store or a peer. */
struct op {
	struct api *a;
	struct http_req *req;
	int kind;
	char name[RS_MAX_NAME + 1];
	char api[RS_MAX_ADDR + 1];
	uint64_t id;
	bool prefix;
	size_t limit;
	char *key; /* owned */
	char msg[256]; /* OP_ACTION: the success message */
};

enum op_kind {
	OP_PUT,
	OP_DELETE,
	OP_GRANT,
	OP_KEEPALIVE,
	OP_REVOKE,
	OP_GET,
	OP_ADD,
	OP_PROMOTE,
	OP_REMOVE,
	OP_TRANSFER,
	OP_REGISTER,
	OP_APPLY,
	OP_ACTION, /* an HA request written as a key: answered with msg */
};

/* ------------------------------------------------------------------ */
/* Responses                                                            */
/* ------------------------------------------------------------------ */

static void respond_json(struct http_req *req, unsigned status, json_t *obj)
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

static void respond_error(struct http_req *req, unsigned status, int code,
			  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void respond_error(struct http_req *req, unsigned status, int code,
			  const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	respond_json(req, status,
		     json_pack("{s:s,s:s}", "error", msg, "code",
			       err_name(code)));
}

static unsigned status_of(int err)
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

static void respond_err(struct http_req *req, int err, const char *what)
{
	respond_error(req, status_of(err), err, "%s: %s", what, err_str(err));
}

static json_t *json_hex(uint64_t v)
{
	char buf[17];
	snprintf(buf, sizeof buf, "%016" PRIx64, v);
	return json_string(buf);
}

static json_t *json_ttl(uint64_t ttl_ms)
{
	if (ttl_ms % 1000 == 0)
		return json_integer((json_int_t)(ttl_ms / 1000));
	return json_real((double)ttl_ms / 1000.0);
}

/* ------------------------------------------------------------------ */
/* Request parsing                                                      */
/* ------------------------------------------------------------------ */

static bool is_mutating(const char *method)
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
static int check_auth(struct api *a, struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");
	if (!h || strncmp(h, "Bearer ", 7) != 0) {
		respond_error(req, 401, ERR_AUTH,
			      "this request needs the cluster token "
			      "(Authorization: Bearer ...)");
		return -1;
	}
	if (!token_equal(h + 7, a->token)) {
		respond_error(req, 403, ERR_AUTH, "wrong cluster token");
		return -1;
	}
	return 0;
}

/* Parse the body as a JSON object, or answer 400 and return NULL. */
static json_t *body_object(struct http_req *req)
{
	size_t len;
	const char *body = http_req_body(req, &len);
	json_error_t jerr;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		respond_error(req, 400, ERR_INVAL, "malformed JSON body: %s",
			      jerr.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		respond_error(req, 400, ERR_INVAL,
			      "the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* Only the listed fields may appear. 0 ok, else answered. */
static int only_fields(struct http_req *req, json_t *o,
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
			respond_error(req, 400, ERR_INVAL, "unknown field '%s'",
				      k);
			return -1;
		}
	}
	return 0;
}

/* String field; required or optional (NULL when absent). Embedded NULs
 * are refused. 0 ok, else answered. */
static int get_str(struct http_req *req, json_t *o, const char *field,
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
		respond_error(req, 400, ERR_INVAL, "missing field '%s'", field);
		return -1;
	}
	if (!json_is_string(v)) {
		respond_error(req, 400, ERR_INVAL, "'%s' must be a string",
			      field);
		return -1;
	}
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if (n > maxlen) {
		respond_error(req, 400, ERR_INVAL,
			      "'%s' is longer than %zu bytes", field, maxlen);
		return -1;
	}
	if (!outlen && strlen(s) != n) {
		respond_error(req, 400, ERR_INVAL,
			      "'%s' must not contain NUL characters", field);
		return -1;
	}
	*out = s;
	if (outlen)
		*outlen = n;
	return 0;
}

static int get_u64(struct http_req *req, json_t *o, const char *field,
		   bool *present, uint64_t *out)
{
	json_t *v = json_object_get(o, field);
	*present = v != NULL;
	*out = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		respond_error(req, 400, ERR_INVAL,
			      "'%s' must be a non-negative integer", field);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static bool parse_hex_id(const char *s, uint64_t *out)
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

static int get_id(struct http_req *req, json_t *o, const char *field,
		  bool required, uint64_t *out)
{
	const char *s;
	*out = 0;
	if (get_str(req, o, field, required, 16, &s, NULL) != 0)
		return -1;
	if (!s)
		return 0;
	if (!parse_hex_id(s, out)) {
		respond_error(req, 400, ERR_INVAL,
			      "'%s' must be a hex id (up to 16 digits)", field);
		return -1;
	}
	return 0;
}

static bool valid_name(const char *s)
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
static int query_bool(struct http_req *req, const char *name)
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
		respond_error(f->req, err == ERR_TIMEOUT ? 504 : 503,
			      ERR_UNAVAILABLE, "leader at %s unreachable: %s",
			      f->url, err_str(err));
	} else {
		http_respond(f->req, (unsigned)status, "application/json", body,
			     len, NULL, NULL);
	}
	mem_free(f);
}

static void forward(struct api *a, struct http_req *req)
{
	if (http_req_header(req, "X-Pgwarden-Forwarded")) {
		respond_error(req, 503, ERR_NOTLEADER,
			      "%s is not the leader (any more)", a->name);
		return;
	}
	struct rs_member leader;
	if (rs_store_leader(a->store, &leader) != 0) {
		respond_error(req, 503, ERR_UNAVAILABLE,
			      "no raft leader known right now");
		return;
	}
	if (!leader.api[0]) {
		respond_error(req, 503, ERR_UNAVAILABLE,
			      "the leader has not registered its API URL yet");
		return;
	}
	struct fwd *f = mem_calloc(1, sizeof *f);
	if (!f) {
		respond_err(req, ERR_NOMEM, "forward");
		return;
	}
	f->req = req;
	const char *q = http_req_query_string(req);
	char *url = mem_malloc(strlen(leader.api) + strlen(http_req_path(req)) +
			       strlen(q) + 2);
	if (!url) {
		mem_free(f);
		respond_err(req, ERR_NOMEM, "forward");
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
				     is_mutating(method) ? body : NULL, len,
				     FORWARD_TIMEOUT_MS, on_forwarded, f);
	mem_free(url);
	if (rv != 0) {
		mem_free(f);
		respond_err(req, rv, "forward to the leader");
	}
}

/* ------------------------------------------------------------------ */
/* Store operations                                                     */
/* ------------------------------------------------------------------ */

static struct op *op_new(struct api *a, struct http_req *req, int kind)
{
	struct op *o = mem_calloc(1, sizeof *o);
	if (!o) {
		respond_err(req, ERR_NOMEM, "request");
		return NULL;
	}
	o->a = a;
	o->req = req;
	o->kind = kind;
	return o;
}

static void op_free(struct op *o)
{
	mem_free(o->key);
	mem_free(o);
}

static json_t *member_json(const struct rs_member *m, uint64_t leader)
{
	static const char *roles[] = { "voter", "learner", "spare" };
	return json_pack("{s:o,s:s,s:s,s:s,s:s,s:b}", "id", json_hex(m->id),
			 "name", m->name, "peer_url", m->peer, "api_url",
			 m->api, "role", roles[m->role], "is_leader",
			 m->id == leader);
}

static bool find_member(struct api *a, const char *name, struct rs_member *out)
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
	json_t *o = json_pack("{s:o,s:s}", "id", json_hex(id), "name", name);
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

static void on_store_done(void *arg, int status, const struct rs_result *res)
{
	struct op *o = arg;
	struct api *a = o->a;
	struct http_req *req = o->req;
	if (o->kind == OP_APPLY && status == 0) {
		/* the raw result, whatever its code: the caller interprets */
		respond_json(req, 200,
			     json_pack("{s:i,s:I,s:o,s:I,s:I}", "code", res->code,
				       "revision", (json_int_t)res->revision,
				       "lease", json_hex(res->lease), "ttl_ms",
				       (json_int_t)res->ttl_ms, "count",
				       (json_int_t)res->count));
		op_free(o);
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
			respond_error(req, 409, code,
				      "%s: another request is pending", what);
		else if (code == ERR_CONFLICT && o->kind != OP_TRANSFER)
			respond_error(req, 409, code, "%s: compare failed",
				      what);
		else if (code == ERR_NOTFOUND && (o->kind == OP_PUT ||
						  o->kind == OP_KEEPALIVE ||
						  o->kind == OP_REVOKE))
			respond_error(req, 404, code, "%s: lease not found",
				      what);
		else
			respond_err(req, code, what);
		op_free(o);
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
		j = json_pack("{s:o,s:o}", "id", json_hex(res->lease), "ttl",
			      json_ttl(res->ttl_ms));
		break;
	case OP_GET: {
		struct rs_kv *kvs = NULL;
		size_t n = 0;
		uint64_t rev = 0;
		int rv = rs_fsm_range(rs_store_fsm(a->store), o->key,
				      strlen(o->key), o->prefix, o->limit,
				      &kvs, &n, &rev);
		if (rv != 0) {
			respond_err(req, rv, "read");
			op_free(o);
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
					  json_hex(kvs[i].lease)));
		rs_kvs_free(kvs, n);
		j = json_pack("{s:I,s:I,s:o}", "revision", (json_int_t)rev,
			      "count", (json_int_t)n, "kvs", arr);
		break;
	}
	case OP_ADD: {
		struct rs_member m;
		if (find_member(a, o->name, &m))
			j = json_pack("{s:o,s:s}", "member",
				      member_json(&m, 0), "cluster",
				      a->cluster);
		else
			j = json_pack("{s:{s:s},s:s}", "member", "name",
				      o->name, "cluster", a->cluster);
		break;
	}
	case OP_PROMOTE: {
		struct rs_member m;
		if (find_member(a, o->name, &m))
			j = json_pack("{s:o}", "member", member_json(&m, 0));
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
	respond_json(req, 200, j);
	op_free(o);
}

/* Run a store call's result: 0 -> wait for on_store_done; else answer. */
static void started(struct op *o, int rv, const char *what)
{
	if (rv == 0)
		return;
	if (rv == ERR_NOTLEADER) {
		/* Leadership moved between the check and the call. */
		struct http_req *req = o->req;
		struct api *a = o->a;
		op_free(o);
		forward(a, req);
		return;
	}
	const char *msg = rs_store_errmsg(o->a->store);
	if ((rv == ERR_NOTFOUND || rv == ERR_EXISTS || rv == ERR_INVAL) &&
	    msg[0])
		respond_error(o->req, status_of(rv), rv, "%s: %s", what, msg);
	else
		respond_err(o->req, rv, what);
	op_free(o);
}

static void submit(struct api *a, struct http_req *req, int kind,
		   const struct rs_cmd *c, const char *what)
{
	struct op *o = op_new(a, req, kind);
	if (!o)
		return;
	started(o, rs_store_submit(a->store, c, on_store_done, o), what);
}

/* ------------------------------------------------------------------ */
/* Handlers                                                             */
/* ------------------------------------------------------------------ */

static void h_kv_get(struct api *a, struct http_req *req)
{
	static const char *const allowed[] = { "key", "prefix", "serializable",
					       "limit", NULL };
	const char *bad = http_req_unknown_query(req, allowed);
	if (bad) {
		respond_error(req, 400, ERR_INVAL,
			      "unknown query parameter '%s'", bad);
		return;
	}
	const char *key = http_req_query(req, "key");
	if (!key || !*key) {
		respond_error(req, 400, ERR_INVAL,
			      "missing query parameter 'key'");
		return;
	}
	if (strlen(key) > RS_MAX_KEY) {
		respond_error(req, 400, ERR_INVAL,
			      "key is longer than %d bytes", RS_MAX_KEY);
		return;
	}
	int prefix = query_bool(req, "prefix");
	int ser = query_bool(req, "serializable");
	if (prefix < 0 || ser < 0) {
		respond_error(req, 400, ERR_INVAL,
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
			respond_error(req, 400, ERR_INVAL,
				      "limit must be a non-negative integer");
			return;
		}
		limit = (size_t)v;
	}
	if (!ser && !rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct op *o = op_new(a, req, OP_GET);
	if (!o)
		return;
	o->key = mem_strdup(key);
	o->prefix = prefix;
	o->limit = limit;
	if (!o->key) {
		respond_err(req, ERR_NOMEM, "read");
		op_free(o);
		return;
	}
	if (ser) {
		struct rs_result res = { 0 };
		on_store_done(o, 0, &res);
		return;
	}
	started(o, rs_store_barrier(a->store, on_store_done, o), "read");
}

static void h_kv_put(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "key", "value", "lease",
					      "prev_revision", NULL };
	const char *key, *value, *lease_s;
	size_t vlen;
	bool has_prev;
	uint64_t prev, lease = 0;
	if (only_fields(req, b, fields) ||
	    get_str(req, b, "key", true, RS_MAX_KEY, &key, NULL) ||
	    get_str(req, b, "value", true, RS_MAX_VALUE, &value, &vlen) ||
	    get_str(req, b, "lease", false, 16, &lease_s, NULL) ||
	    get_u64(req, b, "prev_revision", &has_prev, &prev))
		return;
	if (!*key) {
		respond_error(req, 400, ERR_INVAL, "key must not be empty");
		return;
	}
	if (lease_s && !parse_hex_id(lease_s, &lease)) {
		respond_error(req, 400, ERR_INVAL, "lease must be a hex id");
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
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
	submit(a, req, OP_PUT, &c, "put");
}

static void h_kv_delete(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "key", "prefix", "prev_revision",
					      NULL };
	const char *key;
	bool has_prev;
	uint64_t prev;
	if (only_fields(req, b, fields) ||
	    get_str(req, b, "key", true, RS_MAX_KEY, &key, NULL) ||
	    get_u64(req, b, "prev_revision", &has_prev, &prev))
		return;
	json_t *p = json_object_get(b, "prefix");
	if (p && !json_is_boolean(p)) {
		respond_error(req, 400, ERR_INVAL, "'prefix' must be a boolean");
		return;
	}
	bool prefix = p && json_is_true(p);
	if (!*key) {
		respond_error(req, 400, ERR_INVAL, "key must not be empty");
		return;
	}
	if (prefix && has_prev) {
		respond_error(req, 400, ERR_INVAL,
			      "prefix and prev_revision cannot be combined");
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct rs_cmd c = {
		.op = RS_OP_DELETE,
		.flags = (prefix ? RS_CMD_PREFIX : 0u) |
			 (has_prev ? RS_CMD_HAS_PREV : 0u),
		.key = { key, (uint32_t)strlen(key) },
		.prev_rev = prev,
	};
	submit(a, req, OP_DELETE, &c, "delete");
}

static void h_lease_grant(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "ttl", NULL };
	if (only_fields(req, b, fields))
		return;
	json_t *t = json_object_get(b, "ttl");
	if (!t || !json_is_number(t)) {
		respond_error(req, 400, ERR_INVAL,
			      "'ttl' (seconds, a number) is required");
		return;
	}
	double ttl = json_number_value(t);
	if (!(ttl >= 0.1 && ttl <= 86400.0)) {
		respond_error(req, 400, ERR_INVAL,
			      "ttl must be between 0.1 and 86400 seconds");
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct rs_cmd c = { .op = RS_OP_LEASE_GRANT,
			    .ttl_ms = (uint64_t)(ttl * 1000.0 + 0.5) };
	submit(a, req, OP_GRANT, &c, "lease grant");
}

static void h_lease_id_op(struct api *a, struct http_req *req, json_t *b,
			  int kind)
{
	static const char *const fields[] = { "id", NULL };
	uint64_t id;
	if (only_fields(req, b, fields) || get_id(req, b, "id", true, &id))
		return;
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct rs_cmd c = { .op = kind == OP_KEEPALIVE ? RS_OP_LEASE_KEEPALIVE
						       : RS_OP_LEASE_REVOKE,
			    .lease = id };
	submit(a, req, kind, &c,
	       kind == OP_KEEPALIVE ? "lease keepalive" : "lease revoke");
}

static void h_lease_list(struct api *a, struct http_req *req)
{
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct rs_lease_info *ls = NULL;
	size_t n = 0;
	int rv = rs_fsm_leases(rs_store_fsm(a->store), &ls, &n);
	if (rv != 0) {
		respond_err(req, rv, "lease list");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(
			arr, json_pack("{s:o,s:o,s:I,s:I}", "id",
				       json_hex(ls[i].id), "ttl",
				       json_ttl(ls[i].ttl_ms), "keys",
				       (json_int_t)ls[i].nkeys, "remaining_ms",
				       (json_int_t)rs_store_lease_remaining(
					       a->store, ls[i].id)));
	mem_free(ls);
	respond_json(req, 200, json_pack("{s:o}", "leases", arr));
}

static void h_members(struct api *a, struct http_req *req)
{
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct rs_member *ms = NULL;
	size_t n = 0;
	int rv = rs_store_members(a->store, &ms, &n);
	if (rv != 0) {
		respond_err(req, rv, "members");
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
		json_array_append_new(arr, member_json(&ms[i], lid));
	mem_free(ms);
	respond_json(req, 200,
		     json_pack("{s:s,s:s,s:o}", "cluster", a->cluster, "leader",
			       lname, "members", arr));
}

static void h_member_change(struct api *a, struct http_req *req, json_t *b,
			    int kind)
{
	static const char *const add_fields[] = { "name", "peer_url",
						  "api_url", NULL };
	static const char *const name_only[] = { "name", NULL };
	const char *name, *peer = NULL, *api = NULL;
	if (only_fields(req, b, kind == OP_ADD ? add_fields : name_only))
		return;
	bool name_required = kind != OP_TRANSFER;
	if (get_str(req, b, "name", name_required, RS_MAX_NAME, &name, NULL))
		return;
	if (name && !valid_name(name)) {
		respond_error(req, 400, ERR_INVAL,
			      "invalid member name '%s' (letters, digits, "
			      "'_', '.', '-')",
			      name);
		return;
	}
	if (kind == OP_ADD &&
	    (get_str(req, b, "peer_url", true, RS_MAX_ADDR, &peer, NULL) ||
	     get_str(req, b, "api_url", false, RS_MAX_ADDR, &api, NULL)))
		return;
	if (kind == OP_ADD && !strchr(peer, ':')) {
		respond_error(req, 400, ERR_INVAL,
			      "peer_url must be host:port");
		return;
	}
	if (api && *api && strncmp(api, "http://", 7) != 0 &&
	    strncmp(api, "https://", 8) != 0) {
		respond_error(req, 400, ERR_INVAL,
			      "api_url must start with http:// or https://");
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct op *o = op_new(a, req, kind);
	if (!o)
		return;
	if (name)
		snprintf(o->name, sizeof o->name, "%s", name);
	int rv;
	switch (kind) {
	case OP_ADD:
		rv = rs_store_member_add(a->store, name, peer, api,
					 on_store_done, o);
		started(o, rv, "member add");
		break;
	case OP_PROMOTE:
		rv = rs_store_member_promote(a->store, name, on_store_done, o);
		started(o, rv, "member promote");
		break;
	case OP_REMOVE: {
		struct rs_member m;
		if (find_member(a, name, &m)) {
			o->id = m.id;
			snprintf(o->api, sizeof o->api, "%s", m.api);
		}
		rv = rs_store_member_remove(a->store, name, on_store_done, o);
		started(o, rv, "member remove");
		break;
	}
	default:
		rv = rs_store_transfer(a->store, name, on_store_done, o);
		started(o, rv, "transfer leadership");
		break;
	}
}

static void h_register(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "id", "name", "peer", "api",
					      NULL };
	uint64_t id;
	const char *name, *peer, *api;
	if (only_fields(req, b, fields) || get_id(req, b, "id", true, &id) ||
	    get_str(req, b, "name", true, RS_MAX_NAME, &name, NULL) ||
	    get_str(req, b, "peer", true, RS_MAX_ADDR, &peer, NULL) ||
	    get_str(req, b, "api", true, RS_MAX_ADDR, &api, NULL))
		return;
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct op *o = op_new(a, req, OP_REGISTER);
	if (!o)
		return;
	started(o,
		rs_store_register_member(a->store, id, name, peer, api,
					 on_store_done, o),
		"register");
}

/* A store command encoded by a follower's kv client (src/api/kv.c). */
static void h_apply(struct api *a, struct http_req *req)
{
	size_t len;
	const char *body = http_req_body(req, &len);
	struct rs_cmd c;
	if (rs_cmd_decode(body, len, &c) != 0) {
		respond_error(req, 400, ERR_CORRUPT, "malformed store command");
		return;
	}
	if (c.op == RS_OP_LEASE_EXPIRE || c.op == RS_OP_MEMBER_SET ||
	    c.op == RS_OP_MEMBER_DEL) {
		respond_error(req, 400, ERR_INVAL,
			      "%s is proposed by the leader itself",
			      rs_op_name(c.op));
		return;
	}
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct op *o = op_new(a, req, OP_APPLY);
	if (!o)
		return;
	started(o, rs_store_submit(a->store, &c, on_store_done, o), "apply");
}

static void h_removed(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "id", "name", NULL };
	uint64_t id;
	const char *name;
	if (only_fields(req, b, fields) || get_id(req, b, "id", true, &id) ||
	    get_str(req, b, "name", true, RS_MAX_NAME, &name, NULL))
		return;
	if (strcmp(name, a->name) != 0 ||
	    id != rs_member_id(a->cluster, a->name)) {
		respond_error(req, 409, ERR_CONFLICT,
			      "this node is %s, not %s", a->name, name);
		return;
	}
	rs_store_mark_removed(a->store);
	respond_json(req, 200, json_pack("{s:s}", "removed", a->name));
}

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

static void h_status(struct api *a, struct http_req *req)
{
	struct rs_status st;
	rs_store_status_full(a->store, &st);
	struct rs_member l;
	const char *lname = "";
	if (rs_store_leader(a->store, &l) == 0)
		lname = l.name;
	json_t *j = json_pack(
		"{s:o,s:s,s:s,s:s,s:b,s:b,s:b,s:b,s:s,s:o,s:I,s:I,s:I,s:I,"
		"s:I,s:I,s:o,s:I,s:s,s:s,s:s}",
		"id", json_hex(st.id), "name", a->name, "cluster", a->cluster,
		"state", state_str(st.state), "is_leader",
		st.state == RS_LEADER, "is_learner",
		st.is_member && st.role != RS_VOTER, "is_member", st.is_member,
		"ready", st.ready, "leader", lname, "leader_id",
		json_hex(st.leader_id), "raft_term", (json_int_t)st.term,
		"raft_index", (json_int_t)st.last_index, "commit_index",
		(json_int_t)st.commit_index, "applied_index",
		(json_int_t)st.applied_index, "revision",
		(json_int_t)st.revision, "db_size", (json_int_t)st.db_size,
		"fsm_hash", json_hex(st.fsm_hash), "snapshot_index",
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
	respond_json(req, 200, j);
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
	struct op *o = op_new(a, req, OP_ACTION);
	if (!o)
		return;
	snprintf(o->msg, sizeof o->msg, "%s", msg);
	started(o, rs_store_submit(a->store, &c, on_store_done, o), msg);
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

static void h_switchover(struct api *a, struct http_req *req, json_t *b)
{
	bool del = strcmp(http_req_method(req), "DELETE") == 0;
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	uint64_t rev = 0;
	char *cur = ha_get(a, "switchover", &rev);
	if (del) {
		if (!cur) {
			respond_error(req, 404, ERR_NOTFOUND,
				      "no switchover is pending");
			return;
		}
		mem_free(cur);
		ha_write(a, req, "switchover", NULL, false, rev,
			 "switchover cancelled");
		return;
	}
	if (cur) {
		respond_error(req, 409, ERR_CONFLICT,
			      "a switchover is pending already: %s", cur);
		mem_free(cur);
		return;
	}
	static const char *const fields[] = { "leader", "candidate",
					      "scheduled_at", NULL };
	const char *from, *to;
	if (only_fields(req, b, fields) ||
	    get_str(req, b, "leader", false, RS_MAX_NAME, &from, NULL) ||
	    get_str(req, b, "candidate", false, RS_MAX_NAME, &to, NULL))
		return;
	int64_t at = 0;
	json_t *when = json_object_get(b, "scheduled_at");
	if (when && parse_when(when, &at) != 0) {
		respond_error(req, 400, ERR_INVAL,
			      "scheduled_at: an ISO 8601 time with Z or an "
			      "offset (2026-11-26T12:00:00Z), or epoch seconds");
		return;
	}
	char *leader = ha_get(a, "leader", NULL);
	if (!leader) {
		respond_error(req, 412, ERR_UNAVAILABLE,
			      "no primary holds the lease: use failover");
		return;
	}
	if (from && *from && strcmp(from, leader) != 0) {
		respond_error(req, 412, ERR_CONFLICT,
			      "%s is not the primary (%s is)", from, leader);
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
			respond_error(req, 412, ERR_CONFLICT,
				      "cannot switch over to %s: %s", to, no);
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
						     kvs[i].value_len, &m) == 0 &&
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
			respond_error(req, 412, ERR_UNAVAILABLE,
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
		respond_err(req, ERR_NOMEM, "switchover");
		return;
	}
	ha_write(a, req, "switchover", js, true, 0, msg);
	free(js);
}

static void h_failover(struct api *a, struct http_req *req, json_t *b)
{
	static const char *const fields[] = { "candidate", "leader", NULL };
	const char *to, *from;
	if (only_fields(req, b, fields) ||
	    get_str(req, b, "candidate", true, RS_MAX_NAME, &to, NULL) ||
	    get_str(req, b, "leader", false, RS_MAX_NAME, &from, NULL))
		return;
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	struct ha_member m;
	if (!ha_member_get(a, to, &m)) {
		respond_error(req, 412, ERR_NOTFOUND,
			      "cannot fail over to %s: it does not report", to);
		return;
	}
	if (m.tags.nofailover || m.tags.failover_priority <= 0) {
		respond_error(req, 412, ERR_CONFLICT,
			      "cannot fail over to %s: it is tagged nofailover",
			      to);
		return;
	}
	char *leader = ha_get(a, "leader", NULL);
	if (leader && strcmp(leader, to) == 0) {
		respond_error(req, 412, ERR_CONFLICT,
			      "%s is the primary already", to);
		mem_free(leader);
		return;
	}
	json_t *v = json_pack("{s:s,s:s}", "to", to, "from",
			      leader ? leader : "");
	char *js = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	char msg[200];
	snprintf(msg, sizeof msg, "failover to %s started", to);
	mem_free(leader);
	if (!js) {
		respond_err(req, ERR_NOMEM, "failover");
		return;
	}
	ha_write(a, req, "failover", js, true, 0, msg);
	free(js);
}

static void h_pause(struct api *a, struct http_req *req, bool pause)
{
	if (!rs_store_is_leader(a->store)) {
		forward(a, req);
		return;
	}
	uint64_t rev = 0;
	char *cur = ha_get(a, "pause", &rev);
	bool paused = cur != NULL;
	mem_free(cur);
	if (pause == paused) {
		respond_json(req, 200,
			     json_pack("{s:s}", "message",
				       pause ? "already paused"
					     : "not paused"));
		return;
	}
	if (pause)
		ha_write(a, req, "pause", "true", true, 0,
			 "maintenance mode on: no automatic failover");
	else
		ha_write(a, req, "pause", NULL, false, rev,
			 "maintenance mode off");
}

static void h_history(struct api *a, struct http_req *req)
{
	char *h = ha_get(a, "history", NULL);
	json_t *arr = h ? json_loads(h, 0, NULL) : NULL;
	mem_free(h);
	if (!json_is_array(arr)) {
		json_decref(arr);
		arr = json_array();
	}
	respond_json(req, 200, json_pack("{s:s,s:o}", "cluster", a->cluster,
					 "history", arr));
}

static void h_reinit(struct api *a, struct http_req *req)
{
	if (!a->agent_reinit) {
		respond_error(req, 503, ERR_UNAVAILABLE,
			      "this node runs no PostgreSQL");
		return;
	}
	int rv = a->agent_reinit(a->agent_ctx);
	if (rv == ERR_CONFLICT) {
		respond_error(req, 409, rv,
			      "%s is the primary: it cannot be reinitialized",
			      a->name);
		return;
	}
	if (rv != 0) {
		respond_err(req, rv, "reinitialize");
		return;
	}
	respond_json(req, 200,
		     json_pack("{s:s}", "message",
			       "reinitialize scheduled: the data directory "
			       "is wiped and cloned from the primary"));
}

/* ------------------------------------------------------------------ */
/* PostgreSQL status and load-balancer probes                           */
/* ------------------------------------------------------------------ */

static json_t *member_obj(const struct ha_member *m)
{
	char *js = ha_member_encode(m);
	json_t *o = js ? json_loads(js, 0, NULL) : NULL;
	mem_free(js);
	return o ? o : json_object();
}

static json_t *node_status_json(struct api *a, const struct ha_status *st)
{
	json_t *o = member_obj(&st->self);
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

/* Parse "16MB", "1048576", "512kB" (1024-based, as PostgreSQL). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	uint64_t mult = 1;
	if (strcasecmp(end, "") == 0 || strcasecmp(end, "B") == 0)
		mult = 1;
	else if (strcasecmp(end, "kB") == 0)
		mult = 1024;
	else if (strcasecmp(end, "MB") == 0)
		mult = 1024 * 1024;
	else if (strcasecmp(end, "GB") == 0)
		mult = 1024ull * 1024 * 1024;
	else
		return -1;
	*out = v * mult;
	return 0;
}

enum probe_kind {
	P_PRIMARY,
	P_REPLICA,
	P_READ_ONLY,
	P_HEALTH,
	P_READINESS,
	P_ROOT,
};

static void h_probe(struct api *a, struct http_req *req, enum probe_kind k)
{
	if (!a->agent_status) {
		respond_error(req, 503, ERR_UNAVAILABLE,
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
		const char *lag = http_req_query(req, "lag");
		if (ok && lag) {
			uint64_t max;
			if (parse_size(lag, &max) != 0) {
				respond_error(req, 400, ERR_INVAL,
					      "lag must be bytes or a size "
					      "like 16MB");
				return;
			}
			ok = st.self.lag_bytes >= 0 &&
			     (uint64_t)st.self.lag_bytes <= max;
		}
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
			respond_err(req, ERR_NOMEM, "status");
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

static void h_cluster(struct api *a, struct http_req *req)
{
	char prefix[256], key[256];
	ha_key(prefix, sizeof prefix, a->cluster, "members/");
	struct rs_fsm *f = rs_store_fsm(a->store);
	struct rs_kv *kvs = NULL;
	size_t n = 0;
	uint64_t rev;
	int rv = rs_fsm_range(f, prefix, strlen(prefix), true, 0, &kvs, &n,
			      &rev);
	if (rv != 0) {
		respond_err(req, rv, "cluster");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct ha_member m;
		if (ha_member_decode(kvs[i].value, kvs[i].value_len, &m) == 0)
			json_array_append_new(arr, member_obj(&m));
	}
	rs_kvs_free(kvs, n);
	json_t *o = json_pack("{s:s,s:o,s:I}", "cluster", a->cluster,
			      "members", arr, "revision", (json_int_t)rev);
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
	respond_json(req, 200, o);
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
		respond_err(o->req, ans->err, "PostgreSQL probe");
	else
		respond_json(o->req, 200,
			     json_pack("{s:s,s:b,s:i,s:I,s:I,s:I}", "name",
				       o->name, "in_recovery", ans->in_recovery,
				       "timeline", (int)ans->timeline,
				       "lsn_received", (json_int_t)ans->received,
				       "lsn_replayed", (json_int_t)ans->replayed,
				       "lsn_current", (json_int_t)ans->current));
	mem_free(o);
}

static void h_lsn(struct api *a, struct http_req *req)
{
	if (!a->agent_lsn) {
		respond_error(req, 503, ERR_UNAVAILABLE,
			      "no PostgreSQL is managed on this node");
		return;
	}
	struct lsn_op *o = mem_calloc(1, sizeof *o);
	if (!o) {
		respond_err(req, ERR_NOMEM, "lsn");
		return;
	}
	o->req = req;
	snprintf(o->name, sizeof o->name, "%s", a->name);
	int rv = a->agent_lsn(a->agent_ctx, on_lsn, o);
	if (rv != 0) {
		mem_free(o);
		respond_err(req, rv, "PostgreSQL probe");
	}
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
		respond_error(req, 404, ERR_NOTFOUND, "no such path: %s", path);
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
	if ((r->write || r->id == R_LSN) && check_auth(a, req) != 0)
		return;
	if (r->id == R_LSN) {
		h_lsn(a, req);
		return;
	}
	if (r->id == R_APPLY) {
		h_apply(a, req);
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
	else if (r->write && !(b = body_object(req)))
		return;
	switch (r->id) {
	case R_STATUS:
		h_status(a, req);
		break;
	case R_KV:
		h_kv_get(a, req);
		break;
	case R_KV_PUT:
		h_kv_put(a, req, b);
		break;
	case R_KV_DELETE:
		h_kv_delete(a, req, b);
		break;
	case R_LEASE_GRANT:
		h_lease_grant(a, req, b);
		break;
	case R_LEASE_KEEPALIVE:
		h_lease_id_op(a, req, b, OP_KEEPALIVE);
		break;
	case R_LEASE_REVOKE:
		h_lease_id_op(a, req, b, OP_REVOKE);
		break;
	case R_LEASE_LIST:
		h_lease_list(a, req);
		break;
	case R_MEMBERS:
		h_members(a, req);
		break;
	case R_MEMBERS_ADD:
		h_member_change(a, req, b, OP_ADD);
		break;
	case R_MEMBERS_PROMOTE:
		h_member_change(a, req, b, OP_PROMOTE);
		break;
	case R_MEMBERS_REMOVE:
		h_member_change(a, req, b, OP_REMOVE);
		break;
	case R_TRANSFER:
		h_member_change(a, req, b, OP_TRANSFER);
		break;
	case R_REGISTER:
		h_register(a, req, b);
		break;
	case R_REMOVED:
		h_removed(a, req, b);
		break;
	case R_PRIMARY:
		h_probe(a, req, P_PRIMARY);
		break;
	case R_REPLICA:
		h_probe(a, req, P_REPLICA);
		break;
	case R_READ_ONLY:
		h_probe(a, req, P_READ_ONLY);
		break;
	case R_HEALTH:
		h_probe(a, req, P_HEALTH);
		break;
	case R_READINESS:
		h_probe(a, req, P_READINESS);
		break;
	case R_ROOT:
		h_probe(a, req, P_ROOT);
		break;
	case R_CLUSTER:
		h_cluster(a, req);
		break;
	case R_SWITCHOVER:
		h_switchover(a, req, b);
		break;
	case R_FAILOVER:
		h_failover(a, req, b);
		break;
	case R_PAUSE:
		h_pause(a, req, true);
		break;
	case R_RESUME:
		h_pause(a, req, false);
		break;
	case R_HISTORY:
		h_history(a, req);
		break;
	case R_REINIT:
		h_reinit(a, req);
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
	json_t *o = json_pack("{s:o,s:s,s:s,s:s}", "id", json_hex(st.id),
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
	a->lag = o->lag;
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
