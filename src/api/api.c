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
#include "config/cfg.h"

#include <arpa/inet.h>

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

#define FORWARD_TIMEOUT_MS   10000u
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
		http_respond(req, status, "application/json", body, n + 1, NULL,
			     NULL);
		mem_free(body);
	} else {
		http_respond(req, status, "application/json", s, n, NULL, NULL);
	}
	free(s);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len;
	uint32_t cp, min;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, cp = s[0] & 0x1fu, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, cp = s[0] & 0x0fu, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, cp = s[0] & 0x07u, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool api_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);
		if (!l)
			return false;
		i += l;
	}
	return true;
}

void api_respond_error(struct http_req *req, unsigned status, int code,
		       const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* the message may quote the client's bytes (a path, a query
	 * parameter) or be cut inside a character: JSON strings are UTF-8,
	 * and jansson refuses anything else, which would turn a 4xx into a
	 * 500 "out of memory". Bytes that are not UTF-8 become '?'. */
	size_t n = strlen(msg);
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq((unsigned char *)msg + i, n - i);
		if (l) {
			i += l;
		} else {
			msg[i] = '?';
			i++;
		}
	}
	api_respond_json(
		req, status,
		json_pack("{s:s,s:s}", "error", msg, "code", err_name(code)));
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
	api_respond_error(req, api_status_of(err), err, "%s: %s", what,
			  err_str(err));
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
		api_respond_error(req, 400, ERR_INVAL,
				  "malformed JSON body: %s", jerr.text);
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
int api_only_fields(struct http_req *req, json_t *o, const char *const *allowed)
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
			api_respond_error(req, 400, ERR_INVAL,
					  "unknown field '%s'", k);
			return -1;
		}
	}
	return 0;
}

/* String field; required or optional (NULL when absent). Embedded NULs
 * are refused. 0 ok, else answered. */
int api_get_str(struct http_req *req, json_t *o, const char *field,
		bool required, size_t maxlen, const char **out, size_t *outlen)
{
	json_t *v = json_object_get(o, field);
	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!v) {
		if (!required)
			return 0;
		api_respond_error(req, 400, ERR_INVAL, "missing field '%s'",
				  field);
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
				  "'%s' is longer than %zu bytes", field,
				  maxlen);
		return -1;
	}
	if (!outlen && strlen(s) != n) {
		api_respond_error(req, 400, ERR_INVAL,
				  "'%s' must not contain NUL characters",
				  field);
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
				  "'%s' must be a hex id (up to 16 digits)",
				  field);
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
		api_respond_error(
			f->req, err == ERR_TIMEOUT ? 504 : 503, ERR_UNAVAILABLE,
			"leader at %s unreachable: %s", f->url, err_str(err));
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
		api_respond_error(
			req, 503, ERR_UNAVAILABLE,
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

/* A member other than name whose PostgreSQL name is name's (cfg.h,
 * cfg_pg_name): it would share name's replication slot and
 * application_name. Copies its name into other and returns true. */
static bool pg_name_taken(struct api *a, const char *name, char *other,
			  size_t len)
{
	struct rs_member *ms = NULL;
	size_t n = 0;
	bool taken = false;
	if (rs_store_members(a->store, &ms, &n) != 0)
		return false;
	for (size_t i = 0; i < n && !taken; i++) {
		if (cfg_pg_name_clash(ms[i].name, name)) {
			snprintf(other, len, "%s", ms[i].name);
			taken = true;
		}
	}
	mem_free(ms);
	return taken;
}

bool api_raft_address(const char *s)
{
	char host[256];
	unsigned char a[4];
	uint16_t port;
	return cfg_split_hostport(s, host, sizeof host, &port) == 0 &&
	       inet_pton(AF_INET, host, a) == 1;
}

bool api_refuse_pg_name(struct api *a, struct http_req *req,
			const char *name, const char *what)
{
	char other[RS_MAX_NAME + 1], pg[CFG_PG_NAME_LEN];
	if (!pg_name_taken(a, name, other, sizeof other))
		return false;
	cfg_pg_name(name, pg, sizeof pg);
	log_warn("api[%s] %s %s refused: member %s has the same PostgreSQL "
		 "name %s",
		 a->name, what, name, other, pg);
	api_respond_error(req, 409, ERR_EXISTS,
			  "member name '%s' has the same PostgreSQL name '%s' "
			  "(application_name, slot " CFG_PG_SLOT_PREFIX
			  "%s) as member '%s'; names must differ in more than "
			  "case and '_', '.', '-'",
			  name, pg, pg, other);
	return true;
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
	json_t *o =
		json_pack("{s:o,s:s}", "id", api_json_hex(id), "name", name);
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
				 json_pack("{s:i,s:I,s:o,s:I,s:I}", "code",
					   res->code, "revision",
					   (json_int_t)res->revision, "lease",
					   api_json_hex(res->lease), "ttl_ms",
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
					  "%s: another request is pending",
					  what);
		else if (code == ERR_CONFLICT && o->kind != OP_TRANSFER)
			api_respond_error(req, 409, code, "%s: compare failed",
					  what);
		else if (code == ERR_NOTFOUND &&
			 (o->kind == OP_PUT || o->kind == OP_KEEPALIVE ||
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
		j = json_pack("{s:o,s:o}", "id", api_json_hex(res->lease),
			      "ttl", api_json_ttl(res->ttl_ms));
		break;
	case OP_GET: {
		struct rs_kv *kvs = NULL;
		size_t n = 0;
		uint64_t rev = 0;
		int rv = rs_fsm_range(rs_store_fsm(a->store), o->key,
				      strlen(o->key), o->prefix, o->limit, &kvs,
				      &n, &rev);
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
			j = json_pack("{s:o}", "member",
				      api_member_json(&m, 0));
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
		api_respond_error(o->req, api_status_of(rv), rv, "%s: %s", what,
				  msg);
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
	api_started(o, rs_store_submit(a->store, c, api_on_store_done, o),
		    what);
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

/* Methods a route takes; HEAD goes with GET. */
enum {
	M_GET = 1u << 0,
	M_POST = 1u << 1,
	M_PUT = 1u << 2,
	M_DELETE = 1u << 3,
	M_OPTIONS = 1u << 4,
};

/* What is read from the body before the handler runs. */
enum route_body {
	B_NONE,	 /* ignored; the handler gets b NULL */
	B_JSON,	 /* a JSON object, else 400 */
	B_EMPTY, /* a JSON object, else 400; an empty body counts as {} */
	B_RAW,	 /* the handler reads it (http_req_body); b NULL */
};

struct route {
	const char *path;
	unsigned methods; /* M_* */
	bool token;	  /* needs the cluster token: 401/403 */
	enum route_body body;
	api_route_fn *fn;
};

#define TOKEN true
#define OPEN  false

/* Every route, one a row (docs/http-api.md). A path may have several rows
 * with different methods; a path with no row for the request's method
 * answers 405 with the methods its rows take. Checked in this order: path
 * (404), method (405), token (401/403), body (400), then the handler. */
/* clang-format off */
static const struct route routes[] = {
	/* path                  methods            token  body     handler */
	/* routes_probe.c: this node */
	{ "/liveness",           M_GET,             OPEN,  B_NONE,  api_route_liveness },
	{ "/status",             M_GET,             OPEN,  B_NONE,  api_route_status },
	{ "/primary",            M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_primary },
	{ "/master",             M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_primary },
	{ "/leader",             M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_primary },
	{ "/read-write",         M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_primary },
	{ "/replica",            M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_replica },
	{ "/read-only",          M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_read_only },
	{ "/health",             M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_health },
	{ "/readiness",          M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_readiness },
	{ "/",                   M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_root },
	{ "/patroni",            M_GET | M_OPTIONS, OPEN,  B_NONE,  api_route_root },
	/* routes_kv.c: keys and leases */
	{ "/v1/kv",              M_GET,             OPEN,  B_NONE,  api_route_kv_get },
	{ "/v1/kv/put",          M_POST | M_PUT,    TOKEN, B_JSON,  api_route_kv_put },
	{ "/v1/kv/delete",       M_POST,            TOKEN, B_JSON,  api_route_kv_delete },
	{ "/v1/lease/grant",     M_POST,            TOKEN, B_JSON,  api_route_lease_grant },
	{ "/v1/lease/keepalive", M_POST,            TOKEN, B_JSON,  api_route_lease_keepalive },
	{ "/v1/lease/revoke",    M_POST,            TOKEN, B_JSON,  api_route_lease_revoke },
	{ "/v1/lease/list",      M_GET,             OPEN,  B_NONE,  api_route_lease_list },
	/* routes_cluster.c: Raft membership */
	{ "/v1/members",         M_GET,             OPEN,  B_NONE,  api_route_members },
	{ "/v1/members/add",     M_POST,            TOKEN, B_JSON,  api_route_member_add },
	{ "/v1/members/promote", M_POST,            TOKEN, B_JSON,  api_route_member_promote },
	{ "/v1/members/remove",  M_POST,            TOKEN, B_JSON,  api_route_member_remove },
	{ "/v1/transfer-leader", M_POST,            TOKEN, B_JSON,  api_route_transfer_leader },
	/* routes_cluster.c: PostgreSQL cluster and operator actions */
	{ "/cluster",            M_GET,             OPEN,  B_NONE,  api_route_cluster },
	{ "/history",            M_GET,             OPEN,  B_NONE,  api_route_history },
	{ "/switchover",         M_POST,            TOKEN, B_JSON,  api_route_switchover },
	{ "/switchover",         M_DELETE,          TOKEN, B_EMPTY, api_route_switchover_cancel },
	{ "/failover",           M_POST,            TOKEN, B_JSON,  api_route_failover },
	{ "/pause",              M_POST,            TOKEN, B_EMPTY, api_route_pause },
	{ "/resume",             M_POST,            TOKEN, B_EMPTY, api_route_resume },
	{ "/reinitialize",       M_POST,            TOKEN, B_EMPTY, api_route_reinit },
	/* routes_internal.c: node to node */
	{ "/internal/register",  M_POST,            TOKEN, B_JSON,  api_route_register },
	{ "/internal/removed",   M_POST,            TOKEN, B_JSON,  api_route_removed },
	{ "/internal/apply",     M_POST,            TOKEN, B_RAW,   api_route_apply },
	{ "/internal/lsn",       M_GET,             TOKEN, B_NONE,  api_route_lsn },
};
/* clang-format on */

static unsigned method_bit(const char *m)
{
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
		return M_GET;
	if (strcmp(m, "POST") == 0)
		return M_POST;
	if (strcmp(m, "PUT") == 0)
		return M_PUT;
	if (strcmp(m, "DELETE") == 0)
		return M_DELETE;
	if (strcmp(m, "OPTIONS") == 0)
		return M_OPTIONS;
	return 0;
}

/* The Allow header of a 405: the methods of every row of the path. */
static void allow_list(unsigned methods, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *names;
	} names[] = { { M_GET, "GET, HEAD" },
		      { M_POST, "POST" },
		      { M_PUT, "PUT" },
		      { M_DELETE, "DELETE" },
		      { M_OPTIONS, "OPTIONS" } };
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!(methods & names[i].bit))
			continue;
		int n = snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
				 names[i].names);
		if (n < 0 || (size_t)n >= len - o)
			break;
		o += (size_t)n;
	}
}

void api_handle(void *arg, struct http_req *req)
{
	struct api *a = arg;
	const char *path = http_req_path(req);
	const char *method = http_req_method(req);
	unsigned bit = method_bit(method);
	const struct route *r = NULL;
	unsigned allowed = 0;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		allowed |= routes[i].methods;
		if (routes[i].methods & bit)
			r = &routes[i];
	}
	if (!allowed) {
		api_respond_error(req, 404, ERR_NOTFOUND, "no such path: %s",
				  path);
		return;
	}
	if (!r) {
		static const char msg[] =
			"{\"error\":\"method not allowed\",\"code\":"
			"\"ERR_INVAL\"}\n";
		char allow[64];
		allow_list(allowed, allow, sizeof allow);
		http_respond(req, 405, "application/json", msg, sizeof msg - 1,
			     "Allow", allow);
		return;
	}
	if (r->token && api_check_auth(a, req) != 0)
		return;
	json_t *b = NULL;
	size_t blen = 0;
	http_req_body(req, &blen);
	if (r->body == B_EMPTY && blen == 0)
		b = json_object();
	else if ((r->body == B_JSON || r->body == B_EMPTY) &&
		 !(b = api_body_object(req)))
		return;
	if (r->body == B_EMPTY && !b) {
		api_respond_err(req, ERR_NOMEM, "request");
		return;
	}
	r->fn(a, req, b);
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

int api_new(uv_loop_t *loop, struct rs_store *store, struct http_client *client,
	    const struct api_options *o, struct api **out)
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
