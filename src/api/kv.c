/* kv.c - local or forwarded store submissions.
 *
 * Leader: rs_store_submit -> its callback is ours. Follower: encode the
 * command, POST it to <leader api>/internal/apply (Bearer token,
 * X-Pgwarden-Forwarded) with the caller's deadline; 200 carries the result
 * as JSON; 503/504 or a transport failure is ERR_UNAVAILABLE/ERR_TIMEOUT.
 * A command whose forward fails to start is answered on the next loop turn
 * (never inside kv_submit) through a 0 ms timer.
 */
#include "api/kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "log.h"
#include "mem.h"

struct kv {
	uv_loop_t *loop;
	struct rs_store *store;
	struct http_client *http;
	char *token;
};

struct kv_req {
	struct kv *k;
	kv_cb cb;
	void *arg;
	int status;
	uv_timer_t later; /* deferred failure */
};

int kv_new(uv_loop_t *loop, struct rs_store *store, struct http_client *http,
	   const char *token, struct kv **out)
{
	struct kv *k = mem_calloc(1, sizeof *k);
	if (!k)
		return ERR_NOMEM;
	k->loop = loop;
	k->store = store;
	k->http = http;
	k->token = mem_strdup(token);
	if (!k->token) {
		mem_free(k);
		return ERR_NOMEM;
	}
	*out = k;
	return 0;
}

void kv_free(struct kv *k)
{
	if (!k)
		return;
	mem_free(k->token);
	mem_free(k);
}

int kv_result_parse(const char *body, size_t len, struct rs_result *res)
{
	json_error_t jerr;
	json_t *o = json_loadb(body, len, 0, &jerr);
	memset(res, 0, sizeof *res);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return ERR_CORRUPT;
	}
	json_int_t code = 0, rev = 0, ttl = 0, count = 0;
	const char *lease = NULL;
	if (json_unpack(o, "{s:I,s:I,s:s,s:I,s:I}", "code", &code, "revision",
			&rev, "lease", &lease, "ttl_ms", &ttl, "count",
			&count) != 0 ||
	    rev < 0 || ttl < 0 || count < 0 || code > 0) {
		json_decref(o);
		return ERR_CORRUPT;
	}
	char *end;
	res->lease = strtoull(lease, &end, 16);
	if (*end || !*lease) {
		json_decref(o);
		return ERR_CORRUPT;
	}
	res->code = (int)code;
	res->revision = (uint64_t)rev;
	res->ttl_ms = (uint64_t)ttl;
	res->count = (uint64_t)count;
	json_decref(o);
	return 0;
}

static void on_later_closed(uv_handle_t *h)
{
	mem_free(h->data);
}

static void on_later(uv_timer_t *t)
{
	struct kv_req *r = t->data;
	r->cb(r->arg, r->status, NULL);
	uv_close((uv_handle_t *)&r->later, on_later_closed);
}

static int fail_later(struct kv *k, int status, kv_cb cb, void *arg)
{
	struct kv_req *r = mem_calloc(1, sizeof *r);
	if (!r)
		return ERR_NOMEM;
	r->k = k;
	r->cb = cb;
	r->arg = arg;
	r->status = status;
	uv_timer_init(k->loop, &r->later);
	r->later.data = r;
	uv_timer_start(&r->later, on_later, 0, 0);
	return 0;
}

static void on_forwarded(void *arg, int err, long status, const char *body,
			 size_t len)
{
	struct kv_req *r = arg;
	struct rs_result res;
	int st;
	if (err != 0)
		st = err == ERR_TIMEOUT ? ERR_TIMEOUT : ERR_UNAVAILABLE;
	else if (status == 200)
		st = kv_result_parse(body, len, &res);
	else if (status == 503)
		st = ERR_UNAVAILABLE;
	else if (status == 504)
		st = ERR_TIMEOUT;
	else if (status == 401 || status == 403)
		st = ERR_AUTH;
	else
		st = ERR_INVAL;
	if (st != 0 && err == 0 && status != 503)
		log_warn("kv forward answered %ld: %.*s", status,
			 (int)(len > 200 ? 200 : len), body);
	r->cb(r->arg, st, st == 0 ? &res : NULL);
	mem_free(r);
}

int kv_submit(struct kv *k, const struct rs_cmd *c, unsigned timeout_ms,
	      kv_cb cb, void *arg)
{
	if (rs_store_is_leader(k->store)) {
		int rv = rs_store_submit(k->store, c, cb, arg);
		if (rv != ERR_NOTLEADER)
			return rv == 0 ? 0 : fail_later(k, rv, cb, arg);
	}
	struct rs_member leader;
	if (rs_store_leader(k->store, &leader) != 0 || !leader.api[0])
		return fail_later(k, ERR_UNAVAILABLE, cb, arg);
	size_t len = rs_cmd_encoded_size(c);
	if (len == 0)
		return ERR_INVAL;
	char *buf = mem_malloc(len);
	if (!buf)
		return ERR_NOMEM;
	rs_cmd_encode(c, buf, len);
	struct kv_req *r = mem_calloc(1, sizeof *r);
	if (!r) {
		mem_free(buf);
		return ERR_NOMEM;
	}
	r->k = k;
	r->cb = cb;
	r->arg = arg;
	char url[RS_MAX_ADDR + 32];
	snprintf(url, sizeof url, "%s/internal/apply", leader.api);
	char auth[4200];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", k->token);
	const char *headers[] = { auth, "X-Pgwarden-Forwarded: 1",
				  "Content-Type: application/octet-stream",
				  "Expect:", NULL };
	int rv = http_client_request(k->http, "POST", url, headers, buf, len,
				     timeout_ms, on_forwarded, r);
	mem_free(buf);
	if (rv != 0) {
		mem_free(r);
		return fail_later(k, rv, cb, arg);
	}
	return 0;
}
