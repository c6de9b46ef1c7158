/* cfg.c - load and validate the node's ini file (see cfg.h).
 *
 * cfg_load() flow:
 *   1. fopen FILE; failure -> "FILE: cannot open: <strerror>".
 *   2. ini_parse_stream() with read_line() as the reader. read_line() numbers
 *      the lines (so on_pair() knows the current line), rejects over-long
 *      lines and NUL bytes, and classifies every raw line exactly as inih
 *      does: it sees [section] headers (unknown and repeated sections are
 *      rejected at once, even empty ones; each header's line is kept for
 *      "missing key" errors) and it knows whether a line is an inih
 *      continuation line (indented text after a key line).
 *   3. inih calls on_pair() for each key line and each continuation line.
 *      It looks the key up in the table below, rejects unknown and duplicate
 *      keys and parses the value into struct cfg right away, so value errors
 *      carry the key's line. token_file is read here as well.
 *   4. The first error stops the parse: read_line() then reports EOF.
 *      read_line() also rejects lines that are neither a comment, a
 *      "key = value" nor a "[section]" (inih would only report them at the
 *      end); inih's own return value is kept as a fallback.
 *   5. After the file: missing sections and required keys (the earliest
 *      line wins), then defaults and the checks that involve several keys
 *      (wildcard addresses, listen clash, heartbeat vs election timeout,
 *      peers vs this node).
 *   6. Any failure (ERR_INVAL or ERR_NOMEM) frees everything and leaves
 *      *out zeroed; err holds "FILE:LINE: reason" (or "FILE: reason").
 *
 * Adding a key: add a K_ id, a row in keys[] (section, name, flags, parser,
 * field offset, range) and, if it has a default, set it in set_defaults().
 * Adding a section: add an S_ id and its name in sect_names[].
 */
#include "cfg.h"

#include "err.h"
#include "log.h"
#include "mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX_LINE 198       /* characters, without the line ending */
#define CFG_NAME_MAX 63        /* cluster, node and peer names */
#define CFG_TOKEN_MAX 4096     /* bytes in the token file */
#define CFG_HOST_MAX 256       /* host part of host:port, with NUL */
#define NAME_RULE "allowed: letters, digits, '_', '.', '-', at most 63"
#define HOSTPORT_RULE "expected host:port or [ipv6]:port, port 1..65535"

enum sect_id { S_CLUSTER, S_NODE, S_RAFT, S_API, S_COUNT };

static const char *const sect_names[S_COUNT] = {
	[S_CLUSTER] = "cluster",
	[S_NODE] = "node",
	[S_RAFT] = "raft",
	[S_API] = "api",
};

enum key_id {
	K_CLUSTER_NAME,
	K_NODE_NAME,
	K_NODE_DATA_DIR,
	K_NODE_LOG_LEVEL,
	K_RAFT_LISTEN,
	K_RAFT_ADVERTISE,
	K_RAFT_PEERS,
	K_RAFT_STATE,
	K_RAFT_ELECTION,
	K_RAFT_HEARTBEAT,
	K_RAFT_SNAP_THRESHOLD,
	K_RAFT_SNAP_TRAILING,
	K_API_LISTEN,
	K_API_URL,
	K_API_TOKEN_FILE,
	K_COUNT
};

#define KEY_REQUIRED 1u  /* missing key is an error */
#define KEY_MULTILINE 2u /* value may continue on indented lines */

struct load;
struct key_def;
typedef int (*parse_fn)(struct load *L, const struct key_def *k,
			const char *v);

struct key_def {
	enum sect_id sect;
	const char *name;
	unsigned flags;     /* KEY_* */
	parse_fn parse;
	size_t off;         /* the field in struct cfg */
	unsigned min, max;  /* numbers: accepted range */
};

/* The state of one cfg_load() call. */
struct load {
	const char *path;     /* borrowed: the file as given */
	FILE *f;
	struct cfg *cfg;      /* borrowed: the result being filled */
	char *err;            /* borrowed: caller's buffer */
	size_t errlen;
	int rc;               /* first failure: 0, ERR_INVAL or ERR_NOMEM */
	unsigned err_line;    /* line of that failure, 0 = none */
	unsigned line;        /* lines read so far, i.e. the current line */
	int sect;             /* current section, -1 before the first */
	int last_key;         /* key of the last key line, -1 if none */
	bool prev_key;        /* mirrors inih's prev_name: a key line has
			       * been seen since the last section header */
	bool cont;            /* the current line is a continuation line */
	unsigned sect_line[S_COUNT]; /* header line, 0 = absent */
	unsigned key_line[K_COUNT];  /* line of the key, 0 = absent */
	unsigned *peer_line;  /* owned: line of cfg->peers[i] */
	size_t peer_cap;      /* capacity of peers and peer_line */
	char *buf;            /* getline()'s buffer: libc malloc */
	size_t bufcap;
};

/* ---- errors ----------------------------------------------------------- */

static void put_err(struct load *L, unsigned line, const char *fmt,
		    va_list ap) __attribute__((format(printf, 3, 0)));

static void put_err(struct load *L, unsigned line, const char *fmt,
		    va_list ap)
{
	if (!L->err || L->errlen == 0)
		return;
	int n;
	if (line)
		n = snprintf(L->err, L->errlen, "%s:%u: ", L->path, line);
	else
		n = snprintf(L->err, L->errlen, "%s: ", L->path);
	if (n < 0 || (size_t)n >= L->errlen)
		return;
	vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
}

/* Record the first error (later ones are ignored); returns L->rc. */
static int fail(struct load *L, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct load *L, unsigned line, const char *fmt, ...)
{
	if (L->rc)
		return L->rc;
	L->rc = ERR_INVAL;
	L->err_line = line;
	va_list ap;
	va_start(ap, fmt);
	put_err(L, line, fmt, ap);
	va_end(ap);
	return L->rc;
}

static int nomem(struct load *L)
{
	if (L->rc)
		return L->rc;
	L->rc = ERR_NOMEM;
	if (L->err && L->errlen)
		snprintf(L->err, L->errlen, "%s: out of memory", L->path);
	return L->rc;
}

/* Copy s for an error message: non-printable bytes become '?', long
 * values are cut. Values never include the token itself. */
static const char *shown(char *buf, size_t len, const char *s)
{
	size_t i = 0;
	for (; s[i] && i + 4 < len; i++)
		buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static int bad_value(struct load *L, const struct key_def *k, const char *v,
		     const char *why)
{
	char b[80];
	return fail(L, L->line, "[%s] %s: invalid value '%s' (%s)",
		    sect_names[k->sect], k->name, shown(b, sizeof b, v), why);
}

/* ---- value checks ----------------------------------------------------- */

static bool valid_name(const char *s, size_t n)
{
	if (n == 0 || n > CFG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

static bool has_ctrl(const char *s)
{
	for (; *s; s++)
		if (iscntrl((unsigned char)*s))
			return true;
	return false;
}

/* Digits only (no sign, no spaces, no junk), at most max. */
static bool parse_ull(const char *s, size_t n, unsigned long long max,
		      unsigned long long *out)
{
	unsigned long long v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

static bool valid_v6(const char *s, size_t n)
{
	char b[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;
	const char *zone = memchr(s, '%', n);
	size_t alen = zone ? (size_t)(zone - s) : n;
	if (alen == 0 || alen >= sizeof b)
		return false;
	if (zone && !valid_name(zone + 1, n - alen - 1))
		return false;
	memcpy(b, s, alen);
	b[alen] = '\0';
	return inet_pton(AF_INET6, b, &a) == 1;
}

int cfg_split_hostport(const char *s, char *host, size_t hostlen,
		       uint16_t *port)
{
	const char *h, *p;
	size_t hn;
	unsigned long long pv;

	if (!s)
		return ERR_INVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return ERR_INVAL;
		h = s + 1;
		hn = (size_t)(close - h);
		p = close + 2;
		if (!valid_v6(h, hn))
			return ERR_INVAL;
	} else {
		const char *colon = strchr(s, ':');
		if (!colon || strchr(colon + 1, ':'))
			return ERR_INVAL; /* none, or a bare IPv6 address */
		h = s;
		hn = (size_t)(colon - s);
		p = colon + 1;
		if (hn == 0)
			return ERR_INVAL;
		for (size_t i = 0; i < hn; i++) {
			unsigned char c = (unsigned char)h[i];
			if (!isalnum(c) && c != '.' && c != '-' && c != '_')
				return ERR_INVAL;
		}
	}
	if (!parse_ull(p, strlen(p), 65535, &pv) || pv == 0)
		return ERR_INVAL;
	if (host) {
		if (hn >= hostlen)
			return ERR_INVAL;
		memcpy(host, h, hn);
		host[hn] = '\0';
	}
	if (port)
		*port = (uint16_t)pv;
	return 0;
}

/* 0.0.0.0 or :: : fine to listen on, useless to advertise. */
static bool is_wildcard(const char *hostport)
{
	char h[CFG_HOST_MAX];
	unsigned char a[sizeof(struct in6_addr)];
	static const unsigned char zero[sizeof(struct in6_addr)];
	if (cfg_split_hostport(hostport, h, sizeof h, NULL) != 0)
		return false;
	if (inet_pton(AF_INET, h, a) == 1)
		return memcmp(a, zero, 4) == 0;
	if (inet_pton(AF_INET6, h, a) == 1)
		return memcmp(a, zero, sizeof a) == 0;
	return false;
}

/* Same host (case-insensitive) and same port number. */
static bool same_address(const char *a, const char *b)
{
	char ha[CFG_HOST_MAX], hb[CFG_HOST_MAX];
	uint16_t pa, pb;
	if (cfg_split_hostport(a, ha, sizeof ha, &pa) != 0 ||
	    cfg_split_hostport(b, hb, sizeof hb, &pb) != 0)
		return strcmp(a, b) == 0;
	return pa == pb && strcasecmp(ha, hb) == 0;
}

/* ---- parsers: one per kind of value; each sets its field -------------- */

static void *field(struct load *L, const struct key_def *k)
{
	return (char *)L->cfg + k->off;
}

static int set_str(struct load *L, const struct key_def *k, const char *v)
{
	char **slot = field(L, k);
	char *copy = mem_strdup(v);
	if (!copy)
		return nomem(L);
	mem_free(*slot); /* NULL: duplicates are rejected before */
	*slot = copy;
	return 0;
}

static int parse_name(struct load *L, const struct key_def *k, const char *v)
{
	if (!valid_name(v, strlen(v)))
		return bad_value(L, k, v, NAME_RULE);
	return set_str(L, k, v);
}

static int parse_abspath(struct load *L, const struct key_def *k,
			 const char *v)
{
	if (v[0] != '/' || has_ctrl(v))
		return bad_value(L, k, v, "an absolute path is required");
	return set_str(L, k, v);
}

static int parse_hostport(struct load *L, const struct key_def *k,
			  const char *v)
{
	if (cfg_split_hostport(v, NULL, 0, NULL) != 0)
		return bad_value(L, k, v, HOSTPORT_RULE);
	return set_str(L, k, v);
}

/* Like parse_hostport, but other nodes connect to it. */
static int parse_advertise(struct load *L, const struct key_def *k,
			   const char *v)
{
	if (cfg_split_hostport(v, NULL, 0, NULL) == 0 && is_wildcard(v))
		return bad_value(L, k, v,
				 "a wildcard address; advertise an address "
				 "other nodes can reach");
	return parse_hostport(L, k, v);
}

static int parse_url(struct load *L, const struct key_def *k, const char *v)
{
	static const char rule[] =
		"expected http://host[:port][/path] or https://...";
	const char *rest;
	if (strncmp(v, "http://", 7) == 0)
		rest = v + 7;
	else if (strncmp(v, "https://", 8) == 0)
		rest = v + 8;
	else
		return bad_value(L, k, v, rule);
	if (rest[0] == '\0' || rest[0] == '/' || rest[0] == '?' ||
	    rest[0] == '#')
		return bad_value(L, k, v, rule);
	for (const char *p = v; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return bad_value(L, k, v, rule);
	return set_str(L, k, v);
}

static int parse_log_level(struct load *L, const struct key_def *k,
			   const char *v)
{
	int lvl = log_level_parse(v);
	if (lvl < 0)
		return bad_value(L, k, v,
				 "allowed: error, warn, info, debug");
	*(int *)field(L, k) = lvl;
	return 0;
}

static int parse_cluster_state(struct load *L, const struct key_def *k,
			       const char *v)
{
	if (strcmp(v, "new") == 0)
		L->cfg->join = false;
	else if (strcmp(v, "existing") == 0)
		L->cfg->join = true;
	else
		return bad_value(L, k, v, "allowed: new, existing");
	return 0;
}

/* Milliseconds: "300", "300ms" or "2s". */
static int parse_duration(struct load *L, const struct key_def *k,
			  const char *v)
{
	char why[96];
	size_t digits = strspn(v, "0123456789");
	const char *unit = v + digits;
	unsigned long long num, mult = 0;

	if (unit[0] == '\0' || strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "s") == 0)
		mult = 1000;
	snprintf(why, sizeof why,
		 "expected milliseconds, or a number with unit ms or s, "
		 "%u..%u ms",
		 k->min, k->max);
	if (mult == 0 || !parse_ull(v, digits, 1000000000ULL, &num) ||
	    num * mult < k->min || num * mult > k->max)
		return bad_value(L, k, v, why);
	*(unsigned *)field(L, k) = (unsigned)(num * mult);
	return 0;
}

static int parse_count(struct load *L, const struct key_def *k,
		       const char *v)
{
	char why[64];
	unsigned long long num;
	snprintf(why, sizeof why, "expected a whole number, %u..%u", k->min,
		 k->max);
	if (!parse_ull(v, strlen(v), k->max, &num) || num < k->min)
		return bad_value(L, k, v, why);
	*(unsigned *)field(L, k) = (unsigned)num;
	return 0;
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

static void copy_range(char *dst, const char *s, const char *e)
{
	memcpy(dst, s, (size_t)(e - s));
	dst[e - s] = '\0';
}

/* One "name=host:port" item (s..e, trimmed) at the current line. */
static int add_peer(struct load *L, const char *s, const char *e)
{
	struct cfg *c = L->cfg;
	char item[CFG_MAX_LINE + 1], name[CFG_MAX_LINE + 1];
	char addr[CFG_MAX_LINE + 1], b[80];

	copy_range(item, s, e);
	const char *eq = memchr(s, '=', (size_t)(e - s));
	if (!eq)
		return fail(L, L->line,
			    "[raft] peers: invalid peer '%s' (expected "
			    "name=host:port)",
			    shown(b, sizeof b, item));
	const char *ns = s, *ne = eq, *as = eq + 1, *ae = e;
	trim(&ns, &ne);
	trim(&as, &ae);
	copy_range(name, ns, ne);
	copy_range(addr, as, ae);
	if (!valid_name(name, strlen(name)))
		return fail(L, L->line,
			    "[raft] peers: invalid peer name '%s' (" NAME_RULE
			    ")",
			    shown(b, sizeof b, name));
	if (cfg_split_hostport(addr, NULL, 0, NULL) != 0)
		return fail(L, L->line,
			    "[raft] peers: invalid address '%s' for peer '%s' "
			    "(" HOSTPORT_RULE ")",
			    shown(b, sizeof b, addr), name);
	if (is_wildcard(addr))
		return fail(L, L->line,
			    "[raft] peers: %s=%s is a wildcard address; list "
			    "an address other nodes can reach",
			    name, addr);
	for (size_t i = 0; i < c->npeers; i++) {
		if (strcmp(c->peers[i].name, name) == 0)
			return fail(L, L->line,
				    "[raft] peers: duplicate peer name '%s' "
				    "(first at line %u)",
				    name, L->peer_line[i]);
		if (same_address(c->peers[i].address, addr))
			return fail(L, L->line,
				    "[raft] peers: duplicate address %s "
				    "(peers '%s' and '%s')",
				    addr, c->peers[i].name, name);
	}

	if (c->npeers == L->peer_cap) {
		size_t cap = L->peer_cap ? 2 * L->peer_cap : 4;
		struct cfg_peer *p =
			mem_realloc(c->peers, cap * sizeof *c->peers);
		if (!p)
			return nomem(L);
		c->peers = p;
		unsigned *pl =
			mem_realloc(L->peer_line, cap * sizeof *L->peer_line);
		if (!pl)
			return nomem(L); /* cap unchanged: both regrow */
		L->peer_line = pl;
		L->peer_cap = cap;
	}
	struct cfg_peer peer = {
		.name = mem_strdup(name),
		.address = mem_strdup(addr),
	};
	if (!peer.name || !peer.address) {
		mem_free(peer.name);
		mem_free(peer.address);
		return nomem(L);
	}
	c->peers[c->npeers] = peer;
	L->peer_line[c->npeers] = L->line;
	c->npeers++;
	return 0;
}

/* One line of the peers list: the key line or a continuation line. Items
 * are separated by commas; a comma may end a line (the list goes on on the
 * next, indented, line); other empty items are errors. */
static int parse_peers(struct load *L, const struct key_def *k,
		       const char *v)
{
	(void)k;
	const char *p = v;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *s = p, *e = comma ? comma : p + strlen(p);
		trim(&s, &e);
		if (s == e) {
			if (!comma)
				return 0;
			char b[80];
			return fail(L, L->line,
				    "[raft] peers: empty item in '%s' "
				    "(expected name=host:port, ...)",
				    shown(b, sizeof b, v));
		}
		int rc = add_peer(L, s, e);
		if (rc)
			return rc;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* Read the shared secret now, so a bad token file stops startup. */
static int parse_token_file(struct load *L, const struct key_def *k,
			    const char *v)
{
	char buf[CFG_TOKEN_MAX + 1];
	char b[80];
	struct stat st;
	size_t n = 0;
	int rc;

	if (v[0] == '\0' || has_ctrl(v))
		return bad_value(L, k, v, "a file name is required");
	rc = set_str(L, k, v);
	if (rc)
		return rc;
	shown(b, sizeof b, v);
	int fd = open(v, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(L, L->line, "[api] token_file: %s: cannot open: %s",
			    b, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = fail(L, L->line, "[api] token_file: %s: cannot stat: %s",
			  b, strerror(errno));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(L, L->line,
			    "[api] token_file: %s: not a regular file", b);
	}
	while (n < sizeof buf) {
		ssize_t r = read(fd, buf + n, sizeof buf - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = fail(L, L->line,
				  "[api] token_file: %s: cannot read: %s", b,
				  strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof buf);
			return rc;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);

	const char *s = buf, *e = buf + n;
	if (n > CFG_TOKEN_MAX) {
		rc = fail(L, L->line,
			  "[api] token_file: %s: larger than %d bytes", b,
			  CFG_TOKEN_MAX);
		goto out;
	}
	trim(&s, &e);
	if (s == e) {
		rc = fail(L, L->line, "[api] token_file: %s: empty token", b);
		goto out;
	}
	for (const char *p = s; p < e; p++) {
		if (iscntrl((unsigned char)*p)) {
			rc = fail(L, L->line,
				  "[api] token_file: %s: the token must be one "
				  "line without control characters",
				  b);
			goto out;
		}
	}
	L->cfg->token = mem_strndup(s, (size_t)(e - s));
	rc = L->cfg->token ? 0 : nomem(L);
out:
	explicit_bzero(buf, sizeof buf);
	return rc;
}

/* ---- the table -------------------------------------------------------- */

#define F(x) offsetof(struct cfg, x)

static const struct key_def keys[K_COUNT] = {
	[K_CLUSTER_NAME] = { S_CLUSTER, "name", KEY_REQUIRED, parse_name,
			     F(cluster_name), 0, 0 },
	[K_NODE_NAME] = { S_NODE, "name", KEY_REQUIRED, parse_name,
			  F(node_name), 0, 0 },
	[K_NODE_DATA_DIR] = { S_NODE, "data_dir", KEY_REQUIRED, parse_abspath,
			      F(data_dir), 0, 0 },
	[K_NODE_LOG_LEVEL] = { S_NODE, "log_level", 0, parse_log_level,
			       F(log_level), 0, 0 },
	[K_RAFT_LISTEN] = { S_RAFT, "listen", KEY_REQUIRED, parse_hostport,
			    F(raft_listen), 0, 0 },
	[K_RAFT_ADVERTISE] = { S_RAFT, "advertise", 0, parse_advertise,
			       F(raft_advertise), 0, 0 },
	[K_RAFT_PEERS] = { S_RAFT, "peers", KEY_REQUIRED | KEY_MULTILINE,
			   parse_peers, F(peers), 0, 0 },
	[K_RAFT_STATE] = { S_RAFT, "initial_cluster_state", 0,
			   parse_cluster_state, F(join), 0, 0 },
	[K_RAFT_ELECTION] = { S_RAFT, "election_timeout", 0, parse_duration,
			      F(election_timeout_ms), 50, 60000 },
	[K_RAFT_HEARTBEAT] = { S_RAFT, "heartbeat_interval", 0,
			       parse_duration, F(heartbeat_ms), 10, 20000 },
	[K_RAFT_SNAP_THRESHOLD] = { S_RAFT, "snapshot_threshold", 0,
				    parse_count, F(snapshot_threshold), 16,
				    10000000 },
	[K_RAFT_SNAP_TRAILING] = { S_RAFT, "snapshot_trailing", 0,
				   parse_count, F(snapshot_trailing), 0,
				   10000000 },
	[K_API_LISTEN] = { S_API, "listen", KEY_REQUIRED, parse_hostport,
			   F(api_listen), 0, 0 },
	[K_API_URL] = { S_API, "url", 0, parse_url, F(api_url), 0, 0 },
	[K_API_TOKEN_FILE] = { S_API, "token_file", KEY_REQUIRED,
			       parse_token_file, F(token_file), 0, 0 },
};

static void set_defaults(struct cfg *c)
{
	c->log_level = LOG_INFO;
	c->join = false;
	c->election_timeout_ms = CFG_DEFAULT_ELECTION_MS;
	c->heartbeat_ms = CFG_DEFAULT_HEARTBEAT_MS;
	c->snapshot_threshold = 1024;
	c->snapshot_trailing = 2048;
}

static int find_key(int sect, const char *name)
{
	for (int i = 0; i < K_COUNT; i++)
		if ((int)keys[i].sect == sect &&
		    strcmp(keys[i].name, name) == 0)
			return i;
	return -1;
}

/* ---- inih callbacks --------------------------------------------------- */

/* inih's inline comment rule: ';' after whitespace starts a comment. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;
	while (*s && (!chars || !strchr(chars, *s)) &&
	       !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/* A raw "[section]" line (s is trimmed on both sides). */
static int section_line(struct load *L, const char *s)
{
	char b[80];
	const char *end = find_chars_or_comment(s + 1, "]");
	if (*end != ']')
		return fail(L, L->line, "section header without closing ']'");
	const char *rest = end + 1;
	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest && *rest != ';')
		return fail(L, L->line, "unexpected text after section header");

	size_t n = (size_t)(end - s - 1);
	int id = -1;
	for (int i = 0; i < S_COUNT; i++)
		if (strlen(sect_names[i]) == n &&
		    memcmp(sect_names[i], s + 1, n) == 0)
			id = i;
	if (id < 0) {
		char name[CFG_MAX_LINE + 1];
		memcpy(name, s + 1, n);
		name[n] = '\0';
		return fail(L, L->line, "unknown section [%s]",
			    shown(b, sizeof b, name));
	}
	if (L->sect_line[id])
		return fail(L, L->line,
			    "duplicate section [%s] (first at line %u)",
			    sect_names[id], L->sect_line[id]);
	L->sect_line[id] = L->line;
	L->sect = id;
	L->last_key = -1;
	L->prev_key = false; /* inih clears prev_name here too */
	return 0;
}

/* Mirror inih's reading of one raw line: remember whether it continues the
 * previous key and act on section headers. */
static int classify(struct load *L, char *line)
{
	char *s = line, *e = line + strlen(line);
	if (L->line == 1 && (unsigned char)s[0] == 0xEF &&
	    (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
		s += 3; /* UTF-8 BOM */
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	while (s < e && isspace((unsigned char)*s))
		s++;
	L->cont = false;
	if (s == e || *s == ';' || *s == '#')
		return 0; /* blank or comment */
	if (L->prev_key && s > line) {
		/* indented text after a key line. Cut its inline comment here:
		 * not every inih release does that for continuation lines. */
		L->cont = true;
		char *c = (char *)find_chars_or_comment(s, NULL);
		*c = '\0';
		return 0;
	}
	char save = *e;
	*e = '\0';
	int rc = 0;
	if (*s == '[') {
		rc = section_line(L, s);
	} else {
		const char *sep = find_chars_or_comment(s, "=:");
		if (*sep != '=' && *sep != ':')
			rc = fail(L, L->line,
				  "syntax error (expected 'key = value', a "
				  "[section] header or a comment)");
	}
	*e = save;
	return rc;
}

/* ini_reader: one whole line per call, counted; NULL at EOF or after the
 * first error, which stops inih. getline() allocates with libc malloc. */
static char *read_line(char *str, int num, void *stream)
{
	struct load *L = stream;
	if (L->rc)
		return NULL;
	errno = 0;
	ssize_t n = getline(&L->buf, &L->bufcap, L->f);
	if (n < 0) {
		int e = errno;
		if (e == ENOMEM)
			nomem(L);
		else if (!feof(L->f))
			fail(L, 0, "cannot read: %s", strerror(e ? e : EIO));
		return NULL;
	}
	L->line++;
	size_t len = (size_t)n;
	if (len && L->buf[len - 1] == '\n')
		len--;
	if (len && L->buf[len - 1] == '\r')
		len--;
	L->buf[len] = '\0';
	if (memchr(L->buf, '\0', len)) {
		fail(L, L->line, "line contains a NUL byte");
		return NULL;
	}
	size_t max = CFG_MAX_LINE;
	if (num < 1 || (size_t)num - 1 < max)
		max = num < 1 ? 0 : (size_t)num - 1;
	if (len > max) {
		fail(L, L->line, "line too long (%zu characters, at most %zu)",
		     len, max);
		return NULL;
	}
	if (classify(L, L->buf) != 0)
		return NULL;
	memcpy(str, L->buf, len + 1);
	return str;
}

static int on_pair(void *user, const char *section, const char *name,
		   const char *value)
{
	struct load *L = user;
	char b[80];
	int rc;

	(void)section; /* L->sect is authoritative (inih truncates names) */
	if (L->rc)
		return 0;
	L->prev_key = true;
	if (L->cont && L->last_key >= 0 &&
	    strcmp(name, keys[L->last_key].name) == 0) {
		const struct key_def *k = &keys[L->last_key];
		if (!(k->flags & KEY_MULTILINE))
			rc = fail(L, L->line,
				  "[%s] %s: unexpected continuation line (an "
				  "indented line continues the previous key; "
				  "start keys in the first column)",
				  sect_names[k->sect], k->name);
		else
			rc = k->parse(L, k, value);
		return rc == 0;
	}
	if (L->sect < 0) {
		fail(L, L->line, "key '%s' outside any section",
		     shown(b, sizeof b, name));
		return 0;
	}
	int id = find_key(L->sect, name);
	if (id < 0) {
		fail(L, L->line, "unknown key '%s' in [%s]",
		     shown(b, sizeof b, name), sect_names[L->sect]);
		return 0;
	}
	if (L->key_line[id]) {
		fail(L, L->line,
		     "duplicate key '%s' in [%s] (first at line %u)", name,
		     sect_names[L->sect], L->key_line[id]);
		return 0;
	}
	L->key_line[id] = L->line;
	L->last_key = id;
	return keys[id].parse(L, &keys[id], value) == 0;
}

/* ---- checks after the whole file -------------------------------------- */

static int check_missing(struct load *L)
{
	unsigned last = L->line ? L->line : 1, best = 0;
	int best_sect = -1, best_key = -1;

	for (int s = 0; s < S_COUNT; s++) {
		for (int k = 0; k < K_COUNT; k++) {
			if ((int)keys[k].sect != s ||
			    !(keys[k].flags & KEY_REQUIRED) || L->key_line[k])
				continue;
			unsigned at = L->sect_line[s] ? L->sect_line[s] : last;
			if (best == 0 || at < best) {
				best = at;
				best_sect = s;
				best_key = L->sect_line[s] ? k : -1;
			}
		}
	}
	if (best == 0)
		return 0;
	if (best_key < 0)
		return fail(L, best, "missing required section [%s]",
			    sect_names[best_sect]);
	return fail(L, best, "missing required key '%s' in [%s]",
		    keys[best_key].name, sect_names[best_sect]);
}

static int check_all(struct load *L)
{
	struct cfg *c = L->cfg;
	int rc = check_missing(L);
	if (rc)
		return rc;

	/* advertise defaults to listen; other nodes must reach it */
	bool adv_default = c->raft_advertise == NULL;
	if (adv_default) {
		if (is_wildcard(c->raft_listen))
			return fail(L, L->key_line[K_RAFT_LISTEN],
				    "[raft] listen: %s is a wildcard address; "
				    "set [raft] advertise to an address other "
				    "nodes can reach",
				    c->raft_listen);
		c->raft_advertise = mem_strdup(c->raft_listen);
		if (!c->raft_advertise)
			return nomem(L);
	}
	if (!c->api_url) {
		if (is_wildcard(c->api_listen))
			return fail(L, L->key_line[K_API_LISTEN],
				    "[api] listen: %s is a wildcard address; "
				    "set [api] url to a URL other nodes can "
				    "reach",
				    c->api_listen);
		size_t n = strlen(c->api_listen) + sizeof "http://";
		c->api_url = mem_malloc(n);
		if (!c->api_url)
			return nomem(L);
		snprintf(c->api_url, n, "http://%s", c->api_listen);
	}
	if (same_address(c->raft_listen, c->api_listen)) {
		unsigned a = L->key_line[K_RAFT_LISTEN];
		unsigned b = L->key_line[K_API_LISTEN];
		return fail(L, a > b ? a : b,
			    "[api] listen and [raft] listen are the same "
			    "address %s",
			    c->api_listen);
	}

	if (c->heartbeat_ms > c->election_timeout_ms / 3) {
		unsigned a = L->key_line[K_RAFT_ELECTION];
		unsigned b = L->key_line[K_RAFT_HEARTBEAT];
		return fail(L, a > b ? a : b,
			    "[raft] heartbeat_interval (%ums) must be at most "
			    "a third of election_timeout (%ums)",
			    c->heartbeat_ms, c->election_timeout_ms);
	}

	unsigned peers_line = L->key_line[K_RAFT_PEERS];
	if (c->npeers == 0)
		return fail(L, peers_line,
			    "[raft] peers: no peers listed (at least one "
			    "name=host:port is required)");
	size_t self = c->npeers;
	for (size_t i = 0; i < c->npeers; i++)
		if (strcmp(c->peers[i].name, c->node_name) == 0)
			self = i;
	if (self == c->npeers) {
		if (c->join)
			return 0;
		return fail(L, peers_line,
			    "[raft] peers: this node '%s' is not listed; add "
			    "%s=%s, or set initial_cluster_state = existing "
			    "to join a running cluster",
			    c->node_name, c->node_name, c->raft_advertise);
	}
	if (!same_address(c->peers[self].address, c->raft_advertise))
		return fail(L, L->peer_line[self],
			    "[raft] peers: %s=%s does not match this node's "
			    "advertise address %s%s",
			    c->node_name, c->peers[self].address,
			    c->raft_advertise,
			    adv_default ? " (advertise defaults to [raft] "
					  "listen)"
					: "");
	return 0;
}

/* ---- public ----------------------------------------------------------- */

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	mem_free(c->path);
	mem_free(c->cluster_name);
	mem_free(c->node_name);
	mem_free(c->data_dir);
	mem_free(c->raft_listen);
	mem_free(c->raft_advertise);
	for (size_t i = 0; i < c->npeers; i++) {
		mem_free(c->peers[i].name);
		mem_free(c->peers[i].address);
	}
	mem_free(c->peers);
	mem_free(c->api_listen);
	mem_free(c->api_url);
	mem_free(c->token_file);
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		mem_free(c->token);
	}
	memset(c, 0, sizeof *c);
}

int cfg_load(const char *path, struct cfg *out, char *err, size_t errlen)
{
	struct load L = {
		.path = path ? path : "(null)",
		.cfg = out,
		.err = err,
		.errlen = errlen,
		.sect = -1,
		.last_key = -1,
	};

	memset(out, 0, sizeof *out);
	if (err && errlen)
		err[0] = '\0';
	if (!path)
		return fail(&L, 0, "no configuration file given");
	set_defaults(out);
	L.f = fopen(path, "re");
	if (!L.f) {
		fail(&L, 0, "cannot open: %s", strerror(errno));
		memset(out, 0, sizeof *out);
		return L.rc;
	}
	out->path = mem_strdup(path);
	if (!out->path)
		nomem(&L);

	int syntax = L.rc ? 0 : ini_parse_stream(read_line, &L, on_pair, &L);
	fclose(L.f);
	free(L.buf); /* from getline(), i.e. libc malloc */

	/* read_line() reports syntax errors itself; this is a fallback in
	 * case inih rejects a line it did not foresee (inih counts lines the
	 * same way, and the earliest error wins). */
	if (syntax > 0 && (!L.rc || (L.rc == ERR_INVAL &&
				     L.err_line > (unsigned)syntax))) {
		L.rc = 0;
		fail(&L, (unsigned)syntax,
		     "syntax error (expected 'key = value', a [section] "
		     "header or a comment)");
	} else if (syntax < 0 && !L.rc) {
		nomem(&L); /* -2: inih could not allocate its line buffer */
	}
	if (!L.rc)
		check_all(&L);
	mem_free(L.peer_line);
	if (L.rc)
		cfg_free(out);
	return L.rc;
}
