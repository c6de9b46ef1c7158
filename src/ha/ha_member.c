#include "ha/ha_member.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "mem.h"

static const char *const role_names[] = { "unknown", "primary", "replica",
					  "uninitialized" };
static const char *const state_names[] = {
	"stopped",  "starting",  "running",   "streaming",
	"initializing", "cloning", "rewinding", "promoting",
	"demoting", "crashed",   "refused",   "waiting",
};

const char *ha_role_name(enum ha_role r)
{
	return (unsigned)r < sizeof role_names / sizeof role_names[0]
		       ? role_names[r]
		       : "unknown";
}

const char *ha_state_name(enum ha_state s)
{
	return (unsigned)s < sizeof state_names / sizeof state_names[0]
		       ? state_names[s]
		       : "unknown";
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	size_t n;
	unsigned cp;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1fu;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0fu;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Copy src into dst (len bytes with the NUL) as valid UTF-8: invalid
 * bytes become '?', and a character that does not fit whole is dropped. */
static void utf8_copy(char *dst, size_t len, const char *src)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t o = 0;
	while (*p) {
		size_t n = utf8_seq(p);
		if (n == 0) {
			if (o + 1 >= len)
				break;
			dst[o++] = '?';
			p++;
			continue;
		}
		if (o + n >= len)
			break;
		memcpy(dst + o, p, n);
		o += n;
		p += n;
	}
	dst[o] = '\0';
}

char *ha_member_encode(const struct ha_member *m)
{
	/* jansson refuses strings that are not UTF-8: a localized PostgreSQL
	 * message in `detail` must never stop the report. */
	struct ha_member c = *m;
	utf8_copy(c.name, sizeof c.name, m->name);
	utf8_copy(c.api_url, sizeof c.api_url, m->api_url);
	utf8_copy(c.host, sizeof c.host, m->host);
	utf8_copy(c.hostaddr, sizeof c.hostaddr, m->hostaddr);
	utf8_copy(c.sysid, sizeof c.sysid, m->sysid);
	utf8_copy(c.detail, sizeof c.detail, m->detail);
	utf8_copy(c.watchdog.mode, sizeof c.watchdog.mode, m->watchdog.mode);
	utf8_copy(c.watchdog.state, sizeof c.watchdog.state, m->watchdog.state);
	m = &c;
	json_t *o = json_pack(
		"{s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:I,s:s,s:{s:I,s:I,s:I},s:I,s:b,"
		"s:{s:b,s:b,s:b,s:i},s:s,s:I,s:{s:s,s:s,s:b,s:I,s:I}}",
		"name", m->name, "api_url", m->api_url, "host", m->host,
		"hostaddr", m->hostaddr, "port",
		m->port, "role", ha_role_name(m->role), "state",
		ha_state_name(m->state), "timeline", (json_int_t)m->timeline,
		"sysid", m->sysid, "lsn", "current",
		(json_int_t)m->lsn_current, "received",
		(json_int_t)m->lsn_received, "replayed",
		(json_int_t)m->lsn_replayed, "lag_bytes",
		(json_int_t)m->lag_bytes, "pending_restart", m->pending_restart,
		"tags", "nofailover", m->tags.nofailover, "noloadbalance",
		m->tags.noloadbalance, "nosync", m->tags.nosync,
		"failover_priority",
		m->tags.failover_priority, "detail", m->detail, "seq",
		(json_int_t)m->seq, "watchdog", "mode",
		m->watchdog.mode[0] ? m->watchdog.mode : "off", "state",
		m->watchdog.state[0] ? m->watchdog.state : "off", "armed",
		m->watchdog.armed, "timeout_ms",
		(json_int_t)m->watchdog.timeout_ms, "last_keepalive_age_ms",
		(json_int_t)m->watchdog.last_keepalive_age_ms);
	if (!o)
		return NULL;
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return NULL;
	char *r = mem_strdup(s);
	free(s);
	return r;
}

static void copy_str(json_t *o, const char *k, char *dst, size_t len)
{
	json_t *v = json_object_get(o, k);
	if (json_is_string(v))
		utf8_copy(dst, len, json_string_value(v));
}

static int64_t get_int(json_t *o, const char *k, int64_t dflt)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static bool get_bool(json_t *o, const char *k)
{
	return json_is_true(json_object_get(o, k));
}

int ha_member_decode(const char *json, size_t len, struct ha_member *m)
{
	memset(m, 0, sizeof *m);
	m->lag_bytes = -1;
	json_error_t jerr;
	json_t *o = json_loadb(json, len, 0, &jerr);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return ERR_CORRUPT;
	}
	copy_str(o, "name", m->name, sizeof m->name);
	copy_str(o, "api_url", m->api_url, sizeof m->api_url);
	copy_str(o, "host", m->host, sizeof m->host);
	copy_str(o, "hostaddr", m->hostaddr, sizeof m->hostaddr);
	copy_str(o, "sysid", m->sysid, sizeof m->sysid);
	copy_str(o, "detail", m->detail, sizeof m->detail);
	m->port = (int)get_int(o, "port", 0);
	json_t *v = json_object_get(o, "role");
	if (json_is_string(v)) {
		int r = lookup(role_names, 4, json_string_value(v));
		m->role = r < 0 ? HA_ROLE_UNKNOWN : (enum ha_role)r;
	}
	v = json_object_get(o, "state");
	if (json_is_string(v)) {
		int st = lookup(state_names,
				sizeof state_names / sizeof state_names[0],
				json_string_value(v));
		m->state = st < 0 ? HA_ST_STOPPED : (enum ha_state)st;
	}
	int64_t tl = get_int(o, "timeline", 0);
	m->timeline = tl > 0 && tl <= UINT32_MAX ? (uint32_t)tl : 0;
	json_t *lsn = json_object_get(o, "lsn");
	if (json_is_object(lsn)) {
		int64_t cur = get_int(lsn, "current", 0);
		int64_t rec = get_int(lsn, "received", 0);
		int64_t rep = get_int(lsn, "replayed", 0);
		/* a negative LSN is nonsense: never let it win a failover */
		m->lsn_current = cur > 0 ? (uint64_t)cur : 0;
		m->lsn_received = rec > 0 ? (uint64_t)rec : 0;
		m->lsn_replayed = rep > 0 ? (uint64_t)rep : 0;
	}
	m->lag_bytes = get_int(o, "lag_bytes", -1);
	m->pending_restart = get_bool(o, "pending_restart");
	json_t *tags = json_object_get(o, "tags");
	m->tags.failover_priority = 1;
	if (json_is_object(tags)) {
		m->tags.nofailover = get_bool(tags, "nofailover");
		m->tags.noloadbalance = get_bool(tags, "noloadbalance");
		m->tags.nosync = get_bool(tags, "nosync");
		m->tags.failover_priority =
			(int)get_int(tags, "failover_priority", 1);
	}
	m->seq = (uint64_t)get_int(o, "seq", 0);
	m->watchdog.last_keepalive_age_ms = -1;
	json_t *w = json_object_get(o, "watchdog");
	if (json_is_object(w)) {
		copy_str(w, "mode", m->watchdog.mode, sizeof m->watchdog.mode);
		copy_str(w, "state", m->watchdog.state,
			 sizeof m->watchdog.state);
		m->watchdog.armed = get_bool(w, "armed");
		int64_t t = get_int(w, "timeout_ms", 0);
		m->watchdog.timeout_ms =
			t > 0 && t < 3600000 ? (unsigned)t : 0;
		m->watchdog.last_keepalive_age_ms =
			get_int(w, "last_keepalive_age_ms", -1);
	}
	json_decref(o);
	return 0;
}

uint64_t ha_member_lsn(const struct ha_member *m)
{
	uint64_t l = m->lsn_current;
	if (m->lsn_received > l)
		l = m->lsn_received;
	if (m->lsn_replayed > l)
		l = m->lsn_replayed;
	return l;
}

void ha_key(char *buf, size_t len, const char *cluster, const char *leaf)
{
	snprintf(buf, len, "/service/%s/%s", cluster, leaf);
}

void ha_member_key(char *buf, size_t len, const char *cluster,
		   const char *name)
{
	snprintf(buf, len, "/service/%s/members/%s", cluster, name);
}
