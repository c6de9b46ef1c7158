/* cfg_resolve.c - host names of the configuration to numeric addresses,
 * once, at startup (see cfg.h, "host names").
 *
 * cfg_resolve() flow:
 *   1. List what needs an address: [raft] advertise and listen (the
 *      address the transport binds: no loopback rule), every [raft] peers
 *      item (IPv4 only), [api] listen, and [postgresql] connect_address
 *      when the node runs PostgreSQL. A numeric host is taken at once.
 *   2. For each host name, one uv_getaddrinfo() request on a private loop
 *      (all at once: libuv's thread pool runs them in parallel); uv_run()
 *      returns when every callback has fired. The loop is then closed, so
 *      nothing of it outlives the call. No timer: the resolver's own
 *      timeouts (resolv.conf) bound each request.
 *   3. Each callback keeps cfg_addr_pick()'s choice or the failure.
 *   4. In list order, the first failure becomes the error ("FILE:LINE:
 *      [raft] peers: cannot resolve ..."). A name that resolves to a
 *      loopback address for Raft or connect_address while some Raft
 *      address is not loopback is an error too: the other machines could
 *      not reach it (Debian's /etc/hosts maps the machine's own name to
 *      127.0.1.1). Otherwise every *_addr field is filled. On failure
 *      nothing is filled.
 */
#include "config/cfg.h"

#include "err.h"
#include "mem.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#define HOST_MAX 256

enum want {
	W_RAFT,    /* "a.b.c.d:port" */
	W_BIND,    /* "a.b.c.d:port" or "[v6]:port" */
	W_HOSTADDR /* the address alone */
};

struct item {
	uv_getaddrinfo_t req;     /* req.data = this item */
	const char *what;         /* borrowed: "[raft] peers" ... */
	const char *peer;         /* borrowed: peer name, or NULL */
	const char *value;        /* borrowed: host:port as written */
	unsigned line;
	enum want want;
	char host[HOST_MAX];
	uint16_t port;
	bool pending;             /* a request is out */
	bool named;               /* the host is a name (resolved here) */
	bool bind;                /* an address to listen on: no loopback
				     rule */
	int status;               /* 0, a UV_EAI_* code, or 1: no usable
				     address */
	char addr[INET6_ADDRSTRLEN]; /* the choice */
	char **dst;               /* borrowed: the field to fill */
};

int cfg_addr_pick(const struct addrinfo *list, bool v4_only, char *out,
		  size_t len)
{
	const struct addrinfo *v6 = NULL;
	for (const struct addrinfo *a = list; a; a = a->ai_next) {
		if (a->ai_family == AF_INET && a->ai_addr) {
			const struct sockaddr_in *s =
				(const struct sockaddr_in *)(const void *)
					a->ai_addr;
			if (!inet_ntop(AF_INET, &s->sin_addr, out,
				       (socklen_t)len))
				return ERR_NOTFOUND;
			return 0;
		}
		if (a->ai_family == AF_INET6 && a->ai_addr && !v6)
			v6 = a;
	}
	if (!v6 || v4_only)
		return ERR_NOTFOUND;
	const struct sockaddr_in6 *s =
		(const struct sockaddr_in6 *)(const void *)v6->ai_addr;
	if (!inet_ntop(AF_INET6, &s->sin6_addr, out, (socklen_t)len))
		return ERR_NOTFOUND;
	return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
			struct addrinfo *res)
{
	struct item *it = req->data;
	it->pending = false;
	it->status = status;
	if (status == 0 &&
	    cfg_addr_pick(res, it->want == W_RAFT, it->addr,
			  sizeof it->addr) != 0)
		it->status = 1;
	uv_freeaddrinfo(res);
}

static bool numeric(const char *host, bool *v6)
{
	unsigned char buf[sizeof(struct in6_addr)];
	*v6 = false;
	if (inet_pton(AF_INET, host, buf) == 1)
		return true;
	if (strchr(host, ':')) {
		*v6 = true;
		return true; /* cfg_load checked it (a zone is allowed) */
	}
	return false;
}

static bool loopback(const char *addr)
{
	struct in_addr a4;
	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return strcmp(addr, "::1") == 0;
}

static int fail(const struct cfg *c, const struct item *it, char *err,
		size_t errlen)
{
	char peer[96] = "";
	if (it->peer)
		snprintf(peer, sizeof peer, " of peer '%s'", it->peer);
	if (it->status == 1)
		snprintf(err, errlen,
			 "%s:%u: %s: '%s'%s resolves to no %s address%s",
			 c->path, it->line, it->what, it->host, peer,
			 it->want == W_RAFT ? "IPv4" : "IPv4 or IPv6",
			 it->want == W_RAFT ? " (libraft's TCP transport "
					      "takes IPv4 only)"
					    : "");
	else
		snprintf(err, errlen, "%s:%u: %s: cannot resolve '%s'%s: %s",
			 c->path, it->line, it->what, it->host, peer,
			 uv_strerror(it->status));
	return it->status == UV_ENOMEM ? ERR_NOMEM : ERR_INVAL;
}

static int format(const struct item *it, char **out)
{
	size_t n = strlen(it->addr) + 16;
	char *s = mem_malloc(n);
	if (!s)
		return ERR_NOMEM;
	if (it->want == W_HOSTADDR)
		snprintf(s, n, "%s", it->addr);
	else if (strchr(it->addr, ':'))
		snprintf(s, n, "[%s]:%u", it->addr, it->port);
	else
		snprintf(s, n, "%s:%u", it->addr, it->port);
	*out = s;
	return 0;
}

int cfg_resolve(struct cfg *c, char *err, size_t errlen)
{
	size_t n = c->npeers + 4, ni = 0;
	struct item *items = mem_calloc(n, sizeof *items);
	char **tmp = mem_calloc(n, sizeof *tmp);
	uv_loop_t loop;
	int rc = 0;
	bool loop_up = false;

	if (err && errlen)
		err[0] = '\0';
	if (!items || !tmp) {
		snprintf(err, errlen, "%s: out of memory", c->path);
		rc = ERR_NOMEM;
		goto out;
	}
	items[ni++] = (struct item){ .what = "[raft] advertise",
				     .value = c->raft_advertise,
				     .line = c->raft_advertise_line,
				     .want = W_RAFT,
				     .dst = &c->raft_advertise_addr };
	items[ni++] = (struct item){ .what = "[raft] listen",
				     .value = c->raft_listen,
				     .line = c->raft_listen_line,
				     .want = W_RAFT,
				     .bind = true,
				     .dst = &c->raft_listen_addr };
	for (size_t i = 0; i < c->npeers; i++)
		items[ni++] = (struct item){ .what = "[raft] peers",
					     .peer = c->peers[i].name,
					     .value = c->peers[i].address,
					     .line = c->peers[i].line,
					     .want = W_RAFT,
					     .dst = &c->peers[i].addr };
	items[ni++] = (struct item){ .what = "[api] listen",
				     .value = c->api_listen,
				     .line = c->api_listen_line,
				     .want = W_BIND,
				     .dst = &c->api_listen_addr };
	if (c->pg.enabled)
		items[ni++] = (struct item){ .what = "[postgresql] "
						     "connect_address",
					     .value = c->pg.connect_address,
					     .line = c->pg.connect_line,
					     .want = W_HOSTADDR,
					     .dst = &c->pg.connect_hostaddr };

	rc = uv_loop_init(&loop);
	if (rc != 0) {
		snprintf(err, errlen, "%s: resolve: %s", c->path,
			 uv_strerror(rc));
		rc = ERR_NOMEM;
		goto out;
	}
	loop_up = true;
	for (size_t i = 0; i < ni; i++) {
		struct item *it = &items[i];
		bool v6;
		if (!it->value ||
		    cfg_split_hostport(it->value, it->host, sizeof it->host,
				       &it->port) != 0) {
			/* cfg_load accepted it: a programmer error */
			snprintf(err, errlen, "%s:%u: %s: bad address '%s'",
				 c->path, it->line, it->what,
				 it->value ? it->value : "(none)");
			rc = ERR_INVAL;
			goto out;
		}
		if (numeric(it->host, &v6)) {
			if (v6 && it->want == W_RAFT) {
				it->status = 1; /* cfg_load refuses it */
				continue;
			}
			snprintf(it->addr, sizeof it->addr, "%s", it->host);
			continue;
		}
		struct addrinfo hints;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = it->want == W_RAFT ? AF_INET : AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		it->req.data = it;
		it->named = true;
		int r = uv_getaddrinfo(&loop, &it->req, on_resolved, it->host,
				       NULL, &hints);
		if (r != 0)
			it->status = r;
		else
			it->pending = true;
	}
	uv_run(&loop, UV_RUN_DEFAULT); /* until every request has answered */

	for (size_t i = 0; i < ni; i++) {
		if (items[i].status != 0) {
			rc = fail(c, &items[i], err, errlen);
			goto out;
		}
	}
	const struct item *lan = NULL; /* a Raft address off loopback */
	for (size_t i = 0; i < ni && !lan; i++)
		if (items[i].want == W_RAFT && !items[i].bind &&
		    !loopback(items[i].addr))
			lan = &items[i];
	for (size_t i = 0; lan && i < ni; i++) {
		const struct item *it = &items[i];
		if (!it->named || it->want == W_BIND || it->bind ||
		    !loopback(it->addr))
			continue;
		char peer[96] = "";
		if (it->peer)
			snprintf(peer, sizeof peer, " of peer '%s'", it->peer);
		snprintf(err, errlen,
			 "%s:%u: %s: '%s'%s resolves to the loopback address "
			 "%s on this machine, but %s is not on loopback (%s): "
			 "the other nodes could not reach it (Debian's "
			 "/etc/hosts maps the machine's own name to "
			 "127.0.1.1); use a name or address of the node's "
			 "network",
			 c->path, it->line, it->what, it->host, peer, it->addr,
			 lan->value, lan->addr);
		rc = ERR_INVAL;
		goto out;
	}
	for (size_t i = 0; i < ni; i++) {
		if (format(&items[i], &tmp[i]) != 0) {
			snprintf(err, errlen, "%s: out of memory", c->path);
			rc = ERR_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < ni; i++) {
		mem_free(*items[i].dst);
		*items[i].dst = tmp[i];
		tmp[i] = NULL;
	}
out:
	if (loop_up) {
		uv_run(&loop, UV_RUN_DEFAULT); /* nothing left; to be sure */
		(void)uv_loop_close(&loop);
	}
	for (size_t i = 0; tmp && i < n; i++)
		mem_free(tmp[i]);
	mem_free(tmp);
	mem_free(items);
	return rc;
}
