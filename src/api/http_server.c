/* http_server.c - libmicrohttpd in external epoll mode on a libuv loop.
 *
 * Per request: MHD calls access_cb several times. First call: allocate the
 * request and return (answering on the first call makes MHD 0.9.75 close
 * every keep-alive connection). Upload calls: append the body. Final call:
 * dispatch to the handler once; if the handler answered synchronously the
 * response is queued at once, else the connection is suspended until
 * http_respond() stores the response and resumes it; MHD then calls
 * access_cb again and the stored response is queued.
 *
 * MHD must run after every resume, but never from inside its own callbacks:
 * resumes set a 0 ms timer. The service timer is capped at 1 s, because at
 * the connection limit MHD drops its listen socket from epoll and only
 * re-adds it during a later MHD_run.
 */
#include "api/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "err.h"
#include "log.h"
#include "mem.h"

#define SERVICE_CAP_MS 1000u

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const char *method;
	const char *path;
	char *query;         /* owned */
	char *body;          /* owned, NUL-terminated */
	size_t body_len;
	bool too_big;
	bool dispatched;
	bool suspended;
	bool answered;       /* response stored */
	bool in_handler;
	struct MHD_Response *resp;
	unsigned status;
	struct http_req *prev, *next; /* suspended list */
};

struct http_server {
	uv_loop_t *loop;
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	int open_handles;
	bool closing;
	http_handler handler;
	void *arg;
	struct http_req *waiting; /* dispatched, not answered */
	void (*close_cb)(void *);
	void *close_arg;
};

static void service(struct http_server *srv);

static void on_timer(uv_timer_t *t)
{
	service(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)events;
	struct http_server *srv = p->data;
	if (status < 0)
		log_warn("http epoll poll: %s", uv_strerror(status));
	service(srv);
}

static void service(struct http_server *srv)
{
	if (!srv->mhd)
		return;
	MHD_run(srv->mhd);
	MHD_UNSIGNED_LONG_LONG to = 0;
	uint64_t wait = SERVICE_CAP_MS;
	if (MHD_get_timeout(srv->mhd, &to) == MHD_YES && to < wait)
		wait = to;
	uv_timer_start(&srv->timer, on_timer, wait, 0);
}

static void waiting_add(struct http_req *r)
{
	struct http_server *srv = r->srv;
	r->next = srv->waiting;
	r->prev = NULL;
	if (srv->waiting)
		srv->waiting->prev = r;
	srv->waiting = r;
}

static void waiting_del(struct http_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (r->srv->waiting == r)
		r->srv->waiting = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static enum MHD_Result queue_stored(struct http_req *r)
{
	enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

static enum MHD_Result simple_reply(struct MHD_Connection *c, unsigned status,
				    const char *json)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		strlen(json), (void *)json, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn,
				 const char *url, const char *method,
				 const char *version, const char *upload,
				 size_t *upload_size, void **con_cls)
{
	(void)version;
	struct http_server *srv = cls;
	struct http_req *r = *con_cls;
	if (!r) {
		r = mem_calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		r->srv = srv;
		r->conn = conn;
		r->method = method;
		r->path = url;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!r->too_big) {
			if (r->body_len + *upload_size > HTTP_MAX_BODY) {
				r->too_big = true;
				mem_free(r->body);
				r->body = NULL;
				r->body_len = 0;
			} else {
				char *nb = mem_realloc(
					r->body, r->body_len + *upload_size + 1);
				if (!nb)
					return MHD_NO;
				memcpy(nb + r->body_len, upload, *upload_size);
				r->body_len += *upload_size;
				nb[r->body_len] = '\0';
				r->body = nb;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->answered)
		return queue_stored(r);
	if (r->dispatched)
		return MHD_YES; /* spurious call while waiting */
	r->dispatched = true;
	if (r->too_big)
		return simple_reply(conn, 413,
				    "{\"error\":\"request body too large\","
				    "\"code\":\"ERR_TOOBIG\"}\n");
	if (srv->closing)
		return simple_reply(conn, 503,
				    "{\"error\":\"shutting down\","
				    "\"code\":\"ERR_SHUTDOWN\"}\n");
	r->in_handler = true;
	srv->handler(srv->arg, r);
	r->in_handler = false;
	if (r->answered)
		return queue_stored(r);
	/* The handler answers later: park the connection. */
	waiting_add(r);
	r->suspended = true;
	MHD_suspend_connection(conn);
	return MHD_YES;
}

static void completed_cb(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode term)
{
	(void)cls;
	(void)conn;
	(void)term;
	struct http_req *r = *con_cls;
	if (!r)
		return;
	if (r->resp)
		MHD_destroy_response(r->resp);
	waiting_del(r);
	mem_free(r->query);
	mem_free(r->body);
	mem_free(r);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof buf, fmt, ap);
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warn("http mhd: %s", buf);
}

int http_server_new(uv_loop_t *loop, const char *host, uint16_t port,
		    http_handler handler, void *arg, struct http_server **out,
		    char *errmsg, size_t errlen)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		flags |= MHD_USE_IPv6;
	} else if (strcmp(host, "localhost") == 0) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		snprintf(errmsg, errlen,
			 "api listen address %s is not a numeric IP address",
			 host);
		return ERR_INVAL;
	}
	struct http_server *srv = mem_calloc(1, sizeof *srv);
	if (!srv) {
		snprintf(errmsg, errlen, "out of memory");
		return ERR_NOMEM;
	}
	srv->loop = loop;
	srv->handler = handler;
	srv->arg = arg;
	srv->mhd = MHD_start_daemon(
		flags, port, NULL, NULL, access_cb, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED,
		completed_cb, srv, MHD_OPTION_CONNECTION_LIMIT, 1000u,
		MHD_OPTION_CONNECTION_TIMEOUT, 30u,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 512u, MHD_OPTION_END);
	if (!srv->mhd) {
		snprintf(errmsg, errlen, "cannot listen on %s:%u: %s", host,
			 port, strerror(errno));
		mem_free(srv);
		return ERR_IO;
	}
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		snprintf(errmsg, errlen, "libmicrohttpd has no epoll fd");
		MHD_stop_daemon(srv->mhd);
		mem_free(srv);
		return ERR_IO;
	}
	uv_poll_init(loop, &srv->poll, info->epoll_fd);
	srv->poll.data = srv;
	uv_timer_init(loop, &srv->timer);
	srv->timer.data = srv;
	srv->open_handles = 2;
	uv_poll_start(&srv->poll, UV_READABLE, on_poll);
	uv_timer_start(&srv->timer, on_timer, 0, 0);
	*out = srv;
	return 0;
}

const char *http_req_method(struct http_req *r)
{
	return r->method;
}

const char *http_req_path(struct http_req *r)
{
	return r->path;
}

static void pct_append(char *dst, size_t *o, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		unsigned char ch = *p;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == '~' || ch == '/') {
			dst[(*o)++] = (char)ch;
		} else {
			dst[(*o)++] = '%';
			dst[(*o)++] = hex[ch >> 4];
			dst[(*o)++] = hex[ch & 15];
		}
	}
	dst[*o] = '\0';
}

/* Rebuild the query string, percent-encoded again (MHD hands us decoded
 * values), so that it can be forwarded as is. */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind,
				   const char *key, const char *value)
{
	(void)kind;
	struct http_req *r = cls;
	size_t old = r->query ? strlen(r->query) : 0;
	size_t add = 3 * (strlen(key) + (value ? strlen(value) : 0)) + 3;
	char *q = mem_realloc(r->query, old + add);
	if (!q)
		return MHD_NO;
	size_t o = old;
	if (old)
		q[o++] = '&';
	q[o] = '\0';
	pct_append(q, &o, key);
	if (value) {
		q[o++] = '=';
		q[o] = '\0';
		pct_append(q, &o, value);
	}
	r->query = q;
	return MHD_YES;
}

struct unknown_ctx {
	const char *const *allowed;
	const char *found;
};

static enum MHD_Result find_unknown(void *cls, enum MHD_ValueKind kind,
				    const char *key, const char *value)
{
	(void)kind;
	(void)value;
	struct unknown_ctx *u = cls;
	for (size_t i = 0; u->allowed[i]; i++)
		if (strcmp(u->allowed[i], key) == 0)
			return MHD_YES;
	u->found = key;
	return MHD_NO;
}

const char *http_req_unknown_query(struct http_req *r,
				   const char *const *allowed)
{
	struct unknown_ctx u = { allowed, NULL };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, find_unknown,
				  &u);
	return u.found;
}

const char *http_req_query_string(struct http_req *r)
{
	if (!r->query) {
		MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND,
					  collect_arg, r);
		if (!r->query)
			r->query = mem_strdup("");
	}
	return r->query ? r->query : "";
}

const char *http_req_query(struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

const char *http_req_header(struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_req_body(struct http_req *r, size_t *len)
{
	*len = r->body_len;
	return r->body ? r->body : "";
}

static void on_resume_timer(uv_timer_t *t)
{
	service(t->data);
}

void http_respond(struct http_req *r, unsigned status, const char *ctype,
		  const char *body, size_t len, const char *hname,
		  const char *hvalue)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp) {
		if (ctype)
			MHD_add_response_header(resp, "Content-Type", ctype);
		if (hname)
			MHD_add_response_header(resp, hname, hvalue);
	}
	r->resp = resp;
	r->status = status;
	r->answered = true;
	if (r->in_handler)
		return;
	if (r->suspended) {
		struct http_server *srv = r->srv;
		waiting_del(r);
		r->suspended = false;
		MHD_resume_connection(r->conn);
		/* MHD_run must not run inside an MHD callback: next turn. */
		uv_timer_start(&srv->timer, on_resume_timer, 0, 0);
	}
}

static void on_closed(uv_handle_t *h)
{
	struct http_server *srv = h->data;
	if (--srv->open_handles > 0)
		return;
	if (srv->mhd) {
		MHD_stop_daemon(srv->mhd);
		srv->mhd = NULL;
	}
	void (*cb)(void *) = srv->close_cb;
	void *arg = srv->close_arg;
	mem_free(srv);
	if (cb)
		cb(arg);
}

void http_server_close(struct http_server *srv, void (*cb)(void *arg),
		       void *arg)
{
	srv->closing = true;
	srv->close_cb = cb;
	srv->close_arg = arg;
	/* Stop accepting; answer everyone still waiting. */
	int lfd = MHD_quiesce_daemon(srv->mhd);
	if (lfd >= 0)
		close(lfd);
	while (srv->waiting) {
		static const char msg[] = "{\"error\":\"shutting down\","
					  "\"code\":\"ERR_SHUTDOWN\"}\n";
		http_respond(srv->waiting, 503, "application/json", msg,
			     sizeof msg - 1, NULL, NULL);
	}
	MHD_run(srv->mhd);
	uv_poll_stop(&srv->poll);
	uv_timer_stop(&srv->timer);
	uv_close((uv_handle_t *)&srv->poll, on_closed);
	uv_close((uv_handle_t *)&srv->timer, on_closed);
}
