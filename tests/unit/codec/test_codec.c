/* test_codec.c - unit tests of the command codec (rs_cmd_*): round trips,
 * the 8-byte padding property libraft 0.15 needs, every rejection path and
 * a bounded, deterministic mutation loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "rs.h"

static struct rs_str S(const char *s)
{
	struct rs_str r = {.p = s, .len = (uint32_t)strlen(s)};
	return r;
}

static struct rs_str SN(const char *s, size_t n)
{
	struct rs_str r = {.p = s, .len = (uint32_t)n};
	return r;
}

static void assert_str_eq(struct rs_str a, struct rs_str b)
{
	assert_int_equal(a.len, b.len);
	if (a.len)
		assert_memory_equal(a.p, b.p, a.len);
}

static void assert_cmd_eq(const struct rs_cmd *a, const struct rs_cmd *b)
{
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->flags, b->flags);
	assert_str_eq(a->key, b->key);
	assert_str_eq(a->value, b->value);
	assert_true(a->lease == b->lease);
	assert_true(a->prev_rev == b->prev_rev);
	assert_true(a->ttl_ms == b->ttl_ms);
	assert_true(a->renewals == b->renewals);
	assert_true(a->member_id == b->member_id);
	assert_str_eq(a->name, b->name);
	assert_str_eq(a->peer, b->peer);
	assert_str_eq(a->api, b->api);
}

/* Encode c into a fresh heap buffer of exactly the encoded size (so ASan
 * catches any overrun), check the padding, decode, compare, re-encode. */
static unsigned char *roundtrip(const struct rs_cmd *c, size_t *lenp)
{
	size_t n = rs_cmd_encoded_size(c);
	assert_true(n >= 8);
	assert_int_equal(n % 8, 0);
	unsigned char *buf = malloc(n);
	assert_non_null(buf);
	memset(buf, 0xAA, n);
	assert_int_equal(rs_cmd_encode(c, buf, n), n);
	assert_int_equal(rs_cmd_encode(c, buf, n - 1), 0); /* too small */
	assert_int_equal(buf[0], 'P');
	assert_int_equal(buf[1], 'W');
	assert_int_equal(buf[2], RS_CODEC_VERSION);
	assert_int_equal(buf[3], c->op);
	uint32_t blen = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 |
			(uint32_t)buf[6] << 16 | (uint32_t)buf[7] << 24;
	assert_true(8 + (size_t)blen <= n);
	assert_true(n - 8 - blen < 8);
	for (size_t i = 8 + blen; i < n; i++)
		assert_int_equal(buf[i], 0);

	struct rs_cmd d;
	assert_int_equal(rs_cmd_decode(buf, n, &d), 0);
	assert_cmd_eq(c, &d);
	/* canonical: re-encoding gives the same bytes */
	unsigned char *again = malloc(n);
	assert_non_null(again);
	assert_int_equal(rs_cmd_encode(&d, again, n), n);
	assert_memory_equal(buf, again, n);
	free(again);
	*lenp = n;
	return buf;
}

static void check_roundtrip(const struct rs_cmd *c)
{
	size_t n;
	free(roundtrip(c, &n));
}

static void test_roundtrip_every_op(void **state)
{
	(void)state;
	static char bigkey[RS_MAX_KEY];
	memset(bigkey, 'k', sizeof(bigkey));
	char *bigval = malloc(RS_MAX_VALUE);
	assert_non_null(bigval);
	for (size_t i = 0; i < RS_MAX_VALUE; i++)
		bigval[i] = (char)(i * 7); /* includes NUL bytes */
	static char bigname[RS_MAX_NAME];
	memset(bigname, 'n', sizeof(bigname));
	static char bigaddr[RS_MAX_ADDR];
	memset(bigaddr, 'a', sizeof(bigaddr));

	struct rs_cmd c;
	/* PUT: plain, empty value, with lease, with CAS, CAS on absent,
	 * max sizes, max u64 fields, binary value */
	memset(&c, 0, sizeof(c));
	c.op = RS_OP_PUT;
	c.key = S("/service/main/leader");
	c.value = S("node1");
	check_roundtrip(&c);
	c.value = SN(NULL, 0);
	check_roundtrip(&c);
	c.value = S("");
	check_roundtrip(&c);
	c.lease = 42;
	check_roundtrip(&c);
	c.flags = RS_CMD_HAS_PREV;
	c.prev_rev = 0;
	check_roundtrip(&c);
	c.prev_rev = UINT64_MAX;
	c.lease = UINT64_MAX;
	check_roundtrip(&c);
	c.key = SN(bigkey, RS_MAX_KEY);
	c.value = SN(bigval, RS_MAX_VALUE);
	check_roundtrip(&c);
	c.key = S("k");
	c.value = SN("a\0b\xff", 4);
	check_roundtrip(&c);
	c.key = SN("\xff\xfe\x80", 3); /* keys are bytes, not UTF-8 */
	check_roundtrip(&c);

	/* DELETE: one key, prefix, CAS, prefix+CAS (encodable: the FSM
	 * refuses it) */
	memset(&c, 0, sizeof(c));
	c.op = RS_OP_DELETE;
	c.key = S("a");
	check_roundtrip(&c);
	c.flags = RS_CMD_PREFIX;
	check_roundtrip(&c);
	c.flags = RS_CMD_HAS_PREV;
	c.prev_rev = 7;
	check_roundtrip(&c);
	c.flags = RS_CMD_HAS_PREV | RS_CMD_PREFIX;
	check_roundtrip(&c);
	c.key = SN(bigkey, RS_MAX_KEY);
	check_roundtrip(&c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_LEASE_GRANT;
	c.ttl_ms = 1;
	check_roundtrip(&c);
	c.ttl_ms = UINT64_MAX;
	check_roundtrip(&c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_LEASE_KEEPALIVE;
	c.lease = 0x0102030405060708ull;
	check_roundtrip(&c);
	c.op = RS_OP_LEASE_REVOKE;
	check_roundtrip(&c);
	c.lease = 0;
	check_roundtrip(&c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_LEASE_EXPIRE;
	c.lease = 3;
	c.renewals = 0;
	check_roundtrip(&c);
	c.renewals = UINT64_MAX;
	check_roundtrip(&c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_MEMBER_SET;
	c.member_id = 1;
	c.name = S("node1");
	c.peer = S("127.0.0.1:7101");
	c.api = S("http://127.0.0.1:8101");
	check_roundtrip(&c);
	c.api = SN(NULL, 0);
	c.peer = S("");
	check_roundtrip(&c);
	c.member_id = UINT64_MAX;
	c.name = SN(bigname, RS_MAX_NAME);
	c.peer = SN(bigaddr, RS_MAX_ADDR);
	c.api = SN(bigaddr, RS_MAX_ADDR);
	check_roundtrip(&c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_MEMBER_DEL;
	c.member_id = 0x8000000000000001ull;
	check_roundtrip(&c);

	free(bigval);
}

/* Known bytes for one command: the layout is a wire format, pin it. */
static void test_golden_bytes(void **state)
{
	(void)state;
	struct rs_cmd c = {.op = RS_OP_PUT, .key = S("ab"), .value = S("xyz"),
			   .lease = 0x0102, .flags = RS_CMD_HAS_PREV,
			   .prev_rev = 5};
	static const unsigned char want[] = {
		'P', 'W', 1, 1, 33, 0, 0, 0,            /* header */
		2, 0, 0, 0,                             /* flags */
		2, 0, 0, 0, 'a', 'b',                   /* key */
		3, 0, 0, 0, 'x', 'y', 'z',              /* value */
		0x02, 0x01, 0, 0, 0, 0, 0, 0,           /* lease */
		5, 0, 0, 0, 0, 0, 0, 0,                 /* prev_rev */
		0, 0, 0, 0, 0, 0, 0,                    /* padding */
	};
	unsigned char buf[sizeof(want)];
	assert_int_equal(sizeof(want), 48);
	assert_int_equal(rs_cmd_encoded_size(&c), sizeof(want));
	assert_int_equal(rs_cmd_encode(&c, buf, sizeof(buf)), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));

	struct rs_cmd g = {.op = RS_OP_LEASE_GRANT, .ttl_ms = 10000};
	static const unsigned char want_g[] = {
		'P', 'W', 1, 3, 8, 0, 0, 0, 0x10, 0x27, 0, 0, 0, 0, 0, 0,
	};
	assert_int_equal(rs_cmd_encode(&g, buf, sizeof(buf)), 16);
	assert_memory_equal(buf, want_g, 16);
}

/* Every length of key and value from 0 to 64 gives a multiple of 8, for
 * PUT and DELETE and member strings. */
static void test_padding_property(void **state)
{
	(void)state;
	char k[65], v[65];
	memset(k, 'k', sizeof(k));
	memset(v, 'v', sizeof(v));
	for (size_t kl = 0; kl <= 64; kl++) {
		for (size_t vl = 0; vl <= 64; vl++) {
			struct rs_cmd c = {.op = RS_OP_PUT, .key = SN(k, kl),
					   .value = SN(v, vl)};
			for (int cas = 0; cas < 2; cas++) {
				c.flags = cas ? RS_CMD_HAS_PREV : 0;
				size_t n = rs_cmd_encoded_size(&c);
				if (kl == 0) {
					assert_int_equal(n, 0);
					continue;
				}
				assert_int_equal(n % 8, 0);
				check_roundtrip(&c);
			}
		}
		struct rs_cmd d = {.op = RS_OP_DELETE, .key = SN(k, kl)};
		if (kl) {
			check_roundtrip(&d);
			d.flags = RS_CMD_HAS_PREV;
			check_roundtrip(&d);
		}
		if (kl >= 1 && kl <= RS_MAX_NAME) {
			struct rs_cmd m = {.op = RS_OP_MEMBER_SET,
					   .member_id = 9, .name = SN(k, kl),
					   .peer = SN(v, kl / 2),
					   .api = SN(v, 64 - kl)};
			check_roundtrip(&m);
		}
	}
}

static void test_encode_rejects_invalid(void **state)
{
	(void)state;
	unsigned char buf[4096];
	static char big[RS_MAX_VALUE + 1];
	struct rs_cmd c;
#define REJECT(cmd)                                                     \
	do {                                                            \
		assert_int_equal(rs_cmd_encoded_size(&(cmd)), 0);       \
		assert_int_equal(rs_cmd_encode(&(cmd), buf, sizeof(buf)), \
				 0);                                    \
	} while (0)

	memset(&c, 0, sizeof(c));
	REJECT(c); /* op 0 */
	c.op = (enum rs_op)9;
	REJECT(c);
	c.op = (enum rs_op)-1;
	REJECT(c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_PUT;
	REJECT(c); /* empty key */
	c.key = SN(big, RS_MAX_KEY + 1);
	REJECT(c);
	c.key = S("k");
	c.value = SN(big, RS_MAX_VALUE + 1);
	REJECT(c);
	c.value = S("v");
	c.flags = RS_CMD_PREFIX; /* not a PUT flag */
	REJECT(c);
	c.flags = 0x80;
	REJECT(c);
	c.flags = 0;
	c.key = SN("a\0b", 3); /* NUL in key */
	REJECT(c);
	c.key = SN(NULL, 3);
	REJECT(c);
	c.key = S("k");
	c.value = SN(NULL, 1);
	REJECT(c);
	c.value = S("v");
	assert_int_equal(rs_cmd_encode(&c, NULL, 100), 0);
	assert_int_equal(rs_cmd_encoded_size(NULL), 0);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_DELETE;
	REJECT(c);
	c.key = S("k");
	c.flags = 0x04;
	REJECT(c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_LEASE_GRANT;
	REJECT(c); /* ttl 0 */
	c.ttl_ms = 1;
	c.flags = RS_CMD_HAS_PREV;
	REJECT(c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_MEMBER_SET;
	c.name = S("n");
	REJECT(c); /* id 0 */
	c.member_id = 1;
	c.name = S("");
	REJECT(c);
	c.name = SN(big, RS_MAX_NAME + 1);
	REJECT(c);
	c.name = S("n");
	c.peer = SN(big, RS_MAX_ADDR + 1);
	REJECT(c);
	c.peer = S("p");
	c.api = SN(big, RS_MAX_ADDR + 1);
	REJECT(c);
	c.api = SN("x\0", 2);
	REJECT(c);

	memset(&c, 0, sizeof(c));
	c.op = RS_OP_MEMBER_DEL;
	REJECT(c);
#undef REJECT
}

/* Writes a valid header + body by hand, for malformed inputs the encoder
 * cannot produce. */
struct raw {
	unsigned char b[256];
	size_t n;
};

static void raw_u8(struct raw *r, unsigned v)
{
	r->b[r->n++] = (unsigned char)v;
}
static void raw_u32(struct raw *r, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		raw_u8(r, (v >> (8 * i)) & 0xff);
}
static void raw_u64(struct raw *r, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		raw_u8(r, (unsigned)(v >> (8 * i)) & 0xff);
}
static void raw_bytes(struct raw *r, const char *p, size_t n)
{
	memcpy(r->b + r->n, p, n);
	r->n += n;
}
/* Fix the header's body_len to (n - 8) and pad to 8 with zeros. */
static void raw_finish(struct raw *r)
{
	uint32_t blen = (uint32_t)(r->n - 8);
	for (int i = 0; i < 4; i++)
		r->b[4 + i] = (unsigned char)((blen >> (8 * i)) & 0xff);
	while (r->n % 8)
		raw_u8(r, 0);
}
static void raw_hdr(struct raw *r, unsigned op)
{
	r->n = 0;
	raw_u8(r, 'P');
	raw_u8(r, 'W');
	raw_u8(r, RS_CODEC_VERSION);
	raw_u8(r, op);
	raw_u32(r, 0);
}

static int dec(const void *b, size_t n)
{
	/* copy to an exact-size heap buffer so ASan sees any overread */
	unsigned char *p = malloc(n ? n : 1);
	assert_non_null(p);
	if (n)
		memcpy(p, b, n);
	struct rs_cmd c;
	memset(&c, 0x5A, sizeof(c));
	int rc = rs_cmd_decode(p, n, &c);
	if (rc != 0) {
		/* a refused decode leaves a zeroed command */
		struct rs_cmd z;
		memset(&z, 0, sizeof(z));
		assert_memory_equal(&c, &z, sizeof(c));
	}
	free(p);
	return rc;
}

static void test_decode_truncations(void **state)
{
	(void)state;
	struct rs_cmd cmds[] = {
		{.op = RS_OP_PUT, .key = S("some/key"), .value = S("val"),
		 .lease = 1, .flags = RS_CMD_HAS_PREV, .prev_rev = 3},
		{.op = RS_OP_DELETE, .key = S("pre"), .flags = RS_CMD_PREFIX},
		{.op = RS_OP_LEASE_GRANT, .ttl_ms = 5},
		{.op = RS_OP_LEASE_EXPIRE, .lease = 1, .renewals = 2},
		{.op = RS_OP_MEMBER_SET, .member_id = 1, .name = S("n1"),
		 .peer = S("h:1"), .api = S("http://h:2")},
		{.op = RS_OP_MEMBER_DEL, .member_id = 1},
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		size_t n;
		unsigned char *buf = roundtrip(&cmds[i], &n);
		for (size_t l = 0; l < n; l++)
			assert_int_equal(dec(buf, l), ERR_CORRUPT);
		/* truncated body with a header claiming less: body_len cut
		 * by 1..8 while the total stays a multiple of 8 */
		uint32_t blen = (uint32_t)buf[4] | (uint32_t)buf[5] << 8;
		for (uint32_t cut = 1; cut <= 8 && cut <= blen; cut++) {
			unsigned char *m = malloc(n);
			memcpy(m, buf, n);
			uint32_t nb = blen - cut;
			m[4] = (unsigned char)(nb & 0xff);
			m[5] = (unsigned char)(nb >> 8);
			assert_int_equal(dec(m, n), ERR_CORRUPT);
			free(m);
		}
		/* extra zero block: 8+ padding bytes */
		unsigned char *m = calloc(1, n + 8);
		memcpy(m, buf, n);
		assert_int_equal(dec(m, n + 8), ERR_CORRUPT);
		free(m);
		free(buf);
	}
	assert_int_equal(rs_cmd_decode(NULL, 8, &(struct rs_cmd){0}),
			 ERR_CORRUPT);
	assert_int_equal(rs_cmd_decode("PW\1\3\10\0\0\0", 8, NULL),
			 ERR_CORRUPT);
}

static void test_decode_bad_header(void **state)
{
	(void)state;
	struct rs_cmd c = {.op = RS_OP_LEASE_KEEPALIVE, .lease = 7};
	size_t n;
	unsigned char *buf = roundtrip(&c, &n);
	assert_int_equal(n, 16);
	unsigned char m[16];

	memcpy(m, buf, n);
	m[0] = 'X';
	assert_int_equal(dec(m, n), ERR_CORRUPT);
	memcpy(m, buf, n);
	m[1] = 'w';
	assert_int_equal(dec(m, n), ERR_CORRUPT);
	for (unsigned v = 0; v < 256; v++) {
		memcpy(m, buf, n);
		m[2] = (unsigned char)v;
		assert_int_equal(dec(m, n),
				 v >= 1 && v <= RS_CODEC_VERSION ? 0
								 : ERR_CORRUPT);
	}
	for (unsigned op = 0; op < 256; op++) {
		memcpy(m, buf, n);
		m[3] = (unsigned char)op;
		/* 8-byte bodies: keepalive, revoke, grant (ttl 7), member_del
		 * (id 7) all decode; others do not fit */
		int ok = op == RS_OP_LEASE_KEEPALIVE ||
			 op == RS_OP_LEASE_REVOKE ||
			 op == RS_OP_LEASE_GRANT || op == RS_OP_MEMBER_DEL;
		assert_int_equal(dec(m, n), ok ? 0 : ERR_CORRUPT);
	}
	/* body_len larger than the buffer, huge */
	memcpy(m, buf, n);
	m[4] = 9;
	assert_int_equal(dec(m, n), ERR_CORRUPT);
	memcpy(m, buf, n);
	m[4] = m[5] = m[6] = m[7] = 0xff;
	assert_int_equal(dec(m, n), ERR_CORRUPT);
	/* body_len 0: the 8 body bytes become 8 bytes of padding */
	memcpy(m, buf, n);
	m[4] = 0;
	assert_int_equal(dec(m, n), ERR_CORRUPT);
	/* length not a multiple of 8 */
	unsigned char odd[17] = {0};
	memcpy(odd, buf, n);
	assert_int_equal(dec(odd, 17), ERR_CORRUPT);
	free(buf);
}

static void test_decode_padding(void **state)
{
	(void)state;
	struct rs_cmd c = {.op = RS_OP_PUT, .key = S("k"), .value = S("v")};
	size_t n;
	unsigned char *buf = roundtrip(&c, &n);
	uint32_t blen = buf[4];
	assert_true(n - 8 - blen > 0); /* this one has padding */
	for (size_t i = 8 + blen; i < n; i++) {
		unsigned char *m = malloc(n);
		memcpy(m, buf, n);
		m[i] = 1;
		assert_int_equal(dec(m, n), ERR_CORRUPT);
		free(m);
	}
	free(buf);
}

static void test_decode_bad_body(void **state)
{
	(void)state;
	struct raw r;

	/* trailing body bytes after the last field (counted in body_len) */
	raw_hdr(&r, RS_OP_LEASE_GRANT);
	raw_u64(&r, 5);
	raw_u8(&r, 0);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);
	raw_hdr(&r, RS_OP_LEASE_GRANT);
	raw_u64(&r, 5);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), 0);

	/* PUT with prev_rev present but no HAS_PREV: trailing bytes */
	raw_hdr(&r, RS_OP_PUT);
	raw_u32(&r, 0);
	raw_u32(&r, 1);
	raw_bytes(&r, "k", 1);
	raw_u32(&r, 0);
	raw_u64(&r, 0);
	raw_u64(&r, 9);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);

	/* PUT with HAS_PREV but prev_rev missing */
	raw_hdr(&r, RS_OP_PUT);
	raw_u32(&r, RS_CMD_HAS_PREV);
	raw_u32(&r, 1);
	raw_bytes(&r, "k", 1);
	raw_u32(&r, 0);
	raw_u64(&r, 0);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);

	/* unknown flags, every single bit */
	for (int bit = 0; bit < 32; bit++) {
		uint32_t f = 1u << bit;
		raw_hdr(&r, RS_OP_DELETE);
		raw_u32(&r, f);
		raw_u32(&r, 1);
		raw_bytes(&r, "k", 1);
		if (f & RS_CMD_HAS_PREV)
			raw_u64(&r, 1);
		raw_finish(&r);
		int ok = f == RS_CMD_PREFIX || f == RS_CMD_HAS_PREV;
		assert_int_equal(dec(r.b, r.n), ok ? 0 : ERR_CORRUPT);

		raw_hdr(&r, RS_OP_PUT);
		raw_u32(&r, f);
		raw_u32(&r, 1);
		raw_bytes(&r, "k", 1);
		raw_u32(&r, 0);
		raw_u64(&r, 0);
		if (f & RS_CMD_HAS_PREV)
			raw_u64(&r, 1);
		raw_finish(&r);
		assert_int_equal(dec(r.b, r.n),
				 f == RS_CMD_HAS_PREV ? 0 : ERR_CORRUPT);
	}

	/* string length past the body, huge string length */
	raw_hdr(&r, RS_OP_DELETE);
	raw_u32(&r, 0);
	raw_u32(&r, 2);
	raw_bytes(&r, "k", 1);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);
	raw_hdr(&r, RS_OP_DELETE);
	raw_u32(&r, 0);
	raw_u32(&r, 0xffffffffu);
	raw_bytes(&r, "k", 1);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);

	/* empty key */
	raw_hdr(&r, RS_OP_DELETE);
	raw_u32(&r, 0);
	raw_u32(&r, 0);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);

	/* NUL in a key */
	raw_hdr(&r, RS_OP_DELETE);
	raw_u32(&r, 0);
	raw_u32(&r, 2);
	raw_bytes(&r, "a\0", 2);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);

	/* grant with ttl 0, member ops with id 0 */
	raw_hdr(&r, RS_OP_LEASE_GRANT);
	raw_u64(&r, 0);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);
	raw_hdr(&r, RS_OP_MEMBER_DEL);
	raw_u64(&r, 0);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);
	raw_hdr(&r, RS_OP_MEMBER_SET);
	raw_u64(&r, 0);
	raw_u32(&r, 1);
	raw_bytes(&r, "n", 1);
	raw_u32(&r, 0);
	raw_u32(&r, 0);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);

	/* member with empty name, then a valid one */
	raw_hdr(&r, RS_OP_MEMBER_SET);
	raw_u64(&r, 1);
	raw_u32(&r, 0);
	raw_u32(&r, 0);
	raw_u32(&r, 0);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), ERR_CORRUPT);
	raw_hdr(&r, RS_OP_MEMBER_SET);
	raw_u64(&r, 1);
	raw_u32(&r, 1);
	raw_bytes(&r, "n", 1);
	raw_u32(&r, 0);
	raw_u32(&r, 0);
	raw_finish(&r);
	assert_int_equal(dec(r.b, r.n), 0);
}

static void test_decode_oversize_strings(void **state)
{
	(void)state;
	/* exact-limit strings decode, limit+1 is refused */
	struct {
		unsigned op;
		int field; /* 0 key, 1 value, 2 name, 3 peer, 4 api */
		uint32_t max;
	} cases[] = {
		{RS_OP_PUT, 0, RS_MAX_KEY},     {RS_OP_PUT, 1, RS_MAX_VALUE},
		{RS_OP_DELETE, 0, RS_MAX_KEY},  {RS_OP_MEMBER_SET, 2, RS_MAX_NAME},
		{RS_OP_MEMBER_SET, 3, RS_MAX_ADDR},
		{RS_OP_MEMBER_SET, 4, RS_MAX_ADDR},
	};
	char *fill = malloc(RS_MAX_VALUE + 1);
	memset(fill, 'x', RS_MAX_VALUE + 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (uint32_t extra = 0; extra < 2; extra++) {
			uint32_t len = cases[i].max + extra;
			struct rs_cmd c = {.op = (enum rs_op)cases[i].op,
					   .key = S("k"),
					   .member_id = 1,
					   .name = S("n")};
			/* build with a legal length, then patch it */
			struct rs_str legal = SN(fill, len - extra);
			switch (cases[i].field) {
			case 0: c.key = legal; break;
			case 1: c.value = legal; break;
			case 2: c.name = legal; break;
			case 3: c.peer = legal; break;
			default: c.api = legal; break;
			}
			size_t n = rs_cmd_encoded_size(&c);
			assert_true(n > 0);
			unsigned char *buf = malloc(n + 8);
			assert_int_equal(rs_cmd_encode(&c, buf, n), n);
			if (extra == 0) {
				assert_int_equal(dec(buf, n), 0);
				free(buf);
				continue;
			}
			/* rebuild by hand with the oversize string */
			free(buf);
			size_t cap = 64 + (size_t)len + 16;
			unsigned char *b = calloc(1, cap);
			size_t o = 8;
#define W32(v)                                                          \
	do {                                                            \
		uint32_t v_ = (v);                                      \
		for (int j = 0; j < 4; j++)                             \
			b[o++] = (unsigned char)((v_ >> (8 * j)) & 0xff); \
	} while (0)
#define WSTR(p, l)                                                      \
	do {                                                            \
		W32(l);                                                 \
		memcpy(b + o, p, l);                                    \
		o += l;                                                 \
	} while (0)
			if (cases[i].op == RS_OP_MEMBER_SET) {
				b[o] = 1;
				o += 8;
				WSTR(fill, cases[i].field == 2 ? len : 1);
				WSTR(fill, cases[i].field == 3 ? len : 0);
				WSTR(fill, cases[i].field == 4 ? len : 0);
			} else {
				W32(0);
				WSTR(fill, cases[i].field == 0 ? len : 1);
				if (cases[i].op == RS_OP_PUT) {
					WSTR(fill,
					     cases[i].field == 1 ? len : 0);
					o += 8;
				}
			}
			b[0] = 'P';
			b[1] = 'W';
			b[2] = RS_CODEC_VERSION;
			b[3] = (unsigned char)cases[i].op;
			uint32_t blen = (uint32_t)(o - 8);
			for (int j = 0; j < 4; j++)
				b[4 + j] = (unsigned char)((blen >> (8 * j)) &
							   0xff);
			while (o % 8)
				o++;
			assert_true(o <= cap);
			assert_int_equal(dec(b, o), ERR_CORRUPT);
			free(b);
#undef WSTR
#undef W32
		}
	}
	free(fill);
}

/* Deterministic xorshift; fixed seed so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static void test_mutation_loop(void **state)
{
	(void)state;
	struct rs_cmd seeds[] = {
		{.op = RS_OP_PUT, .key = S("/svc/main/leader"),
		 .value = S("node1"), .lease = 3},
		{.op = RS_OP_PUT, .key = S("k"), .value = S(""),
		 .flags = RS_CMD_HAS_PREV, .prev_rev = 0},
		{.op = RS_OP_DELETE, .key = S("/svc/"),
		 .flags = RS_CMD_PREFIX},
		{.op = RS_OP_LEASE_GRANT, .ttl_ms = 30000},
		{.op = RS_OP_LEASE_KEEPALIVE, .lease = 1},
		{.op = RS_OP_LEASE_REVOKE, .lease = 1},
		{.op = RS_OP_LEASE_EXPIRE, .lease = 1, .renewals = 4},
		{.op = RS_OP_MEMBER_SET, .member_id = 77, .name = S("node2"),
		 .peer = S("10.0.0.2:7101"), .api = S("http://10.0.0.2:8101")},
		{.op = RS_OP_MEMBER_DEL, .member_id = 77},
	};
	const size_t nseeds = sizeof(seeds) / sizeof(seeds[0]);
	unsigned char *enc[sizeof(seeds) / sizeof(seeds[0])];
	size_t enclen[sizeof(seeds) / sizeof(seeds[0])];
	for (size_t i = 0; i < nseeds; i++)
		enc[i] = roundtrip(&seeds[i], &enclen[i]);

	unsigned long decoded = 0;
	for (int it = 0; it < 200000; it++) {
		size_t s = (size_t)(rnd() % nseeds);
		size_t n = enclen[s];
		/* length: same, shorter or longer by up to 16 */
		uint64_t lm = rnd() % 4;
		if (lm == 1)
			n = (size_t)(rnd() % (n + 1));
		else if (lm == 2)
			n += (size_t)(rnd() % 17);
		unsigned char *m = malloc(n ? n : 1);
		assert_non_null(m);
		for (size_t i = 0; i < n; i++)
			m[i] = i < enclen[s] ? enc[s][i] : 0;
		int nflips = (int)(rnd() % 4);
		for (int f = 0; f < nflips && n > 0; f++) {
			size_t pos = (size_t)(rnd() % n);
			switch (rnd() % 4) {
			case 0:
				m[pos] ^= (unsigned char)(1u << (rnd() % 8));
				break;
			case 1:
				m[pos] = (unsigned char)rnd();
				break;
			case 2:
				m[pos] = 0;
				break;
			default:
				m[pos] = 0xff;
				break;
			}
		}
		struct rs_cmd c;
		if (rs_cmd_decode(m, n, &c) == 0) {
			decoded++;
			/* whatever decodes is valid and canonical */
			size_t en = rs_cmd_encoded_size(&c);
			assert_int_equal(en, n);
			unsigned char *again = malloc(en);
			assert_int_equal(rs_cmd_encode(&c, again, en), en);
			assert_memory_equal(again, m, n);
			free(again);
		}
		free(m);
	}
	/* the loop must exercise the success path too */
	assert_true(decoded > 1000);
	for (size_t i = 0; i < nseeds; i++)
		free(enc[i]);
}

static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(rs_op_name(RS_OP_PUT), "put");
	assert_string_equal(rs_op_name(RS_OP_DELETE), "delete");
	assert_string_equal(rs_op_name(RS_OP_LEASE_GRANT), "lease_grant");
	assert_string_equal(rs_op_name(RS_OP_LEASE_KEEPALIVE),
			    "lease_keepalive");
	assert_string_equal(rs_op_name(RS_OP_LEASE_REVOKE), "lease_revoke");
	assert_string_equal(rs_op_name(RS_OP_LEASE_EXPIRE), "lease_expire");
	assert_string_equal(rs_op_name(RS_OP_MEMBER_SET), "member_set");
	assert_string_equal(rs_op_name(RS_OP_MEMBER_DEL), "member_del");
	assert_string_equal(rs_op_name(0), "unknown");
	assert_string_equal(rs_op_name(9), "unknown");
	assert_string_equal(rs_op_name(-3), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_op),
		cmocka_unit_test(test_golden_bytes),
		cmocka_unit_test(test_padding_property),
		cmocka_unit_test(test_encode_rejects_invalid),
		cmocka_unit_test(test_decode_truncations),
		cmocka_unit_test(test_decode_bad_header),
		cmocka_unit_test(test_decode_padding),
		cmocka_unit_test(test_decode_bad_body),
		cmocka_unit_test(test_decode_oversize_strings),
		cmocka_unit_test(test_mutation_loop),
		cmocka_unit_test(test_op_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
