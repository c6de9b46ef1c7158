/* fuzz_codec.c - libFuzzer target for the command decoder and the state
 * machine behind it.
 *
 * The input is a sequence of encoded commands (each one's length is taken
 * from its header, padded to 8; the remainder is tried as a last command).
 * Every command that decodes must re-encode to the same bytes (the codec is
 * canonical) and is then applied to a long-lived FSM, whose revision and
 * applied index must behave. Now and then the FSM is snapshotted and
 * restored into a second one, which must hash the same.
 *
 * Build: meson setup -Dfuzz=true with CC=clang; run
 *   fuzz_codec tests/fuzz/corpus/codec
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "rs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer gives no context pointer: the FSM lives across inputs (so
 * sequences build state) and is renewed regularly to bound memory. */
static struct rs_fsm *fsm;
static uint64_t next_index;
static unsigned long inputs;

static void check(int cond)
{
	if (!cond)
		abort();
}

static void fsm_renew(void)
{
	rs_fsm_free(fsm);
	fsm = NULL;
	check(rs_fsm_new(&fsm) == 0);
	next_index = 1;
}

static void apply_one(const uint8_t *p, size_t len)
{
	struct rs_cmd c;
	if (rs_cmd_decode(p, len, &c) != 0)
		return;
	size_t n = rs_cmd_encoded_size(&c);
	check(n == len && n % 8 == 0);
	uint8_t *again = malloc(n);
	check(again != NULL);
	check(rs_cmd_encode(&c, again, n) == n);
	check(memcmp(again, p, n) == 0);
	free(again);

	uint64_t rev0 = rs_fsm_revision(fsm);
	struct rs_result res;
	check(rs_fsm_apply(fsm, &c, next_index, &res) == 0);
	check(rs_fsm_applied_index(fsm) == next_index);
	next_index++;
	check(res.revision == rs_fsm_revision(fsm));
	/* at most one revision per command, and only when keys changed */
	check(res.revision == rev0 || res.revision == rev0 + 1);
	if (res.code != 0)
		check(res.revision == rev0);
}

static void snapshot_roundtrip(void)
{
	void *img;
	size_t len;
	check(rs_fsm_snapshot(fsm, malloc, &img, &len) == 0);
	struct rs_fsm *g;
	check(rs_fsm_new(&g) == 0);
	check(rs_fsm_restore(g, img, len) == 0);
	check(rs_fsm_hash(g) == rs_fsm_hash(fsm));
	check(rs_fsm_revision(g) == rs_fsm_revision(fsm));
	free(img);
	rs_fsm_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fsm || inputs % 10000 == 0)
		fsm_renew();
	inputs++;

	/* the whole input as one command */
	apply_one(data, size);

	/* and as a sequence */
	size_t off = 0;
	while (size - off >= 8) {
		const uint8_t *p = data + off;
		uint64_t blen = (uint64_t)p[4] | (uint64_t)p[5] << 8 |
				(uint64_t)p[6] << 16 | (uint64_t)p[7] << 24;
		uint64_t n = (8 + blen + 7) & ~(uint64_t)7;
		if (n > size - off)
			n = size - off;
		apply_one(p, (size_t)n);
		off += (size_t)n;
	}

	/* reads must not fail whatever the state */
	struct rs_kv *kvs;
	size_t n;
	check(rs_fsm_range(fsm, "", 0, true, 16, &kvs, &n, NULL) == 0);
	for (size_t i = 0; i < n; i++) {
		struct rs_kv *one;
		size_t m;
		check(rs_fsm_range(fsm, kvs[i].key, strlen(kvs[i].key), false,
				   0, &one, &m, NULL) == 0);
		check(m == 1 && one[0].mod_rev == kvs[i].mod_rev);
		rs_kvs_free(one, m);
	}
	rs_kvs_free(kvs, n);
	if (inputs % 256 == 0)
		snapshot_roundtrip();
	return 0;
}
