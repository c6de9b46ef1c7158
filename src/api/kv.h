/* kv.h - the daemon's own client of the replicated store.
 *
 * The agent and controller submit commands through kv_submit(): on the
 * Raft leader it goes straight to rs_store_submit(); elsewhere the encoded
 * command is sent to the leader's POST /internal/apply with the cluster
 * token, and the leader's result comes back. Reads are local
 * (rs_store_fsm()). Loop thread only.
 */
#ifndef PGW_KV_H
#define PGW_KV_H

#include <uv.h>

#include "api/http_client.h"
#include "rs.h"

struct kv;

/* status 0 with res (res->code may be ERR_CONFLICT, ERR_NOTFOUND, ...), or
 * status < 0 (ERR_UNAVAILABLE: no leader known or reachable, ERR_TIMEOUT,
 * ERR_NOTLEADER, ERR_SHUTDOWN) with res NULL. Never called before
 * kv_submit() returns. */
typedef void (*kv_cb)(void *arg, int status, const struct rs_result *res);

int kv_new(uv_loop_t *loop, struct rs_store *store, struct http_client *http,
	   const char *token, struct kv **out);
void kv_free(struct kv *k);

/* Submit c (copied) with a deadline for the forwarded case. */
int kv_submit(struct kv *k, const struct rs_cmd *c, unsigned timeout_ms,
	      kv_cb cb, void *arg);

/* Decode a /internal/apply response body into *res; 0 or ERR_CORRUPT. */
int kv_result_parse(const char *body, size_t len, struct rs_result *res);

#endif
