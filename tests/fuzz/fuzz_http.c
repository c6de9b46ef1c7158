/* fuzz_http.c - libFuzzer target for the HTTP routes: random method, path,
 * query, headers and body into the real dispatch (api_handle), with the
 * fakes of tests/unit/api/api_fakes.h standing for the request, the store
 * (over the real state machine), the agent and the node-to-node client.
 *
 * Input: up to four requests separated by a line "%%"; each is the lines
 * "METHOD\nPATH\nQUERY\nFLAGS\n" then its body (the rest). A missing
 * line is empty. FLAGS bytes: [0] the Authorization header
 * (none, right token, wrong token, a non-Bearer one), [1] the node (Raft
 * leader, follower with a registered leader, follower without one, a
 * forwarded request), [2] the agent (primary, streaming replica,
 * stopped, store-only), [3] the peer's answer (200, 503, unreachable).
 *
 * Every request must be answered exactly once, with a known status and a
 * JSON body; 500 means the daemon ran out of memory, which does not happen
 * here, so it is a finding too.
 *
 * Build: meson setup -Dfuzz=true with CC=clang; run
 *   fuzz_http tests/fuzz/corpus/http
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_fakes.h"
#include "err.h"
#include "ha/ha_member.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct t_env env;
static bool ready;
static unsigned long inputs;

static void check(int cond, const char *what, const struct http_req *r)
{
	if (cond)
		return;
	fprintf(stderr, "fuzz_http: %s: %s %s?%s -> %u %.*s\n", what, r->method,
		r->path, r->query, r->status, (int)r->resp_len,
		r->resp ? r->resp : "");
	abort();
}

/* The next '\n'-terminated field of [*p, end) as a NUL-terminated copy in
 * buf (cut at len - 1). */
static void field(const uint8_t **p, const uint8_t *end, char *buf, size_t len)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = (size_t)((nl ? nl : end) - *p);
	size_t c = n < len - 1 ? n : len - 1;
	memcpy(buf, *p, c);
	buf[c] = '\0';
	*p = nl ? nl + 1 : end;
}

static void set_agent(unsigned v)
{
	struct ha_status *st = &env.st;
	memset(st, 0, sizeof *st);
	snprintf(st->self.name, sizeof st->self.name, "n1");
	st->self.lag_bytes = -1;
	switch (v % 4) {
	case 0:
		st->self.role = HA_ROLE_PRIMARY;
		st->self.state = HA_ST_RUNNING;
		st->pg_running = st->writable = st->holds_lease = true;
		snprintf(st->leader, sizeof st->leader, "n1");
		break;
	case 1:
		st->self.role = HA_ROLE_REPLICA;
		st->self.state = HA_ST_STREAMING;
		st->self.lag_bytes = (int64_t)(v * 977u);
		st->pg_running = st->streaming = true;
		snprintf(st->leader, sizeof st->leader, "n2");
		break;
	default:
		break;
	}
}

/* One request from [data, data + size). */
static void one_request(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char method[32], path[2048], query[4096], flags[8];
	field(&p, end, method, sizeof method);
	field(&p, end, path, sizeof path);
	field(&p, end, query, sizeof query);
	field(&p, end, flags, sizeof flags);
	unsigned f[4] = { 0, 0, 0, 0 };
	for (size_t i = 0; i < 4 && flags[i]; i++)
		f[i] = (unsigned char)flags[i];

	const char *hdr[4] = { NULL };
	int nh = 0;
	switch (f[0] % 4) {
	case 1:
		hdr[nh++] = "Authorization: Bearer " T_TOKEN;
		break;
	case 2:
		hdr[nh++] = "Authorization: Bearer " T_TOKEN "x";
		break;
	case 3:
		hdr[nh++] = "Authorization: Basic " T_TOKEN;
		break;
	default:
		break;
	}
	env.leader = f[1] % 4 == 0;
	env.leader_known = f[1] % 4 != 2;
	snprintf(env.leader_api, sizeof env.leader_api, "%s",
		 env.leader_known ? "http://10.9.0.2:8101" : "");
	if (f[1] % 4 == 3)
		hdr[nh++] = "X-Pgwarden-Forwarded: 1";
	set_agent(f[2]);
	if (f[2] % 4 == 3)
		t_env_set_agent(&env, false);
	env.answer_err = f[3] % 3 == 2 ? ERR_IO : 0;
	env.answer_status = f[3] % 3 == 1 ? 503 : 200;
	snprintf(env.answer_body, sizeof env.answer_body, "{\"ok\":true}\n");

	struct http_req *r = t_req_new(method, path[0] ? path : "/", query, hdr,
				       (const char *)p, (size_t)(end - p));
	t_dispatch(&env, r);
	check(r->answers == 1, "not answered exactly once", r);
	static const unsigned known[] = { 200, 400, 401, 403, 404, 405,
					  409, 412, 413, 503, 504 };
	bool ok = false;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		ok |= r->status == known[i];
	check(ok, "unexpected status", r);
	json_t *j = json_loadb(r->resp, r->resp_len, 0, NULL);
	check(j != NULL, "answer is not JSON", r);
	if (r->status >= 400 && r->status != 503 && r->status != 504) {
		/* an error answer names its error; a relayed 503 is the
		 * peer's body */
		check(json_is_string(json_object_get(j, "error")) &&
			      json_is_string(json_object_get(j, "code")),
		      "error answer without error and code", r);
	}
	json_decref(j);
	t_req_free(r);
	/* the agent back for the next input */
	if (f[2] % 4 == 3)
		t_env_set_agent(&env, true);
}

#define SEP "\n%%\n"
#define MAX_REQUESTS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		t_env_init(&env);
		ready = true;
	}
	/* state builds up across inputs; renewed to bound memory */
	if (++inputs % 2000 == 0)
		t_env_reset_store(&env);
	/* up to MAX_REQUESTS requests, so that one input can write a key
	 * (a member record, the history) and then read it through a route
	 * that parses it */
	const uint8_t *p = data, *end = data + size;
	for (int n = 0; n < MAX_REQUESTS && p <= end; n++) {
		const uint8_t *q = p;
		const uint8_t *sep = NULL;
		while (n + 1 < MAX_REQUESTS && (size_t)(end - q) >= 4) {
			if (memcmp(q, SEP, 4) == 0) {
				sep = q;
				break;
			}
			q++;
		}
		one_request(p, (size_t)((sep ? sep : end) - p));
		if (!sep)
			break;
		p = sep + 4;
	}
	return 0;
}
