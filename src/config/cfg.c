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
 *      continuation line (indented text after a key line). A
 *      [bootstrap.user.NAME] header adds a user right away.
 *   3. inih calls on_pair() for each key line and each continuation line.
 *      It looks the key up in the table below, rejects unknown and duplicate
 *      keys (and the second of two exclusive keys) and parses the value into
 *      struct cfg right away, so value errors carry the key's line.
 *      token_file and password files are read, and post_bootstrap and
 *      callback scripts checked, here as well. [postgresql.parameters] has
 *      no table: any valid, non-reserved PostgreSQL setting name is a key.
 *   4. The first error stops the parse: read_line() then reports EOF.
 *      read_line() also rejects lines that are neither a comment, a
 *      "key = value" nor a "[section]" (inih would only report them at the
 *      end); inih's own return value is kept as a fallback.
 *   5. After the file: missing sections and required keys (the earliest
 *      line wins), then defaults and the checks that involve several keys:
 *      the store's (wildcard addresses, listen clash, heartbeat vs election
 *      timeout, peers vs this node), then PostgreSQL's (connect_address,
 *      listen clashes, data_dir overlap, user sections vs the built-in
 *      roles) and the HA timing inequalities (loop_wait <= ttl/3, I1, I3).
 *   6. Any failure (ERR_INVAL or ERR_NOMEM) frees everything and leaves
 *      *out zeroed; err holds "FILE:LINE: reason" (or "FILE: reason").
 *
 * Adding a key: add a K_ id, a row in keys[] (section, name, flags, parser,
 * field offset, range) and, if it has a default, set it in set_defaults()
 * (numbers) or str_defaults[] (strings). Adding a section: add an S_ id,
 * its name in sect_names[] and, unless it is required, SECT_OPTIONAL in
 * sect_flags[].
 */
#include "config/cfg.h"

#include "err.h"
#include "log.h"
#include "mem.h"
#include "timing.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX_LINE 198       /* characters, without the line ending */
#define CFG_NAME_MAX 63        /* cluster, node, peer and role names */
#define CFG_TOKEN_MAX 4096     /* bytes in the token or a password file */
#define CFG_HOST_MAX 256       /* host part of host:port, with NUL */
#define CFG_PARAM_MAX 63       /* PostgreSQL setting names */
#define NAME_RULE "allowed: letters, digits, '_', '.', '-', at most 63"
#define HOSTPORT_RULE "expected host:port or [ipv6]:port, port 1..65535"
#define USER_PREFIX "bootstrap.user."

enum sect_id {
	S_CLUSTER,
	S_NODE,
	S_RAFT,
	S_API,
	S_PG,
	S_PG_PARAMS,
	S_BOOTSTRAP,
	S_USER, /* [bootstrap.user.NAME], once per NAME */
	S_TAGS,
	S_HA,
	S_WATCHDOG,
	S_CALLBACKS,
	S_COUNT
};

static const char *const sect_names[S_COUNT] = {
	[S_CLUSTER] = "cluster",
	[S_NODE] = "node",
	[S_RAFT] = "raft",
	[S_API] = "api",
	[S_PG] = "postgresql",
	[S_PG_PARAMS] = "postgresql.parameters",
	[S_BOOTSTRAP] = "bootstrap",
	[S_USER] = "bootstrap.user.NAME", /* matched by USER_PREFIX */
	[S_TAGS] = "tags",
	[S_HA] = "ha",
	[S_WATCHDOG] = "watchdog",
	[S_CALLBACKS] = "callbacks",
};

#define SECT_OPTIONAL 1u /* may be absent; its required keys only count
			    when it is present */

static const unsigned sect_flags[S_COUNT] = {
	[S_PG] = SECT_OPTIONAL,
	[S_PG_PARAMS] = SECT_OPTIONAL,
	[S_BOOTSTRAP] = SECT_OPTIONAL,
	[S_USER] = SECT_OPTIONAL,
	[S_TAGS] = SECT_OPTIONAL,
	[S_HA] = SECT_OPTIONAL,
	[S_WATCHDOG] = SECT_OPTIONAL,
	[S_CALLBACKS] = SECT_OPTIONAL,
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
	K_PG_BIN_DIR,
	K_PG_DATA_DIR,
	K_PG_LISTEN,
	K_PG_CONNECT,
	K_PG_SOCKET_DIR,
	K_PG_SUPERUSER,
	K_PG_SU_PASSWORD,
	K_PG_SU_PASSWORD_FILE,
	K_PG_REPL_USER,
	K_PG_REPL_PASSWORD,
	K_PG_REPL_PASSWORD_FILE,
	K_PG_USE_SLOTS,
	K_PG_USE_REWIND,
	K_PG_REMOVE_DATA,
	K_BS_INITDB,
	K_BS_PG_HBA,
	K_BS_POST_BOOTSTRAP,
	K_USER_PASSWORD,
	K_USER_PASSWORD_FILE,
	K_USER_OPTIONS,
	K_TAG_NOFAILOVER,
	K_TAG_NOLOADBALANCE,
	K_TAG_NOSYNC,
	K_TAG_CLONEFROM,
	K_TAG_PRIORITY,
	K_HA_TTL,
	K_HA_LOOP_WAIT,
	K_HA_SAFETY_MARGIN,
	K_HA_MAX_LAG,
	K_HA_SYNC_MODE,
	K_HA_SYNC_COUNT,
	K_HA_CRASH_RESTART,
	K_HA_MOVE_RAFT_LEADER,
	K_WD_MODE,
	K_WD_DEVICE,
	K_WD_TIMEOUT,
	K_WD_FENCER,
	K_CB_ON_START,
	K_CB_ON_STOP,
	K_CB_ON_ROLE_CHANGE,
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
	size_t off;         /* the field in struct cfg (in struct cfg_user
			       for S_USER keys) */
	unsigned min, max;  /* numbers: accepted range; socket_dir: max
			       length (0 = none) */
};

/* Keys of which at most one may be set (the later one is the error). */
static const int exclusive[][2] = {
	{ K_PG_SU_PASSWORD, K_PG_SU_PASSWORD_FILE },
	{ K_PG_REPL_PASSWORD, K_PG_REPL_PASSWORD_FILE },
	{ K_USER_PASSWORD, K_USER_PASSWORD_FILE },
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
	char title[CFG_MAX_LINE + 1]; /* its header without brackets, e.g.
					 "bootstrap.user.alice" */
	int last_key;         /* key of the last key line, -1 if none */
	bool prev_key;        /* mirrors inih's prev_name: a key line has
			       * been seen since the last section header */
	bool cont;            /* the current line is a continuation line */
	unsigned sect_line[S_COUNT]; /* header line, 0 = absent (S_USER: the
					latest) */
	unsigned key_line[K_COUNT];  /* line of the key, 0 = absent (S_USER
					keys: in the current user section) */
	unsigned *peer_line;  /* owned: line of cfg->peers[i] */
	size_t peer_cap;      /* capacity of peers and peer_line */
	unsigned *param_line; /* owned: line of cfg->pg.params[i] */
	unsigned *user_line;  /* owned: header line of cfg->pg.users[i] */
	bool no_lines;        /* not a file (the store's config): messages
			       * name no line */
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
	if (line && !L->no_lines)
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
	return fail(L, L->line, "[%s] %s: invalid value '%s' (%s)", L->title,
		    k->name, shown(b, sizeof b, v), why);
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

/* The field a key fills: in struct cfg, or for [bootstrap.user.NAME] keys
 * in the user that section added last. */
static void *field(struct load *L, const struct key_def *k)
{
	if (k->sect == S_USER)
		return (char *)&L->cfg->pg.users[L->cfg->pg.nusers - 1] +
		       k->off;
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
	char why[96];
	if (v[0] != '/' || has_ctrl(v))
		return bad_value(L, k, v, "an absolute path is required");
	if (k->max && strlen(v) > k->max) {
		/* socket_dir: the socket file's path must fit sun_path */
		snprintf(why, sizeof why,
			 "an absolute path of at most %u bytes is required",
			 k->max);
		return bad_value(L, k, v, why);
	}
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

/* Read a secret file now (token_file, password files), so a bad one stops
 * startup: a regular file of at most CFG_TOKEN_MAX bytes, trimmed, one
 * line. noun names the secret in messages; the secret itself never
 * appears in one. On success *dst holds the copy (owned by cfg). */
static int read_secret(struct load *L, const struct key_def *k,
		       const char *path, const char *noun, char **dst)
{
	char buf[CFG_TOKEN_MAX + 1];
	char b[80];
	struct stat st;
	size_t n = 0;
	int rc;

	shown(b, sizeof b, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(L, L->line, "[%s] %s: %s: cannot open: %s",
			    L->title, k->name, b, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = fail(L, L->line, "[%s] %s: %s: cannot stat: %s", L->title,
			  k->name, b, strerror(errno));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(L, L->line, "[%s] %s: %s: not a regular file",
			    L->title, k->name, b);
	}
	while (n < sizeof buf) {
		ssize_t r = read(fd, buf + n, sizeof buf - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = fail(L, L->line, "[%s] %s: %s: cannot read: %s",
				  L->title, k->name, b, strerror(errno));
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
		rc = fail(L, L->line, "[%s] %s: %s: larger than %d bytes",
			  L->title, k->name, b, CFG_TOKEN_MAX);
		goto out;
	}
	trim(&s, &e);
	if (s == e) {
		rc = fail(L, L->line, "[%s] %s: %s: empty %s", L->title,
			  k->name, b, noun);
		goto out;
	}
	for (const char *p = s; p < e; p++) {
		if (iscntrl((unsigned char)*p)) {
			rc = fail(L, L->line,
				  "[%s] %s: %s: the %s must be one line without "
				  "control characters",
				  L->title, k->name, b, noun);
			goto out;
		}
	}
	*dst = mem_strndup(s, (size_t)(e - s));
	rc = *dst ? 0 : nomem(L);
out:
	explicit_bzero(buf, sizeof buf);
	return rc;
}

/* The shared secret of the API. */
static int parse_token_file(struct load *L, const struct key_def *k,
			    const char *v)
{
	if (v[0] == '\0' || has_ctrl(v))
		return bad_value(L, k, v, "a file name is required");
	int rc = set_str(L, k, v);
	if (rc)
		return rc;
	return read_secret(L, k, v, "token", &L->cfg->token);
}

/* A password given in the file itself. Never shown in messages. */
static int parse_password(struct load *L, const struct key_def *k,
			  const char *v)
{
	if (v[0] == '\0')
		return fail(L, L->line,
			    "[%s] %s: empty value (remove the key for no "
			    "password)",
			    L->title, k->name);
	return set_str(L, k, v);
}

/* A password file: its content goes into the password field (k->off). */
static int parse_password_file(struct load *L, const struct key_def *k,
			       const char *v)
{
	if (v[0] == '\0' || has_ctrl(v))
		return bad_value(L, k, v, "a file name is required");
	return read_secret(L, k, v, "password", field(L, k));
}

static int parse_bool(struct load *L, const struct key_def *k, const char *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*(bool *)field(L, k) = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*(bool *)field(L, k) = false;
			return 0;
		}
	}
	return bad_value(L, k, v,
			 "allowed: true, false, yes, no, on, off, 1, 0");
}

/* Bytes: "1048576", or with a 1024-based unit as in PostgreSQL ("1MB"). */
static int parse_size(struct load *L, const struct key_def *k, const char *v)
{
	static const struct {
		const char *unit;
		unsigned long long mult;
	} units[] = {
		{ "", 1 },
		{ "kB", 1ULL << 10 },
		{ "MB", 1ULL << 20 },
		{ "GB", 1ULL << 30 },
	};
	size_t digits = strspn(v, "0123456789");
	unsigned long long num;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(v + digits, units[i].unit) != 0)
			continue;
		if (!parse_ull(v, digits, (1ULL << 60) / units[i].mult, &num))
			break;
		*(uint64_t *)field(L, k) = num * units[i].mult;
		return 0;
	}
	return bad_value(L, k, v,
			 "expected bytes, or a whole number with unit kB, MB or "
			 "GB (1024-based), at most 1EB");
}

static int parse_sync_mode(struct load *L, const struct key_def *k,
			   const char *v)
{
	enum cfg_sync_mode *m = field(L, k);
	if (strcmp(v, "off") == 0)
		*m = CFG_SYNC_OFF;
	else if (strcmp(v, "on") == 0)
		*m = CFG_SYNC_ON;
	else if (strcmp(v, "strict") == 0)
		*m = CFG_SYNC_STRICT;
	else
		return bad_value(L, k, v, "allowed: off, on, strict");
	return 0;
}

static int parse_wd_mode(struct load *L, const struct key_def *k,
			 const char *v)
{
	enum cfg_wd_mode *m = field(L, k);
	if (strcmp(v, "off") == 0)
		*m = CFG_WD_OFF;
	else if (strcmp(v, "automatic") == 0)
		*m = CFG_WD_AUTOMATIC;
	else if (strcmp(v, "required") == 0)
		*m = CFG_WD_REQUIRED;
	else
		return bad_value(L, k, v, "allowed: off, automatic, required");
	return 0;
}

/* PostgreSQL's listen: host:port, where the host may also be '*'. */
static bool pg_wildcard(const char *hostport)
{
	return strncmp(hostport, "*:", 2) == 0 || is_wildcard(hostport);
}

static int parse_pg_listen(struct load *L, const struct key_def *k,
			   const char *v)
{
	char tmp[CFG_MAX_LINE + 2];
	if (strncmp(v, "*:", 2) == 0) {
		snprintf(tmp, sizeof tmp, "x%s", v + 1); /* check the port */
		if (cfg_split_hostport(tmp, NULL, 0, NULL) != 0)
			return bad_value(L, k, v,
					 "expected host:port, [ipv6]:port or "
					 "*:port, port 1..65535");
		return set_str(L, k, v);
	}
	if (cfg_split_hostport(v, NULL, 0, NULL) != 0)
		return bad_value(L, k, v,
				 "expected host:port, [ipv6]:port or *:port, "
				 "port 1..65535");
	return set_str(L, k, v);
}

/* Append a copy of s[0..n) to a string list. */
static int push_str(struct load *L, char ***list, size_t *count,
		    const char *s, size_t n)
{
	char **a = mem_realloc(*list, (*count + 1) * sizeof *a);
	if (!a)
		return nomem(L);
	*list = a;
	a[*count] = mem_strndup(s, n);
	if (!a[*count])
		return nomem(L);
	(*count)++;
	return 0;
}

/* One line of initdb arguments (key line or continuation line): split on
 * whitespace; each one must be a long option. */
static int parse_initdb(struct load *L, const struct key_def *k,
			const char *v)
{
	static const struct {
		const char *opt, *instead;
	} reserved[] = {
		{ "--pgdata", "[postgresql] data_dir" },
		{ "--username", "[postgresql] superuser" },
	};
	struct cfg_pg *pg = &L->cfg->pg;
	char arg[CFG_MAX_LINE + 1], b[80];
	const char *p = v;

	(void)k;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return 0;
		const char *e = p;
		while (*e && !isspace((unsigned char)*e))
			e++;
		copy_range(arg, p, e);
		if (e - p < 3 || strncmp(arg, "--", 2) != 0 || has_ctrl(arg))
			return fail(L, L->line,
				    "[bootstrap] initdb: invalid argument '%s' "
				    "(each argument must be a long option "
				    "starting with '--', e.g. --data-checksums)",
				    shown(b, sizeof b, arg));
		size_t nl = strcspn(arg, "=");
		for (size_t i = 0; i < sizeof reserved / sizeof reserved[0];
		     i++)
			if (strlen(reserved[i].opt) == nl &&
			    memcmp(arg, reserved[i].opt, nl) == 0)
				return fail(L, L->line,
					    "[bootstrap] initdb: %s is set by "
					    "pgwarden from %s",
					    reserved[i].opt,
					    reserved[i].instead);
		int rc = push_str(L, &pg->initdb, &pg->ninitdb, arg,
				  strlen(arg));
		if (rc)
			return rc;
		p = e;
	}
}

/* One pg_hba.conf line: the key's value or a continuation line. An empty
 * key value is allowed (the lines follow on indented lines). */
static int parse_pg_hba(struct load *L, const struct key_def *k,
			const char *v)
{
	static const char *const types[] = { "local",     "host",
					     "hostssl",   "hostnossl",
					     "hostgssenc", "hostnogssenc" };
	struct cfg_pg *pg = &L->cfg->pg;
	char b[CFG_MAX_LINE + 1];
	size_t fields = 0, first = 0;

	(void)k;
	if (v[0] == '\0')
		return 0;
	for (const char *p = v; *p;) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		const char *e = p;
		while (*e && !isspace((unsigned char)*e))
			e++;
		if (fields++ == 0)
			first = (size_t)(e - p);
		p = e;
	}
	size_t type = sizeof types / sizeof types[0];
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strlen(types[i]) == first &&
		    memcmp(v, types[i], first) == 0)
			type = i;
	if (type == sizeof types / sizeof types[0])
		return fail(L, L->line,
			    "[bootstrap] pg_hba: invalid line '%s' (the first "
			    "field must be local, host, hostssl, hostnossl, "
			    "hostgssenc or hostnogssenc)",
			    shown(b, sizeof b, v));
	if (fields < (type == 0 ? 4u : 5u))
		return fail(L, L->line,
			    "[bootstrap] pg_hba: invalid line '%s' (expected "
			    "%s)",
			    shown(b, sizeof b, v),
			    type == 0 ? "local DATABASE USER METHOD [OPTIONS]"
				      : "TYPE DATABASE USER ADDRESS METHOD "
					"[OPTIONS]");
	return push_str(L, &pg->pg_hba, &pg->npg_hba, v, strlen(v));
}

/* A script pgwarden runs: it must exist and be executable now. */
static int parse_executable(struct load *L, const struct key_def *k,
			    const char *v)
{
	struct stat st;
	char b[80];
	if (v[0] != '/' || has_ctrl(v))
		return bad_value(L, k, v, "an absolute path is required");
	shown(b, sizeof b, v);
	if (stat(v, &st) != 0)
		return fail(L, L->line, "[%s] %s: %s: cannot access: %s",
			    L->title, k->name, b, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(L, L->line, "[%s] %s: %s: not a regular file",
			    L->title, k->name, b);
	if (access(v, X_OK) != 0)
		return fail(L, L->line, "[%s] %s: %s: not executable (%s)",
			    L->title, k->name, b, strerror(errno));
	return set_str(L, k, v);
}

/* A user's role options: separated by whitespace or commas, any case;
 * stored upper-case, space-separated. */
static int parse_role_options(struct load *L, const struct key_def *k,
			      const char *v)
{
	static const char *const opts[] = { "SUPERUSER",   "CREATEDB",
					    "CREATEROLE",  "INHERIT",
					    "LOGIN",       "REPLICATION",
					    "BYPASSRLS" };
	enum { NOPTS = sizeof opts / sizeof opts[0] };
	int seen[NOPTS] = { 0 }; /* 0: not yet, 1: given, 2: NO... given */
	char out[CFG_MAX_LINE + 1], tok[CFG_MAX_LINE + 1], b[80];
	size_t on = 0;
	const char *p = v;

	for (;;) {
		while (isspace((unsigned char)*p) || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *e = p;
		while (*e && !isspace((unsigned char)*e) && *e != ',')
			e++;
		const char *start = p;
		copy_range(tok, p, e);
		p = e;
		for (char *t = tok; *t; t++)
			*t = (char)toupper((unsigned char)*t);
		int found = -1;
		for (int i = 0; i < NOPTS; i++)
			if (strcmp(tok, opts[i]) == 0 ||
			    (strncmp(tok, "NO", 2) == 0 &&
			     strcmp(tok + 2, opts[i]) == 0))
				found = i;
		if (found < 0) {
			copy_range(tok, start, e); /* as given */
			return fail(L, L->line,
				    "[%s] %s: unknown role option '%s' "
				    "(allowed: SUPERUSER, CREATEDB, CREATEROLE, "
				    "INHERIT, LOGIN, REPLICATION, BYPASSRLS and "
				    "their NO... forms)",
				    L->title, k->name, shown(b, sizeof b, tok));
		}
		if (seen[found])
			return fail(L, L->line,
				    "[%s] %s: %s repeats or contradicts %s%s",
				    L->title, k->name, tok,
				    seen[found] == 2 ? "NO" : "", opts[found]);
		seen[found] = strcmp(tok, opts[found]) == 0 ? 1 : 2;
		on += (size_t)snprintf(out + on, sizeof out - on, "%s%s",
				       on ? " " : "", tok);
	}
	out[on] = '\0';
	return set_str(L, k, out);
}

/* ---- the table -------------------------------------------------------- */

#define F(x) offsetof(struct cfg, x)
#define U(x) offsetof(struct cfg_user, x)

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

	[K_PG_BIN_DIR] = { S_PG, "bin_dir", 0, parse_abspath, F(pg.bin_dir),
			   0, 0 },
	[K_PG_DATA_DIR] = { S_PG, "data_dir", KEY_REQUIRED, parse_abspath,
			    F(pg.data_dir), 0, 0 },
	[K_PG_LISTEN] = { S_PG, "listen", 0, parse_pg_listen, F(pg.listen), 0,
			  0 },
	[K_PG_CONNECT] = { S_PG, "connect_address", 0, parse_advertise,
			   F(pg.connect_address), 0, 0 },
	[K_PG_SOCKET_DIR] = { S_PG, "socket_dir", 0, parse_abspath,
			      F(pg.socket_dir), 0, 90 },
	[K_PG_SUPERUSER] = { S_PG, "superuser", 0, parse_name,
			     F(pg.superuser), 0, 0 },
	[K_PG_SU_PASSWORD] = { S_PG, "superuser_password", 0, parse_password,
			       F(pg.superuser_password), 0, 0 },
	[K_PG_SU_PASSWORD_FILE] = { S_PG, "superuser_password_file", 0,
				    parse_password_file,
				    F(pg.superuser_password), 0, 0 },
	[K_PG_REPL_USER] = { S_PG, "replication_user", 0, parse_name,
			     F(pg.replication_user), 0, 0 },
	[K_PG_REPL_PASSWORD] = { S_PG, "replication_password", 0,
				 parse_password, F(pg.replication_password),
				 0, 0 },
	[K_PG_REPL_PASSWORD_FILE] = { S_PG, "replication_password_file", 0,
				      parse_password_file,
				      F(pg.replication_password), 0, 0 },
	[K_PG_USE_SLOTS] = { S_PG, "use_slots", 0, parse_bool,
			     F(pg.use_slots), 0, 0 },
	[K_PG_USE_REWIND] = { S_PG, "use_rewind", 0, parse_bool,
			      F(pg.use_rewind), 0, 0 },
	[K_PG_REMOVE_DATA] = { S_PG, "remove_data_directory_on_rewind_failure",
			       0, parse_bool,
			       F(pg.remove_data_on_rewind_failure), 0, 0 },

	[K_BS_INITDB] = { S_BOOTSTRAP, "initdb", KEY_MULTILINE, parse_initdb,
			  F(pg.initdb), 0, 0 },
	[K_BS_PG_HBA] = { S_BOOTSTRAP, "pg_hba", KEY_MULTILINE, parse_pg_hba,
			  F(pg.pg_hba), 0, 0 },
	[K_BS_POST_BOOTSTRAP] = { S_BOOTSTRAP, "post_bootstrap", 0,
				  parse_executable, F(pg.post_bootstrap), 0,
				  0 },

	[K_USER_PASSWORD] = { S_USER, "password", 0, parse_password,
			      U(password), 0, 0 },
	[K_USER_PASSWORD_FILE] = { S_USER, "password_file", 0,
				   parse_password_file, U(password), 0, 0 },
	[K_USER_OPTIONS] = { S_USER, "options", 0, parse_role_options,
			     U(options), 0, 0 },

	[K_TAG_NOFAILOVER] = { S_TAGS, "nofailover", 0, parse_bool,
			       F(pg.nofailover), 0, 0 },
	[K_TAG_NOLOADBALANCE] = { S_TAGS, "noloadbalance", 0, parse_bool,
				  F(pg.noloadbalance), 0, 0 },
	[K_TAG_NOSYNC] = { S_TAGS, "nosync", 0, parse_bool, F(pg.nosync), 0,
			   0 },
	[K_TAG_CLONEFROM] = { S_TAGS, "clonefrom", 0, parse_bool,
			      F(pg.clonefrom), 0, 0 },
	[K_TAG_PRIORITY] = { S_TAGS, "failover_priority", 0, parse_count,
			     F(pg.failover_priority), 0, 1000000 },

	[K_HA_TTL] = { S_HA, "ttl", 0, parse_duration, F(pg.ttl_ms), 500,
		       600000 },
	[K_HA_LOOP_WAIT] = { S_HA, "loop_wait", 0, parse_duration,
			     F(pg.loop_wait_ms), 10, 60000 },
	[K_HA_SAFETY_MARGIN] = { S_HA, "safety_margin", 0, parse_duration,
				 F(pg.safety_margin_ms), 0, 60000 },
	[K_HA_MAX_LAG] = { S_HA, "maximum_lag_on_failover", 0, parse_size,
			   F(pg.maximum_lag_on_failover), 0, 0 },
	[K_HA_SYNC_MODE] = { S_HA, "synchronous_mode", 0, parse_sync_mode,
			     F(pg.synchronous_mode), 0, 0 },
	[K_HA_SYNC_COUNT] = { S_HA, "synchronous_node_count", 0, parse_count,
			      F(pg.synchronous_node_count), 1, 16 },
	[K_HA_CRASH_RESTART] = { S_HA, "crash_restart_timeout", 0,
				 parse_duration,
				 F(pg.crash_restart_timeout_ms), 100,
				 3600000 },
	[K_HA_MOVE_RAFT_LEADER] = { S_HA, "move_raft_leader", 0, parse_bool,
				    F(pg.move_raft_leader), 0, 0 },

	[K_WD_MODE] = { S_WATCHDOG, "mode", 0, parse_wd_mode, F(pg.wd_mode), 0,
			0 },
	[K_WD_DEVICE] = { S_WATCHDOG, "device", 0, parse_abspath,
			  F(pg.wd_device), 0, 0 },
	[K_WD_TIMEOUT] = { S_WATCHDOG, "timeout", 0, parse_duration,
			   F(pg.wd_timeout_ms), 1000, 60000 },
	[K_WD_FENCER] = { S_WATCHDOG, "fencer", 0, parse_bool, F(pg.fencer),
			  0, 0 },

	[K_CB_ON_START] = { S_CALLBACKS, "on_start", 0, parse_executable,
			    F(pg.on_start), 0, 0 },
	[K_CB_ON_STOP] = { S_CALLBACKS, "on_stop", 0, parse_executable,
			   F(pg.on_stop), 0, 0 },
	[K_CB_ON_ROLE_CHANGE] = { S_CALLBACKS, "on_role_change", 0,
				  parse_executable, F(pg.on_role_change), 0,
				  0 },
};

/* String defaults, set after the file when the key was not given. */
static const struct {
	enum key_id key;
	const char *value;
} str_defaults[] = {
	{ K_PG_BIN_DIR, "/usr/lib/postgresql/15/bin" },
	{ K_PG_LISTEN, "127.0.0.1:5432" },
	{ K_PG_SOCKET_DIR, "/var/run/postgresql" },
	{ K_PG_SUPERUSER, "postgres" },
	{ K_PG_REPL_USER, "replicator" },
	{ K_WD_DEVICE, "/dev/watchdog" },
};

static void set_defaults(struct cfg *c)
{
	c->log_level = LOG_INFO;
	c->join = false;
	c->election_timeout_ms = CFG_DEFAULT_ELECTION_MS;
	c->heartbeat_ms = CFG_DEFAULT_HEARTBEAT_MS;
	c->snapshot_threshold = 1024;
	c->snapshot_trailing = 2048;
	c->pg.use_slots = true;
	c->pg.use_rewind = true;
	c->pg.remove_data_on_rewind_failure = true;
	c->pg.failover_priority = 1;
	c->pg.ttl_ms = 2500;
	c->pg.loop_wait_ms = 400;
	c->pg.safety_margin_ms = 300;
	c->pg.maximum_lag_on_failover = 1048576;
	c->pg.synchronous_mode = CFG_SYNC_OFF;
	c->pg.synchronous_node_count = 1;
	c->pg.crash_restart_timeout_ms = 5000;
	c->pg.move_raft_leader = true;
	c->pg.wd_mode = CFG_WD_AUTOMATIC;
	c->pg.wd_timeout_ms = 1000;
	c->pg.fencer = true;
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

/* A [bootstrap.user.NAME] header: a new user, each NAME at most once. */
static int add_user(struct load *L, const char *name)
{
	struct cfg_pg *pg = &L->cfg->pg;
	char b[80], t[80];

	if (!valid_name(name, strlen(name)))
		return fail(L, L->line,
			    "[%s]: invalid role name '%s' (" NAME_RULE ")",
			    shown(t, sizeof t, L->title), shown(b, sizeof b, name));
	for (size_t i = 0; i < pg->nusers; i++)
		if (strcmp(pg->users[i].name, name) == 0)
			return fail(L, L->line,
				    "duplicate section [" USER_PREFIX
				    "%s] (first at line %u)",
				    name, L->user_line[i]);
	struct cfg_user *u =
		mem_realloc(pg->users, (pg->nusers + 1) * sizeof *u);
	if (!u)
		return nomem(L);
	pg->users = u;
	unsigned *ul =
		mem_realloc(L->user_line, (pg->nusers + 1) * sizeof *ul);
	if (!ul)
		return nomem(L);
	L->user_line = ul;
	struct cfg_user user = {
		.name = mem_strdup(name),
		.options = mem_strdup(""),
	};
	if (!user.name || !user.options) {
		mem_free(user.name);
		mem_free(user.options);
		return nomem(L);
	}
	u[pg->nusers] = user;
	ul[pg->nusers] = L->line;
	pg->nusers++;
	/* the user keys count per section */
	for (int k = 0; k < K_COUNT; k++)
		if (keys[k].sect == S_USER)
			L->key_line[k] = 0;
	return 0;
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
	char name[CFG_MAX_LINE + 1];
	memcpy(name, s + 1, n);
	name[n] = '\0';
	int id = -1;
	for (int i = 0; i < S_COUNT; i++)
		if (i != S_USER && strcmp(sect_names[i], name) == 0)
			id = i;
	if (id < 0 && strncmp(name, USER_PREFIX, strlen(USER_PREFIX)) == 0)
		id = S_USER;
	if (id < 0)
		return fail(L, L->line, "unknown section [%s]",
			    shown(b, sizeof b, name));
	memcpy(L->title, name, n + 1);
	if (id == S_USER) {
		int rc = add_user(L, name + strlen(USER_PREFIX));
		if (rc)
			return rc;
	} else if (L->sect_line[id]) {
		return fail(L, L->line,
			    "duplicate section [%s] (first at line %u)",
			    sect_names[id], L->sect_line[id]);
	}
	if (id == S_PG)
		L->cfg->pg.enabled = true;
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

#define CONT_MSG                                                         \
	"unexpected continuation line (an indented line continues the "   \
	"previous key; start keys in the first column)"

/* Settings pgwarden sets itself on the postgres command line. */
static const struct {
	const char *name, *why;
} reserved_params[] = {
	{ "port", "pgwarden sets it from [postgresql] listen" },
	{ "listen_addresses", "pgwarden sets it from [postgresql] listen" },
	{ "unix_socket_directories",
	  "pgwarden sets it from [postgresql] socket_dir" },
	{ "data_directory", "pgwarden sets it from [postgresql] data_dir" },
	{ "hba_file", "managed by pgwarden; use [bootstrap] pg_hba" },
	{ "config_file", "managed by pgwarden" },
	{ "primary_conninfo", "managed by pgwarden" },
	{ "primary_slot_name",
	  "managed by pgwarden; see [postgresql] use_slots" },
	{ "synchronous_standby_names",
	  "managed by pgwarden; use [ha] synchronous_mode and "
	  "synchronous_node_count" },
};

/* A PostgreSQL setting name: a letter, then letters, digits, '_', '.'. */
static bool valid_param(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CFG_PARAM_MAX || !isalpha((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '.')
			return false;
	return true;
}

/* A key line of [postgresql.parameters]: the value is taken verbatim. */
static int add_param(struct load *L, const char *name, const char *value)
{
	struct cfg_pg *pg = &L->cfg->pg;
	char b[80];

	if (L->cont)
		return fail(L, L->line,
			    "[postgresql.parameters] %s: " CONT_MSG,
			    pg->params[pg->nparams - 1].name);
	if (!valid_param(name))
		return fail(L, L->line,
			    "[postgresql.parameters] invalid setting name '%s' "
			    "(allowed: letters, digits, '_', '.', starting "
			    "with a letter, at most 63)",
			    shown(b, sizeof b, name));
	for (size_t i = 0;
	     i < sizeof reserved_params / sizeof reserved_params[0]; i++)
		if (strcasecmp(name, reserved_params[i].name) == 0)
			return fail(L, L->line,
				    "[postgresql.parameters] %s: not allowed "
				    "here (%s)",
				    name, reserved_params[i].why);
	for (size_t i = 0; i < pg->nparams; i++)
		if (strcasecmp(pg->params[i].name, name) == 0)
			return fail(L, L->line,
				    "duplicate key '%s' in "
				    "[postgresql.parameters] (first at line %u)",
				    name, L->param_line[i]);
	struct cfg_param *p =
		mem_realloc(pg->params, (pg->nparams + 1) * sizeof *p);
	if (!p)
		return nomem(L);
	pg->params = p;
	unsigned *pl =
		mem_realloc(L->param_line, (pg->nparams + 1) * sizeof *pl);
	if (!pl)
		return nomem(L);
	L->param_line = pl;
	struct cfg_param param = {
		.name = mem_strdup(name),
		.value = mem_strdup(value),
	};
	if (!param.name || !param.value) {
		mem_free(param.name);
		mem_free(param.value);
		return nomem(L);
	}
	p[pg->nparams] = param;
	pl[pg->nparams] = L->line;
	pg->nparams++;
	return 0;
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
			rc = fail(L, L->line, "[%s] %s: " CONT_MSG, L->title,
				  k->name);
		else
			rc = k->parse(L, k, value);
		return rc == 0;
	}
	if (L->sect < 0) {
		fail(L, L->line, "key '%s' outside any section",
		     shown(b, sizeof b, name));
		return 0;
	}
	if (L->sect == S_PG_PARAMS)
		return add_param(L, name, value) == 0;
	int id = find_key(L->sect, name);
	if (id < 0) {
		fail(L, L->line, "unknown key '%s' in [%s]",
		     shown(b, sizeof b, name), L->title);
		return 0;
	}
	if (L->key_line[id]) {
		fail(L, L->line,
		     "duplicate key '%s' in [%s] (first at line %u)", name,
		     L->title, L->key_line[id]);
		return 0;
	}
	for (size_t i = 0; i < sizeof exclusive / sizeof exclusive[0]; i++) {
		for (int j = 0; j < 2; j++) {
			int other = exclusive[i][1 - j];
			if (exclusive[i][j] == id && L->key_line[other]) {
				fail(L, L->line,
				     "[%s] %s: cannot be combined with %s (line "
				     "%u); set only one of them",
				     L->title, name, keys[other].name,
				     L->key_line[other]);
				return 0;
			}
		}
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
			if ((sect_flags[s] & SECT_OPTIONAL) && !L->sect_line[s])
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

/* The store's keys: [raft] and [api] against each other. */
static int check_store(struct load *L)
{
	struct cfg *c = L->cfg;

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

/* The string field of a key of struct cfg (not of a user). */
static char **str_field(struct cfg *c, int key)
{
	return (void *)((char *)c + keys[key].off);
}

/* Defaults that need memory (the others are set before the file). */
static int set_late_defaults(struct load *L)
{
	struct cfg_pg *pg = &L->cfg->pg;
	for (size_t i = 0; i < sizeof str_defaults / sizeof str_defaults[0];
	     i++) {
		char **slot = str_field(L->cfg, str_defaults[i].key);
		if (*slot)
			continue;
		*slot = mem_strdup(str_defaults[i].value);
		if (!*slot)
			return nomem(L);
	}
	if (!L->key_line[K_BS_INITDB]) {
		static const char *const def[] = { "--data-checksums",
						   "--encoding=UTF8" };
		for (size_t i = 0; i < sizeof def / sizeof def[0]; i++) {
			int rc = push_str(L, &pg->initdb, &pg->ninitdb, def[i],
					  strlen(def[i]));
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* The latest line among the given keys that are set; if none is, the
 * header of the first present section in sects, else the last line. */
static unsigned later_line(const struct load *L, const int *ids, size_t n,
			   const int *sects, size_t ns)
{
	unsigned line = 0;
	for (size_t i = 0; i < n; i++)
		if (L->key_line[ids[i]] > line)
			line = L->key_line[ids[i]];
	for (size_t i = 0; line == 0 && i < ns; i++)
		line = L->sect_line[sects[i]];
	return line ? line : (L->line ? L->line : 1);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Lexical normal form of an absolute path: no "//", "." or ".."
 * components and no trailing '/'; "/" becomes "". Symlinks are not
 * followed (nothing is touched at load). */
static void norm_path(const char *in, char *out, size_t len)
{
	size_t n = 0;
	const char *p = in;
	for (;;) {
		while (*p == '/')
			p++;
		size_t cl = strcspn(p, "/");
		if (cl == 0)
			break;
		if (cl == 1 && p[0] == '.') {
			/* nothing */
		} else if (cl == 2 && p[0] == '.' && p[1] == '.') {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
		} else if (n + 1 + cl < len) {
			out[n++] = '/';
			memcpy(out + n, p, cl);
			n += cl;
		}
		p += cl;
	}
	out[n] = '\0';
}

/* a is below b (both normalised). */
static bool path_inside(const char *a, const char *b)
{
	size_t lb = strlen(b);
	return strncmp(a, b, lb) == 0 && a[lb] == '/';
}

/* [postgresql] against itself and the store's keys; users vs roles. */
static int check_pg(struct load *L)
{
	struct cfg *c = L->cfg;
	struct cfg_pg *pg = &c->pg;

	if (!pg->connect_address) {
		if (pg_wildcard(pg->listen))
			return fail(L, L->key_line[K_PG_LISTEN],
				    "[postgresql] listen: %s is a wildcard "
				    "address; set [postgresql] connect_address "
				    "to an address other nodes can reach",
				    pg->listen);
		pg->connect_address = mem_strdup(pg->listen);
		if (!pg->connect_address)
			return nomem(L);
	}
	if (pg->enabled) {
		static const struct {
			int key;
			const char *what;
		} others[] = { { K_RAFT_LISTEN, "[raft] listen" },
			       { K_API_LISTEN, "[api] listen" } };
		for (size_t i = 0; i < NELEM(others); i++) {
			const char *o = *str_field(c, others[i].key);
			if (!same_address(pg->listen, o))
				continue;
			const int ids[] = { K_PG_LISTEN, others[i].key };
			const int sects[] = { S_PG };
			return fail(L,
				    later_line(L, ids, NELEM(ids), sects,
					       NELEM(sects)),
				    "[postgresql] listen and %s are the same "
				    "address %s",
				    others[i].what, pg->listen);
		}

		char a[CFG_MAX_LINE + 1], b[CFG_MAX_LINE + 1];
		const char *how = NULL;
		norm_path(pg->data_dir, a, sizeof a);
		norm_path(c->data_dir, b, sizeof b);
		if (strcmp(a, b) == 0)
			how = "is the same directory as";
		else if (path_inside(a, b))
			how = "is inside";
		else if (path_inside(b, a))
			how = "contains";
		if (how) {
			const int ids[] = { K_PG_DATA_DIR, K_NODE_DATA_DIR };
			return fail(L, later_line(L, ids, NELEM(ids), NULL, 0),
				    "[postgresql] data_dir: %s %s [node] "
				    "data_dir %s (they must be separate "
				    "directories)",
				    pg->data_dir, how, c->data_dir);
		}
	}

	for (size_t i = 0; i < pg->nusers; i++) {
		const char *name = pg->users[i].name;
		const char *role = strcmp(name, pg->superuser) == 0 ? "superuser"
				   : strcmp(name, pg->replication_user) == 0
					   ? "replication_user"
					   : NULL;
		if (role)
			return fail(L, L->user_line[i],
				    "[" USER_PREFIX "%s]: '%s' is the "
				    "[postgresql] %s, which pgwarden creates; "
				    "set its password in [postgresql]",
				    name, name, role);
	}
	return 0;
}

/* The HA timing inequalities (docs/architecture.md "Lease and fencing"),
 * with rho and E from base/timing.h, the functions the agent and the store
 * use at run time. */
static int check_ha(struct load *L)
{
	const struct cfg *c = L->cfg;
	const struct cfg_pg *pg = &c->pg;
	const int sects[] = { S_HA, S_WATCHDOG, S_PG };

	if (!pg->enabled && !L->sect_line[S_HA] && !L->sect_line[S_WATCHDOG])
		return 0; /* a store-only node: no lease to keep */

	if (pg->loop_wait_ms > pg->ttl_ms / 3) {
		const int ids[] = { K_HA_TTL, K_HA_LOOP_WAIT };
		return fail(L, later_line(L, ids, NELEM(ids), sects, 1),
			    "[ha] loop_wait (%ums) must be at most a third of "
			    "ttl (%ums)",
			    pg->loop_wait_ms, pg->ttl_ms);
	}

	long long ttl = (long long)timing_shrink(pg->ttl_ms);
	long long margin = pg->safety_margin_ms;
	long long loop = pg->loop_wait_ms;
	long long avail = ttl - margin;
	long long need = (long long)timing_election(c->election_timeout_ms) + loop;
	if (avail <= need) {
		const int ids[] = { K_HA_TTL, K_HA_SAFETY_MARGIN, K_HA_LOOP_WAIT,
				    K_RAFT_ELECTION };
		return fail(L, later_line(L, ids, NELEM(ids), sects, 1),
			    "[ha] ttl %ums is too short: ttl*(1-rho) - "
			    "safety_margin (%lldms) must exceed "
			    "%u.%u*election_timeout + loop_wait (%lldms)",
			    pg->ttl_ms, avail,
			    TIMING_ELECTION_TENTHS / 10,
			    TIMING_ELECTION_TENTHS % 10, need);
	}

	if (pg->wd_mode != CFG_WD_OFF) {
		/* a real device counts whole seconds: use what it will do */
		unsigned twd = (pg->wd_timeout_ms + 999) / 1000 * 1000;
		char dev[64] = "";
		if (twd != pg->wd_timeout_ms)
			snprintf(dev, sizeof dev,
				 " (%ums on the device, which counts whole "
				 "seconds)",
				 twd);
		avail = ttl - (long long)twd - margin;
		if (avail <= loop) {
			const int ids[] = { K_HA_TTL, K_HA_SAFETY_MARGIN,
					    K_HA_LOOP_WAIT, K_WD_TIMEOUT,
					    K_WD_MODE };
			return fail(L,
				    later_line(L, ids, NELEM(ids), sects, 2),
				    "[watchdog] timeout %ums%s is too long: "
				    "ttl*(1-rho) - timeout - safety_margin "
				    "(%lldms) must exceed loop_wait (%ums)",
				    pg->wd_timeout_ms, dev, avail,
				    pg->loop_wait_ms);
		}
	}
	return 0;
}

static int check_all(struct load *L)
{
	int rc = check_missing(L);
	if (!rc)
		rc = check_store(L);
	if (!rc)
		rc = set_late_defaults(L);
	if (!rc)
		rc = check_pg(L);
	if (!rc)
		rc = check_ha(L);
	return rc;
}

/* ---- public ----------------------------------------------------------- */

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		mem_free(s);
	}
}

static void free_list(char **a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mem_free(a[i]);
	mem_free(a);
}

static void free_pg(struct cfg_pg *pg)
{
	mem_free(pg->bin_dir);
	mem_free(pg->data_dir);
	mem_free(pg->listen);
	mem_free(pg->connect_address);
	mem_free(pg->socket_dir);
	mem_free(pg->superuser);
	free_secret(pg->superuser_password);
	mem_free(pg->replication_user);
	free_secret(pg->replication_password);
	for (size_t i = 0; i < pg->nparams; i++) {
		mem_free(pg->params[i].name);
		mem_free(pg->params[i].value);
	}
	mem_free(pg->params);
	free_list(pg->initdb, pg->ninitdb);
	free_list(pg->pg_hba, pg->npg_hba);
	mem_free(pg->post_bootstrap);
	for (size_t i = 0; i < pg->nusers; i++) {
		mem_free(pg->users[i].name);
		free_secret(pg->users[i].password);
		mem_free(pg->users[i].options);
	}
	mem_free(pg->users);
	mem_free(pg->wd_device);
	mem_free(pg->on_start);
	mem_free(pg->on_stop);
	mem_free(pg->on_role_change);
}

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
	free_secret(c->token);
	free_pg(&c->pg);
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
	mem_free(L.param_line);
	mem_free(L.user_line);
	if (L.rc)
		cfg_free(out);
	return L.rc;
}

/* ---- the cluster-wide [ha] (store) ------------------------------------ */

static const int ha_keys[] = { K_HA_TTL,	   K_HA_LOOP_WAIT,
			       K_HA_SAFETY_MARGIN, K_HA_MAX_LAG,
			       K_HA_SYNC_MODE,	   K_HA_SYNC_COUNT,
			       K_HA_CRASH_RESTART, K_HA_MOVE_RAFT_LEADER };

static void ha_to_pg(const struct cfg_ha *h, struct cfg_pg *pg)
{
	pg->ttl_ms = h->ttl_ms;
	pg->loop_wait_ms = h->loop_wait_ms;
	pg->safety_margin_ms = h->safety_margin_ms;
	pg->maximum_lag_on_failover = h->maximum_lag_on_failover;
	pg->synchronous_mode = h->synchronous_mode;
	pg->synchronous_node_count = h->synchronous_node_count;
	pg->crash_restart_timeout_ms = h->crash_restart_timeout_ms;
	pg->move_raft_leader = h->move_raft_leader;
}

void cfg_ha_of(const struct cfg *c, struct cfg_ha *out)
{
	const struct cfg_pg *pg = &c->pg;
	*out = (struct cfg_ha){
		.ttl_ms = pg->ttl_ms,
		.loop_wait_ms = pg->loop_wait_ms,
		.safety_margin_ms = pg->safety_margin_ms,
		.maximum_lag_on_failover = pg->maximum_lag_on_failover,
		.synchronous_mode = pg->synchronous_mode,
		.synchronous_node_count = pg->synchronous_node_count,
		.crash_restart_timeout_ms = pg->crash_restart_timeout_ms,
		.move_raft_leader = pg->move_raft_leader,
	};
}

static const char *sync_mode_word(enum cfg_sync_mode m)
{
	return m == CFG_SYNC_STRICT ? "strict" : m == CFG_SYNC_ON ? "on" : "off";
}

int cfg_ha_to_json(const struct cfg_ha *h, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "{\"ha\":{\"ttl\":\"%ums\",\"loop_wait\":\"%ums\","
			 "\"safety_margin\":\"%ums\","
			 "\"maximum_lag_on_failover\":\"%llu\","
			 "\"synchronous_mode\":\"%s\","
			 "\"synchronous_node_count\":\"%u\","
			 "\"crash_restart_timeout\":\"%ums\","
			 "\"move_raft_leader\":\"%s\"}}",
			 h->ttl_ms, h->loop_wait_ms, h->safety_margin_ms,
			 (unsigned long long)h->maximum_lag_on_failover,
			 sync_mode_word(h->synchronous_mode),
			 h->synchronous_node_count, h->crash_restart_timeout_ms,
			 h->move_raft_leader ? "true" : "false");
	if (n < 0 || (size_t)n >= len)
		return ERR_INVAL;
	return n;
}

int cfg_ha_from_json(const struct cfg *c, const char *json,
		     struct cfg_ha *out, char *err, size_t errlen)
{
	/* The ini's own parsers and checks, run on a copy of this node's
	 * settings: only the [ha] fields are written, and nothing the copy
	 * points to is freed or changed. */
	struct cfg tmp = *c;
	struct cfg_ha h;
	cfg_ha_of(c, &h);
	ha_to_pg(&h, &tmp.pg);
	struct load L = {
		.path = "cluster config",
		.cfg = &tmp,
		.err = err,
		.errlen = errlen,
		.sect = S_HA,
		.last_key = -1,
		.no_lines = true,
	};
	snprintf(L.title, sizeof L.title, "%s", "ha");
	tmp.pg.enabled = true; /* run the timing checks */
	if (err && errlen)
		err[0] = '\0';

	json_error_t je;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
	json_t *ha = root ? json_object_get(root, "ha") : NULL;
	if (!root) {
		fail(&L, 0, "not a JSON object: %s", je.text);
	} else if (!json_is_object(root) || json_object_size(root) != 1 ||
		   !json_is_object(ha)) {
		fail(&L, 0, "expected {\"ha\": {...}} and nothing else");
	} else {
		const char *name;
		json_t *v;
		json_object_foreach(ha, name, v)
		{
			int id = find_key(S_HA, name);
			if (id < 0) {
				fail(&L, 0, "[ha] %s: unknown key", name);
				break;
			}
			if (!json_is_string(v)) {
				fail(&L, 0, "[ha] %s: expected a string value",
				     name);
				break;
			}
			if (keys[id].parse(&L, &keys[id], json_string_value(v)))
				break;
		}
	}
	json_decref(root);
	if (!L.rc)
		check_ha(&L);
	if (L.rc)
		return L.rc;
	cfg_ha_of(&tmp, out);
	return 0;
}

void cfg_ha_diff(const struct cfg_ha *a, const struct cfg_ha *b, char *out,
		 size_t len)
{
	const bool differs[] = {
		a->ttl_ms != b->ttl_ms,
		a->loop_wait_ms != b->loop_wait_ms,
		a->safety_margin_ms != b->safety_margin_ms,
		a->maximum_lag_on_failover != b->maximum_lag_on_failover,
		a->synchronous_mode != b->synchronous_mode,
		a->synchronous_node_count != b->synchronous_node_count,
		a->crash_restart_timeout_ms != b->crash_restart_timeout_ms,
		a->move_raft_leader != b->move_raft_leader,
	}; /* in the order of ha_keys */
	size_t n = 0;
	if (len)
		out[0] = '\0';
	for (size_t i = 0; i < NELEM(ha_keys) && len; i++) {
		if (!differs[i])
			continue;
		int w = snprintf(out + n, len - n, "%s%s", n ? ", " : "",
				 keys[ha_keys[i]].name);
		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
}
