/* http_client.h - asynchronous HTTP requests with libcurl's multi interface
 * on the libuv loop (no thread): forwarding to the Raft leader and other
 * node-to-node calls.
 *
 * Every request has a total timeout. The callback fires exactly once, never
 * before http_client_request() returns, with err 0 and the HTTP status and
 * body (borrowed for the duration of the callback), or err < 0 (ERR_IO,
 * ERR_TIMEOUT, ERR_SHUTDOWN) and status 0.
 */
#ifndef PGW_HTTP_CLIENT_H
#define PGW_HTTP_CLIENT_H

#include <stddef.h>

#include <uv.h>

struct http_client;

typedef void (*http_client_cb)(void *arg, int err, long status,
			       const char *body, size_t len);

int http_client_new(uv_loop_t *loop, struct http_client **out);

/* headers: NULL or a NULL-terminated list of "Name: value" lines (copied).
 * body may be NULL for no body. */
int http_client_request(struct http_client *c, const char *method,
			const char *url, const char *const *headers,
			const char *body, size_t len, unsigned timeout_ms,
			http_client_cb cb, void *arg);

/* Cancel every request (callbacks fire with ERR_SHUTDOWN), then close the
 * uv handles; cb fires when all are closed and the client is freed. */
void http_client_close(struct http_client *c, void (*cb)(void *arg),
		       void *arg);

#endif
