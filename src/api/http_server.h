/* http_server.h - libmicrohttpd served from the libuv loop (no thread).
 *
 * MHD runs in external epoll mode: its epoll fd is watched with uv_poll and
 * a capped uv_timer drives its timeouts. Each complete request (headers and
 * body) is handed to the handler once; the handler answers with
 * http_respond(), either before returning or later from any loop callback
 * (the connection is suspended meanwhile). Bodies over HTTP_MAX_BODY get 413
 * without reaching the handler.
 *
 * Shutdown: http_server_close() stops accepting, answers every request
 * still waiting for its handler's response with 503, stops MHD and closes
 * the uv handles; cb fires after the last one closed.
 */
#ifndef PGW_HTTP_SERVER_H
#define PGW_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define HTTP_MAX_BODY (2u * 1024u * 1024u)

struct http_server;
struct http_req;

/* Called once per complete request; req stays valid until http_respond. */
typedef void (*http_handler)(void *arg, struct http_req *req);

/* Listen on host:port (host may be a name only if numeric: the daemon
 * resolves nothing on the loop). */
int http_server_new(uv_loop_t *loop, const char *host, uint16_t port,
		    http_handler handler, void *arg, struct http_server **out,
		    char *errmsg, size_t errlen);
void http_server_close(struct http_server *srv, void (*cb)(void *arg),
		       void *arg);

/* Request accessors; strings are borrowed from MHD, valid until
 * http_respond(). */
const char *http_req_method(struct http_req *req);
const char *http_req_path(struct http_req *req);
/* Raw query string without '?', "" if none (owned by req). */
const char *http_req_query_string(struct http_req *req);
const char *http_req_query(struct http_req *req, const char *name);
/* First query parameter whose name is not in allowed (NULL-terminated), or
 * NULL when all are known. */
const char *http_req_unknown_query(struct http_req *req,
				   const char *const *allowed);
const char *http_req_header(struct http_req *req, const char *name);
const char *http_req_body(struct http_req *req, size_t *len);

/* Answer req: status, content type, body (copied), and an optional extra
 * header (name NULL for none). req is freed; do not touch it after. */
void http_respond(struct http_req *req, unsigned status, const char *ctype,
		  const char *body, size_t len, const char *hname,
		  const char *hvalue);

#endif
