/* rs_codec.c - the binary encoding of state-machine commands.
 *
 * Layout, little-endian, packed byte by byte (never by struct copy):
 *
 *   header (8 bytes)   'P' 'W' u8 version  u8 op  u32 body_len
 *   body               the op's fields, in this order:
 *     PUT              u32 flags, str key, str value, u64 lease,
 *                      [u64 prev_rev if flags & HAS_PREV]
 *     DELETE           u32 flags, str key, [u64 prev_rev if HAS_PREV]
 *     LEASE_GRANT      u64 ttl_ms
 *     LEASE_KEEPALIVE  u64 lease
 *     LEASE_REVOKE     u64 lease
 *     LEASE_EXPIRE     u64 lease, u64 renewals
 *     MEMBER_SET       u64 member_id, str name, str peer, str api
 *     MEMBER_DEL       u64 member_id
 *   padding            zero bytes up to a multiple of 8 (0..7 bytes)
 *
 * where str is u32 length + bytes. The padding is not optional: libraft
 * 0.15 corrupts its on-disk log for entries whose length is not a multiple
 * of 8 (docs/architecture.md, "libraft 0.15.0"), so every command is padded.
 *
 * The encoding is canonical: a buffer that decodes re-encodes to the same
 * bytes. Encoder and decoder apply the same validation (cmd_check), so an
 * encoder never produces what the decoder would refuse.
 */
#include "rs.h"

#include <string.h>

#include "err.h"

#define HDR_LEN 8u
#define MAGIC0 'P'
#define MAGIC1 'W'

/* Flags each op accepts; any other bit is refused. */
static uint32_t op_flags(unsigned op)
{
	switch (op) {
	case RS_OP_PUT:
		return RS_CMD_HAS_PREV;
	case RS_OP_DELETE:
		return RS_CMD_PREFIX | RS_CMD_HAS_PREV;
	default:
		return 0;
	}
}

const char *rs_op_name(int op)
{
	switch (op) {
	case RS_OP_PUT:
		return "put";
	case RS_OP_DELETE:
		return "delete";
	case RS_OP_LEASE_GRANT:
		return "lease_grant";
	case RS_OP_LEASE_KEEPALIVE:
		return "lease_keepalive";
	case RS_OP_LEASE_REVOKE:
		return "lease_revoke";
	case RS_OP_LEASE_EXPIRE:
		return "lease_expire";
	case RS_OP_MEMBER_SET:
		return "member_set";
	case RS_OP_MEMBER_DEL:
		return "member_del";
	default:
		return "unknown";
	}
}

/* A string of at most max bytes. no_nul: keys and member fields are
 * handed out NUL-terminated (rs_kv.key, rs_member_rec), so an embedded
 * NUL would silently change their meaning; values may hold any byte. */
static bool str_ok(const struct rs_str *s, uint32_t max, bool nonempty,
		   bool no_nul)
{
	if (s->len > max)
		return false;
	if (nonempty && s->len == 0)
		return false;
	if (s->len > 0 && !s->p)
		return false;
	if (no_nul && s->len > 0 && memchr(s->p, '\0', s->len))
		return false;
	return true;
}

/* The validation shared by encoder and decoder. */
static bool cmd_check(const struct rs_cmd *c)
{
	unsigned op = (unsigned)c->op;

	if (c->flags & ~op_flags(op))
		return false;
	switch (c->op) {
	case RS_OP_PUT:
		return str_ok(&c->key, RS_MAX_KEY, true, true) &&
		       str_ok(&c->value, RS_MAX_VALUE, false, false);
	case RS_OP_DELETE:
		return str_ok(&c->key, RS_MAX_KEY, true, true);
	case RS_OP_LEASE_GRANT:
		return c->ttl_ms > 0;
	case RS_OP_LEASE_KEEPALIVE:
	case RS_OP_LEASE_REVOKE:
	case RS_OP_LEASE_EXPIRE:
		return true;
	case RS_OP_MEMBER_SET:
		return c->member_id != 0 &&
		       str_ok(&c->name, RS_MAX_NAME, true, true) &&
		       str_ok(&c->peer, RS_MAX_ADDR, false, true) &&
		       str_ok(&c->api, RS_MAX_ADDR, false, true);
	case RS_OP_MEMBER_DEL:
		return c->member_id != 0;
	default:
		return false;
	}
}

/* Body length of a valid command (fits easily in size_t: the largest body
 * is a PUT with 1 KiB key and 1 MiB value). */
static size_t body_len(const struct rs_cmd *c)
{
	size_t prev = (c->flags & RS_CMD_HAS_PREV) ? 8 : 0;

	switch (c->op) {
	case RS_OP_PUT:
		return 4 + 4 + (size_t)c->key.len + 4 + (size_t)c->value.len +
		       8 + prev;
	case RS_OP_DELETE:
		return 4 + 4 + (size_t)c->key.len + prev;
	case RS_OP_LEASE_GRANT:
	case RS_OP_LEASE_KEEPALIVE:
	case RS_OP_LEASE_REVOKE:
	case RS_OP_MEMBER_DEL:
		return 8;
	case RS_OP_LEASE_EXPIRE:
		return 16;
	case RS_OP_MEMBER_SET:
		return 8 + 4 + (size_t)c->name.len + 4 + (size_t)c->peer.len +
		       4 + (size_t)c->api.len;
	default:
		return 0;
	}
}

static size_t pad8(size_t n)
{
	return (n + 7u) & ~(size_t)7u;
}

size_t rs_cmd_encoded_size(const struct rs_cmd *c)
{
	if (!c || !cmd_check(c))
		return 0;
	return pad8(HDR_LEN + body_len(c));
}

/* ---- writer ---- */

struct wr {
	unsigned char *p;
};

static void put_u8(struct wr *w, unsigned v)
{
	*w->p++ = (unsigned char)(v & 0xffu);
}

static void put_u32(struct wr *w, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		put_u8(w, (unsigned)(v >> (8 * i)));
}

static void put_u64(struct wr *w, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		put_u8(w, (unsigned)(v >> (8 * i)) & 0xffu);
}

static void put_str(struct wr *w, const struct rs_str *s)
{
	put_u32(w, s->len);
	if (s->len) {
		memcpy(w->p, s->p, s->len);
		w->p += s->len;
	}
}

size_t rs_cmd_encode(const struct rs_cmd *c, void *buf, size_t cap)
{
	size_t total = rs_cmd_encoded_size(c);
	if (total == 0 || !buf || cap < total)
		return 0;

	size_t blen = body_len(c);
	struct wr w = {.p = buf};
	put_u8(&w, MAGIC0);
	put_u8(&w, MAGIC1);
	put_u8(&w, RS_CODEC_VERSION);
	put_u8(&w, (unsigned)c->op);
	put_u32(&w, (uint32_t)blen);

	switch (c->op) {
	case RS_OP_PUT:
		put_u32(&w, c->flags);
		put_str(&w, &c->key);
		put_str(&w, &c->value);
		put_u64(&w, c->lease);
		if (c->flags & RS_CMD_HAS_PREV)
			put_u64(&w, c->prev_rev);
		break;
	case RS_OP_DELETE:
		put_u32(&w, c->flags);
		put_str(&w, &c->key);
		if (c->flags & RS_CMD_HAS_PREV)
			put_u64(&w, c->prev_rev);
		break;
	case RS_OP_LEASE_GRANT:
		put_u64(&w, c->ttl_ms);
		break;
	case RS_OP_LEASE_KEEPALIVE:
	case RS_OP_LEASE_REVOKE:
		put_u64(&w, c->lease);
		break;
	case RS_OP_LEASE_EXPIRE:
		put_u64(&w, c->lease);
		put_u64(&w, c->renewals);
		break;
	case RS_OP_MEMBER_SET:
		put_u64(&w, c->member_id);
		put_str(&w, &c->name);
		put_str(&w, &c->peer);
		put_str(&w, &c->api);
		break;
	case RS_OP_MEMBER_DEL:
		put_u64(&w, c->member_id);
		break;
	default:
		return 0; /* unreachable: cmd_check refused it */
	}

	size_t used = (size_t)(w.p - (unsigned char *)buf);
	memset(w.p, 0, total - used);
	return total;
}

/* ---- reader: every get_* checks the bytes left first ---- */

struct rd {
	const unsigned char *p;
	size_t left; /* bytes */
	bool bad;    /* sticky: a read ran past the end */
};

static uint64_t get_uint(struct rd *r, unsigned n)
{
	if (r->bad || r->left < n) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	r->left -= n;
	return v;
}

static uint32_t get_u32(struct rd *r)
{
	return (uint32_t)get_uint(r, 4);
}

static uint64_t get_u64(struct rd *r)
{
	return get_uint(r, 8);
}

static void get_str(struct rd *r, struct rs_str *s)
{
	uint32_t len = get_u32(r);
	if (r->bad || r->left < len) {
		r->bad = true;
		s->p = NULL;
		s->len = 0;
		return;
	}
	s->p = len ? (const char *)r->p : NULL;
	s->len = len;
	r->p += len;
	r->left -= len;
}

int rs_cmd_decode(const void *buf, size_t len, struct rs_cmd *c)
{
	const unsigned char *b = buf;

	if (!c)
		return ERR_CORRUPT;
	memset(c, 0, sizeof(*c));
	if (!b || len < HDR_LEN || len % 8 != 0)
		return ERR_CORRUPT;
	if (b[0] != MAGIC0 || b[1] != MAGIC1)
		return ERR_CORRUPT;
	if (b[2] < 1 || b[2] > RS_CODEC_VERSION)
		return ERR_CORRUPT;
	unsigned op = b[3];
	if (op < RS_OP_PUT || op > RS_OP_MEMBER_DEL)
		return ERR_CORRUPT;
	uint64_t blen = (uint64_t)b[4] | (uint64_t)b[5] << 8 |
			(uint64_t)b[6] << 16 | (uint64_t)b[7] << 24;
	if (blen > len - HDR_LEN)
		return ERR_CORRUPT;
	size_t pad = len - HDR_LEN - (size_t)blen;
	if (pad >= 8)
		return ERR_CORRUPT;
	for (size_t i = len - pad; i < len; i++)
		if (b[i] != 0)
			return ERR_CORRUPT;

	struct rd r = {.p = b + HDR_LEN, .left = (size_t)blen, .bad = false};
	c->op = (enum rs_op)op;
	switch (c->op) {
	case RS_OP_PUT:
		c->flags = get_u32(&r);
		get_str(&r, &c->key);
		get_str(&r, &c->value);
		c->lease = get_u64(&r);
		if (c->flags & RS_CMD_HAS_PREV)
			c->prev_rev = get_u64(&r);
		break;
	case RS_OP_DELETE:
		c->flags = get_u32(&r);
		get_str(&r, &c->key);
		if (c->flags & RS_CMD_HAS_PREV)
			c->prev_rev = get_u64(&r);
		break;
	case RS_OP_LEASE_GRANT:
		c->ttl_ms = get_u64(&r);
		break;
	case RS_OP_LEASE_KEEPALIVE:
	case RS_OP_LEASE_REVOKE:
		c->lease = get_u64(&r);
		break;
	case RS_OP_LEASE_EXPIRE:
		c->lease = get_u64(&r);
		c->renewals = get_u64(&r);
		break;
	case RS_OP_MEMBER_SET:
		c->member_id = get_u64(&r);
		get_str(&r, &c->name);
		get_str(&r, &c->peer);
		get_str(&r, &c->api);
		break;
	case RS_OP_MEMBER_DEL:
		c->member_id = get_u64(&r);
		break;
	default:
		r.bad = true;
		break;
	}
	/* Every body byte belongs to a field: trailing bytes are refused. */
	if (r.bad || r.left != 0 || !cmd_check(c)) {
		memset(c, 0, sizeof(*c));
		return ERR_CORRUPT;
	}
	return 0;
}
