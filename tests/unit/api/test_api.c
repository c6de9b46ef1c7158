/* test_api.c - the HTTP API's routes driven through the real dispatch
 * (api_handle) with requests built by hand, against the fakes of
 * api_fakes.h (store over the real state machine, agent, node-to-node
 * client). The expected answers come from docs/http-api.md: status codes,
 * error texts, JSON fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/api_int.h"
#include "api_fakes.h"
#include "err.h"
#include "ha/ha_member.h"
#include "mem.h"

static struct t_env E;

static int setup(void **state)
{
	(void)state;
	t_env_init(&E);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	t_env_close(&E);
	return 0;
}

/* The last answer, parsed (every answer of this API is JSON). */
static json_t *J;
static char ALLOW[128];

enum auth { NOAUTH, AUTH, BADAUTH, BASIC };

/* One request through the dispatch; asserts that it was answered exactly
 * once with a JSON body, which goes to J. Returns the status. */
static unsigned call(const char *method, const char *path, const char *query,
		     enum auth auth, const char *body)
{
	const char *h[4] = { NULL };
	int n = 0;
	if (auth == AUTH)
		h[n++] = "Authorization: Bearer " T_TOKEN;
	else if (auth == BADAUTH)
		h[n++] = "Authorization: Bearer nope";
	else if (auth == BASIC)
		h[n++] = "Authorization: Basic dGVzdA==";
	struct http_req *r = t_req_new(method, path, query, h, body,
				       body ? strlen(body) : 0);
	t_dispatch(&E, r);
	assert_int_equal(r->answers, 1);
	json_decref(J);
	json_error_t je;
	J = json_loadb(r->resp, r->resp_len, 0, &je);
	if (!J)
		fail_msg("%s %s: answer is not JSON: %s", method, path,
			 r->resp);
	snprintf(ALLOW, sizeof ALLOW, "%s", r->allow);
	unsigned st = r->status;
	t_req_free(r);
	return st;
}

static const char *jstr(const char *field)
{
	const char *s = json_string_value(json_object_get(J, field));
	return s ? s : "";
}

/* The answer's "error" contains want. */
static void assert_error_has(const char *want)
{
	if (!strstr(jstr("error"), want))
		fail_msg("error '%s' does not contain '%s'", jstr("error"),
			 want);
}

/* A replica (streaming, lag bytes behind) or the primary. */
static void agent_replica(int64_t lag)
{
	memset(&E.st, 0, sizeof E.st);
	snprintf(E.st.self.name, sizeof E.st.self.name, "n1");
	E.st.self.role = HA_ROLE_REPLICA;
	E.st.self.state = HA_ST_STREAMING;
	E.st.self.lag_bytes = lag;
	E.st.self.tags.failover_priority = 1;
	E.st.pg_running = true;
	E.st.streaming = true;
	snprintf(E.st.leader, sizeof E.st.leader, "n2");
}

static void agent_primary(void)
{
	memset(&E.st, 0, sizeof E.st);
	snprintf(E.st.self.name, sizeof E.st.self.name, "n1");
	E.st.self.role = HA_ROLE_PRIMARY;
	E.st.self.state = HA_ST_RUNNING;
	E.st.self.lag_bytes = -1;
	E.st.pg_running = true;
	E.st.writable = true;
	E.st.holds_lease = true;
	E.st.lease_left_ms = 5000;
	snprintf(E.st.leader, sizeof E.st.leader, "n1");
}

/* ------------------------------------------------------------------ */

static void test_unknown_path(void **state)
{
	(void)state;
	assert_int_equal(call("GET", "/nope", NULL, NOAUTH, NULL), 404);
	assert_string_equal(jstr("code"), "ERR_NOTFOUND");
	assert_error_has("no such path: /nope");
	assert_int_equal(call("GET", "/v1/kv/", NULL, NOAUTH, NULL), 404);
	assert_int_equal(call("POST", "/v1/kv/putx", NULL, AUTH, "{}"), 404);
	/* a path is matched whole: no prefix, no case folding */
	assert_int_equal(call("GET", "/STATUS", NULL, NOAUTH, NULL), 404);
	assert_int_equal(call("GET", "/status/x", NULL, NOAUTH, NULL), 404);
	/* the client's bytes quoted in an error that are not UTF-8 (JSON
	 * strings must be) still give the 4xx, not a 500 (found by
	 * fuzz_http) */
	assert_int_equal(call("GET", "/\xc2x\xff", NULL, NOAUTH, NULL), 404);
	assert_error_has("no such path: /?x?");
	assert_int_equal(
		call("GET", "/v1/kv", "key=/a&%C2true=1", NOAUTH, NULL), 400);
	assert_error_has("unknown query parameter '?true'");
	/* a path cut inside a character at the message's end */
	char path[600] = "/";
	for (size_t i = 1; i + 2 < sizeof path; i += 2)
		memcpy(path + i, "\xc3\xa9", 2);
	assert_int_equal(call("GET", path, NULL, NOAUTH, NULL), 404);
	assert_error_has("no such path: /\xc3\xa9\xc3\xa9");
}

static void test_utf8_valid(void **state)
{
	(void)state;
	assert_true(api_utf8_valid("", 0));
	assert_true(api_utf8_valid("abc", 3));
	assert_true(api_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	assert_true(api_utf8_valid("a\0b", 3));	 /* NUL is a character */
	assert_false(api_utf8_valid("\xc3", 1)); /* cut */
	assert_false(api_utf8_valid("\xff", 1));
	assert_false(api_utf8_valid("\xc0\xaf", 2));	     /* overlong '/' */
	assert_false(api_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(api_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(api_utf8_valid("\xe2\x28\xa1", 3));
}

static void test_wrong_method(void **state)
{
	(void)state;
	assert_int_equal(call("GET", "/v1/kv/put", NULL, AUTH, NULL), 405);
	assert_string_equal(ALLOW, "POST, PUT");
	assert_error_has("method not allowed");
	assert_int_equal(call("POST", "/status", NULL, AUTH, "{}"), 405);
	assert_string_equal(ALLOW, "GET, HEAD");
	assert_int_equal(call("DELETE", "/pause", NULL, AUTH, NULL), 405);
	assert_string_equal(ALLOW, "POST");
	assert_int_equal(call("PATCH", "/switchover", NULL, AUTH, "{}"), 405);
	assert_string_equal(ALLOW, "POST, DELETE");
	assert_int_equal(call("GET", "/pause", NULL, AUTH, NULL), 405);
	assert_int_equal(call("BREW", "/", NULL, NOAUTH, NULL), 405);
	assert_string_equal(ALLOW, "GET, HEAD, OPTIONS");
	/* HAProxy's default check is OPTIONS /: the probes take it */
	agent_primary();
	assert_int_equal(call("OPTIONS", "/", NULL, NOAUTH, NULL), 200);
	assert_int_equal(call("HEAD", "/primary", NULL, NOAUTH, NULL), 200);
	assert_int_equal(call("OPTIONS", "/status", NULL, NOAUTH, NULL), 405);
	/* the method is checked before the token */
	assert_int_equal(call("GET", "/v1/kv/delete", NULL, NOAUTH, NULL), 405);
}

static void test_token(void **state)
{
	(void)state;
	const char *put = "{\"key\":\"/a\",\"value\":\"1\"}";
	assert_int_equal(call("POST", "/v1/kv/put", NULL, NOAUTH, put), 401);
	assert_string_equal(jstr("code"), "ERR_AUTH");
	assert_error_has("cluster token");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, BASIC, put), 401);
	assert_int_equal(call("POST", "/v1/kv/put", NULL, BADAUTH, put), 403);
	assert_error_has("wrong cluster token");
	/* before the body is read */
	assert_int_equal(call("POST", "/v1/kv/put", NULL, NOAUTH, "{"), 401);
	/* every mutating route and /internal/lsn want it */
	static const char *const paths[] = { "/v1/kv/delete",
					     "/v1/lease/grant",
					     "/v1/lease/keepalive",
					     "/v1/lease/revoke",
					     "/v1/members/add",
					     "/v1/members/promote",
					     "/v1/members/remove",
					     "/v1/transfer-leader",
					     "/switchover",
					     "/failover",
					     "/pause",
					     "/resume",
					     "/reinitialize",
					     "/internal/register",
					     "/internal/removed",
					     "/internal/apply",
					     NULL };
	for (size_t i = 0; paths[i]; i++)
		assert_int_equal(call("POST", paths[i], NULL, NOAUTH, "{}"),
				 401);
	assert_int_equal(call("DELETE", "/switchover", NULL, NOAUTH, NULL),
			 401);
	assert_int_equal(call("GET", "/internal/lsn", NULL, NOAUTH, NULL), 401);
	assert_int_equal(call("GET", "/internal/lsn", NULL, AUTH, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(J, "lsn_received")),
			 100);
	assert_string_equal(jstr("name"), "n1");
	/* reads do not */
	assert_int_equal(call("GET", "/v1/kv", "key=/a", NOAUTH, NULL), 200);
	assert_int_equal(call("GET", "/liveness", NULL, NOAUTH, NULL), 200);
	assert_string_equal(jstr("status"), "ok");
	/* nothing was written by the refused requests */
	assert_int_equal(json_integer_value(json_object_get(J, "count")), 0);
}

static void test_bad_body(void **state)
{
	(void)state;
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, "{"), 400);
	assert_string_equal(jstr("code"), "ERR_INVAL");
	assert_error_has("malformed JSON body");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, ""), 400);
	assert_error_has("malformed JSON body");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, "[1]"), 400);
	assert_error_has("must be a JSON object");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"a\",\"key\":\"b\",\"value\":\"1\"}"),
			 400);
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"a\",\"value\":\"1\",\"x\":1}"),
			 400);
	assert_error_has("unknown field 'x'");
	assert_int_equal(
		call("POST", "/v1/kv/put", NULL, AUTH, "{\"value\":\"1\"}"),
		400);
	assert_error_has("missing field 'key'");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":1,\"value\":\"1\"}"),
			 400);
	assert_error_has("'key' must be a string");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"\",\"value\":\"1\"}"),
			 400);
	assert_error_has("key must not be empty");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"a\\u0000b\",\"value\":\"1\"}"),
			 400);
	assert_error_has("NUL");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"a\",\"value\":\"1\","
			      "\"prev_revision\":-1}"),
			 400);
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"a\",\"value\":\"1\","
			      "\"prev_revision\":1e300}"),
			 400);
	assert_error_has("non-negative integer");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"a\",\"value\":\"1\","
			      "\"lease\":\"xyz\"}"),
			 400);
	assert_error_has("lease must be a hex id");
	assert_int_equal(call("POST", "/v1/kv/delete", NULL, AUTH,
			      "{\"key\":\"a\",\"prefix\":\"yes\"}"),
			 400);
	assert_int_equal(call("POST", "/v1/kv/delete", NULL, AUTH,
			      "{\"key\":\"a\",\"prefix\":true,"
			      "\"prev_revision\":3}"),
			 400);
	assert_error_has("cannot be combined");
	/* body-less routes still refuse a body that is not JSON */
	assert_int_equal(call("POST", "/pause", NULL, AUTH, "pause"), 400);
	assert_int_equal(call("POST", "/switchover", NULL, AUTH, NULL), 400);
}

/* Keys and values at and over their limits (rs.h). */
static void test_huge_values(void **state)
{
	(void)state;
	size_t vn = RS_MAX_VALUE + 1;
	char *body = malloc(vn + 64);
	assert_non_null(body);
	int o = sprintf(body, "{\"key\":\"/big\",\"value\":\"");
	memset(body + o, 'v', vn);
	strcpy(body + o + vn, "\"}");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, body), 400);
	assert_error_has("'value' is longer than 1048576 bytes");
	/* exactly the limit is stored */
	strcpy(body + o + vn - 1, "\"}");
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, body), 200);
	free(body);
	char key[RS_MAX_KEY + 2];
	memset(key, 'k', sizeof key);
	key[0] = '/';
	key[RS_MAX_KEY + 1] = '\0';
	char q[sizeof key + 8];
	snprintf(q, sizeof q, "key=%s", key);
	assert_int_equal(call("GET", "/v1/kv", q, NOAUTH, NULL), 400);
	assert_error_has("key is longer than 1024 bytes");
	char kb[sizeof key + 64];
	snprintf(kb, sizeof kb, "{\"key\":\"%s\",\"value\":\"1\"}", key);
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, kb), 400);
	assert_int_equal(call("GET", "/v1/kv",
			      "key=/a&limit=99999999999999999999999", NOAUTH,
			      NULL),
			 400);
	assert_error_has("limit must be a non-negative integer");
	assert_int_equal(call("GET", "/v1/kv", "key=/a&limit=-1", NOAUTH, NULL),
			 400);
	assert_int_equal(
		call("POST", "/v1/lease/grant", NULL, AUTH, "{\"ttl\":1e308}"),
		400);
	assert_error_has("between 0.1 and 86400");
	assert_int_equal(
		call("POST", "/v1/lease/grant", NULL, AUTH, "{\"ttl\":0.01}"),
		400);
	assert_int_equal(
		call("POST", "/v1/lease/grant", NULL, AUTH, "{\"ttl\":\"5\"}"),
		400);
	assert_int_equal(call("POST", "/v1/lease/keepalive", NULL, AUTH,
			      "{\"id\":\"00000000000000001\"}"),
			 400);
	assert_error_has("longer than 16 bytes");
	assert_int_equal(
		call("POST", "/switchover", NULL, AUTH,
		     "{\"candidate\":\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
		     "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"}"),
		400);
}

static void test_kv(void **state)
{
	(void)state;
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"/a\",\"value\":\"one\"}"),
			 200);
	json_int_t rev = json_integer_value(json_object_get(J, "revision"));
	assert_true(rev > 0);
	assert_int_equal(call("PUT", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"/a/b\",\"value\":\"two\"}"),
			 200);
	assert_int_equal(call("GET", "/v1/kv", "key=%2Fa", NOAUTH, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(J, "count")), 1);
	json_t *kv = json_array_get(json_object_get(J, "kvs"), 0);
	assert_string_equal(json_string_value(json_object_get(kv, "value")),
			    "one");
	assert_int_equal(
		call("GET", "/v1/kv", "key=/a&prefix=true", NOAUTH, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(J, "count")), 2);
	assert_int_equal(call("GET", "/v1/kv",
			      "key=/a&prefix=true&serializable=1&limit=1",
			      NOAUTH, NULL),
			 200);
	assert_int_equal(json_integer_value(json_object_get(J, "count")), 1);
	assert_int_equal(call("GET", "/v1/kv", NULL, NOAUTH, NULL), 400);
	assert_error_has("missing query parameter 'key'");
	assert_int_equal(call("GET", "/v1/kv", "key=/a&bogus=1", NOAUTH, NULL),
			 400);
	assert_error_has("unknown query parameter 'bogus'");
	assert_int_equal(
		call("GET", "/v1/kv", "key=/a&prefix=maybe", NOAUTH, NULL),
		400);
	/* compare-and-swap */
	char b[128];
	snprintf(b, sizeof b,
		 "{\"key\":\"/a\",\"value\":\"x\",\"prev_revision\":%lld}",
		 (long long)rev + 100);
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, b), 409);
	assert_error_has("compare failed");
	snprintf(b, sizeof b,
		 "{\"key\":\"/a\",\"value\":\"x\",\"prev_revision\":%lld}",
		 (long long)rev);
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, b), 200);
	assert_int_equal(call("POST", "/v1/kv/delete", NULL, AUTH,
			      "{\"key\":\"/a\",\"prefix\":true}"),
			 200);
	assert_int_equal(json_integer_value(json_object_get(J, "deleted")), 2);
}

static void test_leases(void **state)
{
	(void)state;
	assert_int_equal(
		call("POST", "/v1/lease/grant", NULL, AUTH, "{\"ttl\":5}"),
		200);
	char id[32];
	snprintf(id, sizeof id, "%s", jstr("id"));
	assert_int_equal(strlen(id), 16);
	assert_int_equal(json_integer_value(json_object_get(J, "ttl")), 5);
	char b[128];
	snprintf(b, sizeof b, "{\"id\":\"%s\"}", id);
	assert_int_equal(call("POST", "/v1/lease/keepalive", NULL, AUTH, b),
			 200);
	assert_int_equal(call("GET", "/v1/lease/list", NULL, NOAUTH, NULL),
			 200);
	assert_int_equal(json_array_size(json_object_get(J, "leases")), 1);
	assert_int_equal(call("POST", "/v1/lease/keepalive", NULL, AUTH,
			      "{\"id\":\"zz\"}"),
			 400);
	assert_error_has("hex id");
	assert_int_equal(call("POST", "/v1/lease/keepalive", NULL, AUTH,
			      "{\"id\":\"ff\"}"),
			 404);
	assert_error_has("lease not found");
	snprintf(b, sizeof b,
		 "{\"key\":\"/l\",\"value\":\"1\",\"lease\":\"%s\"}", id);
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, b), 200);
	snprintf(b, sizeof b, "{\"id\":\"%s\"}", id);
	assert_int_equal(call("POST", "/v1/lease/revoke", NULL, AUTH, b), 200);
	assert_int_equal(json_integer_value(json_object_get(J, "deleted")), 1);
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH,
			      "{\"key\":\"/l\",\"value\":\"1\","
			      "\"lease\":\"ff\"}"),
			 404);
}

/* A follower relays what needs the leader, once (docs/http-api.md). */
static void test_follower_forwards(void **state)
{
	(void)state;
	E.leader = false;
	E.leader_known = true;
	snprintf(E.leader_api, sizeof E.leader_api, "http://10.9.0.2:8101");
	E.answer_err = 0;
	E.answer_status = 200;
	snprintf(E.answer_body, sizeof E.answer_body, "{\"revision\":77}\n");
	const char *put = "{\"key\":\"/a\",\"value\":\"1\"}";
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, put), 200);
	assert_int_equal(json_integer_value(json_object_get(J, "revision")),
			 77);
	assert_int_equal(E.sent, 1);
	assert_string_equal(E.last_method, "POST");
	assert_string_equal(E.last_url, "http://10.9.0.2:8101/v1/kv/put");
	assert_string_equal(E.last_body, put);
	assert_true(E.last_forwarded);
	/* a linearizable read goes along with its query; a serializable one
	 * is answered here */
	assert_int_equal(
		call("GET", "/v1/kv", "key=/a&prefix=true", NOAUTH, NULL), 200);
	assert_string_equal(E.last_url,
			    "http://10.9.0.2:8101/v1/kv?key=/a&prefix=true");
	assert_null(E.last_body);
	assert_int_equal(
		call("GET", "/v1/kv", "key=/a&serializable=true", NOAUTH, NULL),
		200);
	assert_int_equal(E.sent, 2);
	assert_int_equal(json_integer_value(json_object_get(J, "count")), 0);
	/* pause and the other HA actions are the leader's too */
	assert_int_equal(call("POST", "/pause", NULL, AUTH, NULL), 200);
	assert_string_equal(E.last_url, "http://10.9.0.2:8101/pause");
	assert_int_equal(E.sent, 3);
	/* no second hop */
	struct http_req *r = t_req_new(
		"POST", "/v1/kv/put", NULL,
		(const char *const[]){ "Authorization: Bearer " T_TOKEN,
				       "X-Pgwarden-Forwarded: 1", NULL },
		put, strlen(put));
	t_dispatch(&E, r);
	assert_int_equal(r->answers, 1);
	assert_int_equal(r->status, 503);
	assert_non_null(strstr(r->resp, "ERR_NOTLEADER"));
	t_req_free(r);
	assert_int_equal(E.sent, 3);
	/* the leader unreachable, unregistered, unknown */
	E.answer_err = ERR_TIMEOUT;
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, put), 504);
	assert_error_has("unreachable");
	E.answer_err = ERR_IO;
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, put), 503);
	E.leader_api[0] = '\0';
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, put), 503);
	assert_error_has("has not registered its API URL");
	E.leader_known = false;
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, put), 503);
	assert_error_has("no raft leader known");
	assert_int_equal(E.sent, 5);
	/* bad input is refused here, not relayed */
	assert_int_equal(call("POST", "/v1/kv/put", NULL, AUTH, "{"), 400);
	assert_int_equal(E.sent, 5);
}

static void test_pause_resume(void **state)
{
	(void)state;
	assert_int_equal(call("POST", "/pause", NULL, AUTH, NULL), 200);
	assert_error_has(""); /* no error field needed */
	assert_non_null(strstr(jstr("message"), "maintenance mode on"));
	assert_int_equal(call("GET", "/cluster", NULL, NOAUTH, NULL), 200);
	assert_string_equal(jstr("pause"), "true");
	assert_int_equal(call("POST", "/pause", NULL, AUTH, "{}"), 200);
	assert_string_equal(jstr("message"), "already paused");
	assert_int_equal(call("POST", "/resume", NULL, AUTH, NULL), 200);
	assert_string_equal(jstr("message"), "maintenance mode off");
	assert_int_equal(call("GET", "/cluster", NULL, NOAUTH, NULL), 200);
	assert_true(json_is_null(json_object_get(J, "pause")));
	assert_int_equal(call("POST", "/resume", NULL, AUTH, NULL), 200);
	assert_string_equal(jstr("message"), "not paused");
}

static void put_member(const char *name, enum ha_role role, enum ha_state st)
{
	struct ha_member m;
	memset(&m, 0, sizeof m);
	snprintf(m.name, sizeof m.name, "%s", name);
	m.role = role;
	m.state = st;
	m.tags.failover_priority = 1;
	char key[256];
	ha_member_key(key, sizeof key, "c1", name);
	char *js = ha_member_encode(&m);
	assert_non_null(js);
	t_fsm_put(key, js);
	mem_free(js);
}

static void test_switchover_failover(void **state)
{
	(void)state;
	assert_int_equal(call("POST", "/switchover", NULL, AUTH, "{}"), 412);
	assert_error_has("no primary holds the lease");
	char key[256];
	ha_key(key, sizeof key, "c1", "leader");
	t_fsm_put(key, "n1");
	put_member("n1", HA_ROLE_PRIMARY, HA_ST_RUNNING);
	put_member("n2", HA_ROLE_REPLICA, HA_ST_STREAMING);
	put_member("n3", HA_ROLE_REPLICA, HA_ST_STARTING);
	assert_int_equal(
		call("POST", "/switchover", NULL, AUTH, "{\"leader\":\"n2\"}"),
		412);
	assert_error_has("n2 is not the primary (n1 is)");
	assert_int_equal(call("POST", "/switchover", NULL, AUTH,
			      "{\"candidate\":\"n3\"}"),
			 412);
	assert_error_has("not a streaming replica");
	assert_int_equal(call("POST", "/switchover", NULL, AUTH,
			      "{\"scheduled_at\":\"tomorrow\"}"),
			 400);
	assert_error_has("scheduled_at");
	assert_int_equal(call("POST", "/switchover", NULL, AUTH,
			      "{\"leader\":\"n1\",\"candidate\":\"n2\"}"),
			 200);
	assert_string_equal(jstr("message"),
			    "switchover from n1 to n2 started");
	assert_int_equal(call("POST", "/switchover", NULL, AUTH, "{}"), 409);
	assert_error_has("pending already");
	assert_int_equal(call("GET", "/cluster", NULL, NOAUTH, NULL), 200);
	assert_non_null(strstr(jstr("switchover"), "\"to\":\"n2\""));
	assert_int_equal(call("DELETE", "/switchover", NULL, AUTH, NULL), 200);
	assert_string_equal(jstr("message"), "switchover cancelled");
	assert_int_equal(call("DELETE", "/switchover", NULL, AUTH, NULL), 404);
	assert_error_has("no switchover is pending");
	assert_int_equal(call("POST", "/failover", NULL, AUTH, "{}"), 400);
	assert_error_has("missing field 'candidate'");
	assert_int_equal(
		call("POST", "/failover", NULL, AUTH, "{\"candidate\":\"n9\"}"),
		412);
	assert_error_has("does not report");
	assert_int_equal(
		call("POST", "/failover", NULL, AUTH, "{\"candidate\":\"n1\"}"),
		412);
	assert_error_has("primary already");
	assert_int_equal(
		call("POST", "/failover", NULL, AUTH, "{\"candidate\":\"n3\"}"),
		200);
	assert_int_equal(
		call("POST", "/failover", NULL, AUTH, "{\"candidate\":\"n2\"}"),
		409);
	assert_error_has("another request is pending");
	assert_int_equal(call("GET", "/history", NULL, NOAUTH, NULL), 200);
	assert_true(json_is_array(json_object_get(J, "history")));
}

static void test_reinit(void **state)
{
	(void)state;
	E.reinit_rv = ERR_CONFLICT;
	assert_int_equal(call("POST", "/reinitialize", NULL, AUTH, NULL), 409);
	assert_error_has("is the primary");
	E.reinit_rv = 0;
	assert_int_equal(call("POST", "/reinitialize", NULL, AUTH, NULL), 200);
	assert_non_null(strstr(jstr("message"), "reinitialize scheduled"));
	assert_int_equal(E.reinits, 2);
	api_set_agent(E.api, NULL, NULL, NULL);
	assert_int_equal(call("POST", "/reinitialize", NULL, AUTH, NULL), 503);
	assert_error_has("runs no PostgreSQL");
	assert_int_equal(call("GET", "/primary", NULL, NOAUTH, NULL), 503);
	assert_int_equal(call("GET", "/internal/lsn", NULL, AUTH, NULL), 503);
	assert_int_equal(E.reinits, 2);
}

static void test_probes(void **state)
{
	(void)state;
	agent_primary();
	assert_int_equal(call("GET", "/primary", NULL, NOAUTH, NULL), 200);
	assert_string_equal(jstr("role"), "primary");
	assert_true(json_is_true(json_object_get(J, "holds_lease")));
	assert_int_equal(call("GET", "/master", NULL, NOAUTH, NULL), 200);
	assert_int_equal(call("GET", "/replica", NULL, NOAUTH, NULL), 503);
	assert_int_equal(call("GET", "/read-only", NULL, NOAUTH, NULL), 200);
	assert_int_equal(call("GET", "/health", NULL, NOAUTH, NULL), 200);
	assert_int_equal(call("GET", "/readiness", NULL, NOAUTH, NULL), 200);
	/* writable without the lease is not a primary for the balancer */
	E.st.holds_lease = false;
	assert_int_equal(call("GET", "/primary", NULL, NOAUTH, NULL), 503);
	agent_replica(100);
	assert_int_equal(call("GET", "/primary", NULL, NOAUTH, NULL), 503);
	assert_int_equal(call("GET", "/replica", NULL, NOAUTH, NULL), 200);
	assert_int_equal(call("GET", "/replica", "lag=100", NOAUTH, NULL), 200);
	assert_int_equal(call("GET", "/replica", "lag=99", NOAUTH, NULL), 503);
	assert_int_equal(call("GET", "/replica", "lag=1kB", NOAUTH, NULL), 200);
	assert_int_equal(call("GET", "/replica", "lag=16MB", NOAUTH, NULL),
			 200);
	E.st.self.tags.noloadbalance = true;
	assert_int_equal(call("GET", "/replica", NULL, NOAUTH, NULL), 503);
	E.st.pg_running = false;
	E.st.streaming = false;
	assert_int_equal(call("GET", "/health", NULL, NOAUTH, NULL), 503);
	assert_int_equal(call("GET", "/status", NULL, NOAUTH, NULL), 200);
	assert_string_equal(jstr("name"), "n1");
	assert_string_equal(jstr("state"), "leader");
	assert_true(json_is_true(json_object_get(J, "is_leader")));
}

/* The lag parser (routes_probe.c): bytes or a size with a unit, 1024-
 * based, and nothing that does not fit in the 63 bits a lag can have. */
static void test_parse_lag(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(api_parse_lag("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(api_parse_lag("1048576", &v), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(api_parse_lag("512kB", &v), 0);
	assert_int_equal(v, 512 * 1024);
	assert_int_equal(api_parse_lag("16MB", &v), 0);
	assert_int_equal(v, 16u << 20);
	assert_int_equal(api_parse_lag("3GB", &v), 0);
	assert_int_equal(v, 3ull << 30);
	assert_int_equal(api_parse_lag("2TB", &v), 0);
	assert_int_equal(v, 2ull << 40);
	assert_int_equal(api_parse_lag("7B", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(api_parse_lag("9223372036854775807", &v), 0);
	assert_int_equal(v, 9223372036854775807ull);
	assert_int_equal(api_parse_lag("8388607TB", &v), 0);
	assert_int_equal(v, 8388607ull << 40);
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "1.5MB", "0x10", "MB", "16XB",
		"16 MB", "16MBs",
		/* over 2^63 - 1 bytes, as a number or after the unit; the
		 * last would wrap to 0 in 64 bits */
		"9223372036854775808", "99999999999999999999", "8388608TB",
		"8589934592GB", "18014398509481984kB", "17179869184GB", NULL
	};
	for (size_t i = 0; bad[i]; i++)
		if (api_parse_lag(bad[i], &v) == 0)
			fail_msg("'%s' was accepted as %llu", bad[i],
				 (unsigned long long)v);
}

/* A bad lag gets 400 from whichever node answers: a replica, the primary,
 * a node that does not stream, a store-only node. */
static void test_replica_lag_bad(void **state)
{
	(void)state;
	static const char *const bad[] = { "lag=abc",
					   "lag=-5",
					   "lag=",
					   "lag=17179869184GB",
					   "lag=99999999999999999999",
					   NULL };
	for (int node = 0; node < 4; node++) {
		if (node == 0)
			agent_replica(100);
		else if (node == 1)
			agent_primary();
		else if (node == 2)
			agent_replica(-1);
		else
			api_set_agent(E.api, NULL, NULL, NULL);
		if (node == 2)
			E.st.streaming = false;
		for (size_t i = 0; bad[i]; i++) {
			if (call("GET", "/replica", bad[i], NOAUTH, NULL) !=
			    400)
				fail_msg("node %d, %s: not 400", node, bad[i]);
			assert_string_equal(jstr("code"), "ERR_INVAL");
			assert_error_has("lag must be");
		}
	}
}

static void test_internal(void **state)
{
	(void)state;
	assert_int_equal(
		call("POST", "/internal/apply", NULL, AUTH, "not a command"),
		400);
	assert_string_equal(jstr("code"), "ERR_CORRUPT");
	struct rs_cmd c;
	memset(&c, 0, sizeof c);
	c.op = RS_OP_LEASE_EXPIRE;
	c.lease = 5;
	char buf[256];
	size_t n = rs_cmd_encode(&c, buf, sizeof buf);
	assert_true(n > 0);
	struct http_req *r = t_req_new(
		"POST", "/internal/apply", NULL,
		(const char *const[]){ "Authorization: Bearer " T_TOKEN, NULL },
		buf, n);
	t_dispatch(&E, r);
	assert_int_equal(r->answers, 1);
	assert_int_equal(r->status, 400);
	assert_non_null(strstr(r->resp, "proposed by the leader itself"));
	t_req_free(r);
	memset(&c, 0, sizeof c);
	c.op = RS_OP_PUT;
	c.key = (struct rs_str){ "/x", 2 };
	c.value = (struct rs_str){ "y", 1 };
	n = rs_cmd_encode(&c, buf, sizeof buf);
	r = t_req_new(
		"POST", "/internal/apply", NULL,
		(const char *const[]){ "Authorization: Bearer " T_TOKEN, NULL },
		buf, n);
	t_dispatch(&E, r);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->resp, "\"code\":0"));
	t_req_free(r);
	/* keys and values are JSON strings when read back: a command that
	 * would store bytes that are not UTF-8 is refused, and nothing is
	 * written */
	static const char *const kvs[][2] = { { "/k\xff", "v" },
					      { "/k", "v\xc3" } };
	for (size_t i = 0; i < 2; i++) {
		memset(&c, 0, sizeof c);
		c.op = RS_OP_PUT;
		c.key = (struct rs_str){ kvs[i][0],
					 (uint32_t)strlen(kvs[i][0]) };
		c.value = (struct rs_str){ kvs[i][1],
					   (uint32_t)strlen(kvs[i][1]) };
		n = rs_cmd_encode(&c, buf, sizeof buf);
		r = t_req_new("POST", "/internal/apply", NULL,
			      (const char *const[]){
				      "Authorization: Bearer " T_TOKEN, NULL },
			      buf, n);
		t_dispatch(&E, r);
		assert_int_equal(r->answers, 1);
		assert_int_equal(r->status, 400);
		assert_non_null(strstr(r->resp, "not UTF-8"));
		t_req_free(r);
	}
	assert_int_equal(
		call("GET", "/v1/kv", "key=/k&prefix=true", NOAUTH, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(J, "count")), 0);
	assert_int_equal(call("POST", "/internal/removed", NULL, AUTH,
			      "{\"id\":\"1\",\"name\":\"n2\"}"),
			 409);
	assert_false(E.removed);
	char b[128];
	snprintf(b, sizeof b, "{\"id\":\"%016llx\",\"name\":\"n1\"}",
		 (unsigned long long)rs_member_id("c1", "n1"));
	assert_int_equal(call("POST", "/internal/removed", NULL, AUTH, b), 200);
	assert_true(E.removed);
	assert_int_equal(call("POST", "/internal/register", NULL, AUTH,
			      "{\"id\":\"1\",\"name\":\"n2\",\"peer\":\"h:1\","
			      "\"api\":\"http://h:2\"}"),
			 400);
	/* registering a name with n2's PostgreSQL name is refused */
	snprintf(b, sizeof b,
		 "{\"id\":\"%016llx\",\"name\":\"N2\",\"peer\":"
		 "\"10.0.0.2:1\",\"api\":\"http://h:2\"}",
		 (unsigned long long)rs_member_id("c1", "N2"));
	assert_int_equal(call("POST", "/internal/register", NULL, AUTH, b),
			 409);
	assert_error_has("same PostgreSQL name 'n2'");
}

static void test_members(void **state)
{
	(void)state;
	assert_int_equal(call("GET", "/v1/members", NULL, NOAUTH, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(J, "members")), 3);
	assert_string_equal(jstr("leader"), "n1");
	assert_int_equal(call("POST", "/v1/members/add", NULL, AUTH,
			      "{\"name\":\"bad name\",\"peer_url\":\"10.0.0.4:1\"}"),
			 400);
	assert_error_has("invalid member name");
	assert_int_equal(call("POST", "/v1/members/add", NULL, AUTH,
			      "{\"name\":\"n4\",\"peer_url\":\"h\"}"),
			 400);
	assert_error_has("IPV4-ADDRESS:PORT");
	/* libraft takes IPv4 literals only, and the loop never resolves:
	 * a host name or an IPv6 address is refused (the CLI resolves) */
	static const char *const not_v4[] = { "h:1", "localhost:7104",
					      "[::1]:7104", "10.0.0.4:",
					      "10.0.0.4:0", "10.0.0.4:65536",
					      "10.0.0.4:7x", "10.0.0:7104" };
	for (size_t i = 0; i < sizeof not_v4 / sizeof not_v4[0]; i++) {
		char body[128];
		snprintf(body, sizeof body,
			 "{\"name\":\"n4\",\"peer_url\":\"%s\"}", not_v4[i]);
		assert_int_equal(call("POST", "/v1/members/add", NULL, AUTH,
				      body),
				 400);
		assert_error_has("IPV4-ADDRESS:PORT");
	}
	assert_int_equal(call("POST", "/v1/members/add", NULL, AUTH,
			      "{\"name\":\"n4\",\"peer_url\":\"10.0.0.4:1\","
			      "\"api_url\":\"ftp://h:2\"}"),
			 400);
	/* a name with n1's PostgreSQL name (slot pgw_n1) */
	assert_int_equal(call("POST", "/v1/members/add", NULL, AUTH,
			      "{\"name\":\"N1\",\"peer_url\":\"10.0.0.4:1\"}"),
			 409);
	assert_error_has("same PostgreSQL name 'n1'");
	assert_error_has("as member 'n1'");
	assert_int_equal(call("POST", "/v1/members/add", NULL, AUTH,
			      "{\"name\":\"n4\",\"peer_url\":\"10.0.0.4:1\"}"),
			 200);
	assert_string_equal(jstr("cluster"), "c1");
	assert_int_equal(call("POST", "/v1/members/add", NULL, AUTH,
			      "{\"name\":\"n4\",\"peer_url\":\"10.0.0.4:1\"}"),
			 409);
	assert_error_has("member already");
	/* the same PostgreSQL name as n4 (slot, application_name) */
	assert_int_equal(call("POST", "/v1/members/add", NULL, AUTH,
			      "{\"name\":\"N4\",\"peer_url\":\"10.0.0.5:1\"}"),
			 409);
	assert_error_has("same PostgreSQL name");
	assert_int_equal(call("POST", "/v1/members/promote", NULL, AUTH,
			      "{\"name\":\"n9\"}"),
			 404);
	/* a removed member is told so at its own API */
	int sent = E.sent;
	assert_int_equal(call("POST", "/v1/members/remove", NULL, AUTH,
			      "{\"name\":\"n2\"}"),
			 200);
	assert_string_equal(jstr("removed"), "n2");
	assert_int_equal(E.sent, sent + 1);
	assert_string_equal(E.last_url,
			    "http://127.0.0.1:8102/internal/removed");
	assert_int_equal(call("POST", "/v1/transfer-leader", NULL, AUTH, "{}"),
			 200);
}

/* The first 80 allocation failure points of a few requests (more than any
 * of them makes): each is answered exactly once, nothing leaks (ASan),
 * and without a failure the normal answer comes. */
static void test_nomem(void **state)
{
	(void)state;
	agent_replica(10);
	static const struct {
		const char *m, *p, *q, *b;
		unsigned ok;
	} reqs[] = {
		{ "POST", "/v1/kv/put", NULL,
		  "{\"key\":\"/a\",\"value\":\"1\"}", 200 },
		{ "GET", "/v1/kv", "key=/a&prefix=true", NULL, 200 },
		{ "POST", "/pause", NULL, NULL, 200 },
		{ "GET", "/cluster", NULL, NULL, 200 },
		{ "GET", "/replica", "lag=1MB", NULL, 200 },
		{ "GET", "/v1/members", NULL, NULL, 200 },
		{ "POST", "/v1/members/add", NULL,
		  "{\"name\":\"n5\",\"peer_url\":\"10.0.0.5:1\"}", 409 },
		{ "GET", "/nope", NULL, NULL, 404 },
	};
	int failed = 0;
	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		for (long n = 0; n <= 80; n++) {
			struct http_req *r = t_req_new(
				reqs[i].m, reqs[i].p, reqs[i].q,
				(const char *const[]){
					"Authorization: Bearer " T_TOKEN,
					NULL },
				reqs[i].b, reqs[i].b ? strlen(reqs[i].b) : 0);
			mem_fail_after(n < 80 ? n : -1);
			api_handle(E.api, r);
			t_drain();
			mem_fail_after(-1);
			if (r->answers != 1)
				fail_msg("%s %s, failing allocation %ld: "
					 "answered %d times",
					 reqs[i].m, reqs[i].p, n, r->answers);
			if (r->status == 500)
				failed++;
			if (n == 80 && r->status != reqs[i].ok)
				fail_msg("%s %s: %u without a failure",
					 reqs[i].m, reqs[i].p, r->status);
			t_req_free(r);
		}
	}
	/* the sweep did reach the failure paths */
	assert_true(failed >= 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unknown_path, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wrong_method, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follower_forwards, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_switchover_failover, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reinit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probes, setup, teardown),
		cmocka_unit_test(test_parse_lag),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test_setup_teardown(test_replica_lag_bad, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_internal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_members, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nomem, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(J);
	return rc;
}
