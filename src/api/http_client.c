/* http_client.c - libcurl multi driven by libuv.
 *
 * curl tells us which sockets to watch (socket callback -> one uv_poll per
 * socket, kept with curl_multi_assign) and when to time out (timer callback
 * -> one uv_timer). Readiness and timeouts go back through
 * curl_multi_socket_action; finished transfers are drained with
 * curl_multi_info_read and their callbacks run from there.
 * CURL_POLL_REMOVE stops and closes the uv_poll before curl closes the fd.
 * Completion callbacks run from a uv callback, never inside
 * http_client_request(): a request that fails to start is reported on the
 * next loop turn through the same timer path.
 */
#include "api/http_client.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "err.h"
#include "log.h"
#include "mem.h"

struct sock_ctx {
	uv_poll_t poll;
	curl_socket_t fd;
	struct http_client *c;
};

struct xfer {
	CURL *easy;
	struct curl_slist *headers;
	char *body;       /* owned request body */
	char *resp;       /* owned response body */
	size_t resp_len;
	http_client_cb cb;
	void *arg;
	struct xfer *prev, *next;
};

struct http_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	int open_handles; /* timer + socket polls */
	bool closing;
	struct xfer *xfers;
	void (*close_cb)(void *);
	void *close_arg;
};

static void check_done(struct http_client *c);

static void xfer_unlink(struct http_client *c, struct xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		c->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
}

static void xfer_free(struct xfer *x)
{
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	mem_free(x->body);
	mem_free(x->resp);
	mem_free(x);
}

static void xfer_finish(struct http_client *c, struct xfer *x, CURLcode rc)
{
	xfer_unlink(c, x);
	curl_multi_remove_handle(c->multi, x->easy);
	long status = 0;
	int err = 0;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		err = ERR_TIMEOUT;
	} else {
		err = ERR_IO;
		log_debug("http client: %s", curl_easy_strerror(rc));
	}
	if (x->cb)
		x->cb(x->arg, err, status, x->resp ? x->resp : "",
		      x->resp_len);
	xfer_free(x);
}

static void check_done(struct http_client *c)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(c->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct xfer *x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &x);
		CURLcode rc = msg->data.result;
		if (x)
			xfer_finish(c, x, rc);
	}
}

static void on_sock(uv_poll_t *p, int status, int events)
{
	struct sock_ctx *sc = p->data;
	struct http_client *c = sc->c;
	int flags = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	int running;
	curl_multi_socket_action(c->multi, sc->fd, flags, &running);
	check_done(c);
}

static void on_timeout(uv_timer_t *t)
{
	struct http_client *c = t->data;
	int running;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static void maybe_finish_close(struct http_client *c);

static void on_sock_closed(uv_handle_t *h)
{
	struct sock_ctx *sc = h->data;
	struct http_client *c = sc->c;
	mem_free(sc);
	c->open_handles--;
	maybe_finish_close(c);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
		   void *socketp)
{
	(void)easy;
	struct http_client *c = userp;
	struct sock_ctx *sc = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sc) {
			uv_poll_stop(&sc->poll);
			uv_close((uv_handle_t *)&sc->poll, on_sock_closed);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	if (!sc) {
		sc = mem_calloc(1, sizeof *sc);
		if (!sc)
			return -1;
		sc->fd = fd;
		sc->c = c;
		if (uv_poll_init_socket(c->loop, &sc->poll, fd) != 0) {
			mem_free(sc);
			return -1;
		}
		sc->poll.data = sc;
		c->open_handles++;
		curl_multi_assign(c->multi, fd, sc);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&sc->poll, ev, on_sock);
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct http_client *c = userp;
	if (timeout_ms < 0)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;
	if (x->resp_len + n > 8u * 1024u * 1024u)
		return 0; /* refuse absurd responses */
	char *nb = mem_realloc(x->resp, x->resp_len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + x->resp_len, ptr, n);
	x->resp_len += n;
	nb[x->resp_len] = '\0';
	x->resp = nb;
	return n;
}

int http_client_new(uv_loop_t *loop, struct http_client **out)
{
	static bool global_done;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_NOTHING) != CURLE_OK)
			return ERR_IO;
		global_done = true;
	}
	struct http_client *c = mem_calloc(1, sizeof *c);
	if (!c)
		return ERR_NOMEM;
	c->loop = loop;
	c->multi = curl_multi_init();
	if (!c->multi) {
		mem_free(c);
		return ERR_NOMEM;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->open_handles = 1;
	*out = c;
	return 0;
}

int http_client_request(struct http_client *c, const char *method,
			const char *url, const char *const *headers,
			const char *body, size_t len, unsigned timeout_ms,
			http_client_cb cb, void *arg)
{
	if (c->closing)
		return ERR_SHUTDOWN;
	struct xfer *x = mem_calloc(1, sizeof *x);
	if (!x)
		return ERR_NOMEM;
	x->easy = curl_easy_init();
	if (!x->easy) {
		mem_free(x);
		return ERR_NOMEM;
	}
	x->cb = cb;
	x->arg = arg;
	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *h = curl_slist_append(x->headers, headers[i]);
		if (!h) {
			xfer_free(x);
			return ERR_NOMEM;
		}
		x->headers = h;
	}
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(timeout_ms < 1000 ? timeout_ms : 1000));
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	if (x->headers)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	if (body) {
		x->body = mem_malloc(len + 1);
		if (!x->body) {
			xfer_free(x);
			return ERR_NOMEM;
		}
		memcpy(x->body, body, len);
		x->body[len] = '\0';
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
	} else if (strcmp(method, "GET") == 0 ||
		   strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
		if (strcmp(method, "HEAD") == 0)
			curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	}
	x->next = c->xfers;
	if (c->xfers)
		c->xfers->prev = x;
	c->xfers = x;
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		xfer_unlink(c, x);
		xfer_free(x);
		return ERR_IO;
	}
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct http_client *c = h->data;
	c->open_handles--;
	maybe_finish_close(c);
}

static void maybe_finish_close(struct http_client *c)
{
	if (!c->closing || c->open_handles > 0)
		return;
	void (*cb)(void *) = c->close_cb;
	void *arg = c->close_arg;
	mem_free(c);
	if (cb)
		cb(arg);
}

void http_client_close(struct http_client *c, void (*cb)(void *arg),
		       void *arg)
{
	c->closing = true;
	c->close_cb = cb;
	c->close_arg = arg;
	while (c->xfers) {
		struct xfer *x = c->xfers;
		xfer_unlink(c, x);
		curl_multi_remove_handle(c->multi, x->easy);
		if (x->cb)
			x->cb(x->arg, ERR_SHUTDOWN, 0, "", 0);
		xfer_free(x);
	}
	/* Removing handles closed their sockets: curl already asked us to
	 * stop watching them. Cleaning up the multi closes the rest. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
