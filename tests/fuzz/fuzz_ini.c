/* fuzz_ini.c - libFuzzer target for the ini loader (src/config/cfg.c).
 *
 * Each input is a whole node ini file. It is written to a memfd and loaded
 * through /proc/self/fd/N with cfg_load(), which must either succeed (then
 * the result is checked against the rules of src/config/cfg.h and freed)
 * or fail with ERR_INVAL or ERR_NOMEM, a message "PATH:..." and the struct
 * left zeroed (cfg.h). Every tenth input is loaded once more with the
 * allocator failing after a number of allocations taken from the input:
 * the load must then fail with ERR_NOMEM or behave as before, never leak
 * (LeakSanitizer) or crash.
 *
 * An input that starts with '{' is a stored cluster config instead (the
 * JSON that cfg_ha_from_json() reads from the store, written by another
 * node): parsed against a fixed node configuration, it must fail with
 * ERR_INVAL, "cluster config: ..." and the output untouched, or give values
 * within the ini's ranges and timing rules that cfg_ha_to_json() writes
 * back to the same values (corpus: tests/fuzz/corpus/ini/ha_*.json).
 *
 * The loader reads the files the ini names (token_file, password files)
 * and checks scripts (post_bootstrap, callbacks). LLVMFuzzerInitialize
 * creates them under FUZZ_DIR, and the seed corpus (tests/fuzz/corpus/ini:
 * deploy/examples and docs/configuration.md's snippets) names those paths:
 *   FUZZ_DIR/token, FUZZ_DIR/pw (secrets), FUZZ_DIR/cb.sh (executable).
 *
 * Build: meson setup -Dfuzz=true with CC=clang; run
 *   fuzz_ini tests/fuzz/corpus/ini
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cfg.h"
#include "err.h"
#include "log.h"
#include "mem.h"

#define FUZZ_DIR "/tmp/pgw-fuzz-ini"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];
static unsigned long inputs;

/* The node configuration stored cluster configs are read against. */
static struct cfg base;
static const char base_ini[] =
	"[cluster]\nname = main\n[node]\nname = node1\n"
	"data_dir = /var/lib/pgwarden\n[raft]\nlisten = 127.0.0.1:7101\n"
	"peers = node1=127.0.0.1:7101\n[api]\nlisten = 127.0.0.1:8101\n"
	"token_file = " FUZZ_DIR "/token\n[postgresql]\n"
	"data_dir = /var/lib/postgresql/15/main\n[watchdog]\nmode = off\n";

static void check(int cond)
{
	if (!cond)
		abort();
}

static void put_file(const char *name, const char *text, mode_t mode)
{
	char p[128];
	snprintf(p, sizeof p, "%s/%s", FUZZ_DIR, name);
	char tmp[160];
	snprintf(tmp, sizeof tmp, "%s.%ld", p, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	check(fd >= 0);
	size_t n = strlen(text);
	check(write(fd, text, n) == (ssize_t)n);
	check(fchmod(fd, mode) == 0);
	close(fd);
	check(rename(tmp, p) == 0); /* atomic: parallel runs share the dir */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_ERROR);
	check(mkdir(FUZZ_DIR, 0755) == 0 || errno == EEXIST);
	put_file("token", "fuzz-token\n", 0600);
	put_file("pw", "fuzz-password\n", 0600);
	put_file("cb.sh", "#!/bin/sh\nexit 0\n", 0755);
	memfd = memfd_create("fuzz_ini", MFD_CLOEXEC);
	check(memfd >= 0);
	snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
	size_t n = sizeof base_ini - 1;
	check(pwrite(memfd, base_ini, n, 0) == (ssize_t)n);
	char err[512];
	check(cfg_load(path, &base, err, sizeof err) == 0);
	return 0;
}

/* A stored cluster config (cfg_ha_from_json). */
static void one_json(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	check(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	struct cfg_ha out, sentinel;
	char err[512];
	memset(&sentinel, 0x5A, sizeof sentinel);
	out = sentinel;
	int rc = cfg_ha_from_json(&base, s, &out, err, sizeof err);
	free(s);
	if (rc != 0) {
		check(rc == ERR_INVAL || rc == ERR_NOMEM);
		check(memcmp(&out, &sentinel, sizeof out) == 0);
		check(strncmp(err, "cluster config: ", 16) == 0 ||
		      rc == ERR_NOMEM);
		return;
	}
	check(out.ttl_ms >= 500 && out.ttl_ms <= 600000);
	check(out.loop_wait_ms >= 10 && out.loop_wait_ms <= out.ttl_ms / 3);
	check(out.safety_margin_ms <= 60000);
	check(out.synchronous_node_count >= 1 &&
	      out.synchronous_node_count <= 16);
	check(out.synchronous_mode == CFG_SYNC_OFF ||
	      out.synchronous_mode == CFG_SYNC_ON ||
	      out.synchronous_mode == CFG_SYNC_STRICT);
	check(out.crash_restart_timeout_ms >= 100 &&
	      out.crash_restart_timeout_ms <= 3600000);
	/* written back, it reads as the same values */
	char js[1024], diff[256];
	check(cfg_ha_to_json(&out, js, sizeof js) > 0);
	struct cfg_ha again = sentinel;
	check(cfg_ha_from_json(&base, js, &again, err, sizeof err) == 0);
	cfg_ha_diff(&out, &again, diff, sizeof diff);
	check(diff[0] == '\0');
}

static bool zeroed(const struct cfg *c)
{
	static const struct cfg zero;
	return memcmp(c, &zero, sizeof zero) == 0;
}

static bool valid_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
			    s[i]))
			return false;
	return true;
}

/* What cfg.h promises about a loaded configuration. */
static void check_loaded(const struct cfg *c)
{
	check(valid_name(c->cluster_name) && valid_name(c->node_name));
	check(c->data_dir && c->data_dir[0] == '/');
	check(c->raft_listen && c->raft_advertise && c->api_listen &&
	      c->api_url && c->token && c->token[0]);
	check(cfg_split_hostport(c->raft_listen, NULL, 0, NULL) == 0);
	check(cfg_split_hostport(c->raft_advertise, NULL, 0, NULL) == 0);
	check(cfg_split_hostport(c->api_listen, NULL, 0, NULL) == 0);
	check(c->raft_advertise[0] != '['); /* no IPv6 in [raft] */
	check(c->npeers > 0);
	bool self = false;
	for (size_t i = 0; i < c->npeers; i++) {
		check(valid_name(c->peers[i].name));
		check(cfg_split_hostport(c->peers[i].address, NULL, 0, NULL) ==
		      0);
		check(c->peers[i].address[0] != '[');
		check(c->peers[i].addr == NULL); /* cfg_load never resolves */
		check(c->peers[i].line > 0);
		if (strcmp(c->peers[i].name, c->node_name) == 0)
			self = true;
		for (size_t j = 0; j < i; j++) {
			check(strcmp(c->peers[i].name, c->peers[j].name) != 0);
			check(!cfg_pg_name_clash(c->peers[i].name,
						 c->peers[j].name));
		}
	}
	check(self || c->join);
	check(c->heartbeat_ms <= c->election_timeout_ms / 3);
	const struct cfg_pg *pg = &c->pg;
	check(pg->bin_dir && pg->listen && pg->connect_address &&
	      pg->socket_dir && pg->superuser && pg->replication_user &&
	      pg->wd_device);
	check(strlen(pg->socket_dir) <= 90);
	check(pg->failover_priority >= 0 && pg->failover_priority <= 1000000);
	check(pg->synchronous_node_count >= 1 &&
	      pg->synchronous_node_count <= 16);
	if (pg->enabled)
		check(pg->data_dir && pg->data_dir[0] == '/');
	for (size_t i = 0; i < pg->nusers; i++)
		check(valid_name(pg->users[i].name) && pg->users[i].options);
	for (size_t i = 0; i < pg->nparams; i++)
		check(pg->params[i].name && pg->params[i].value);
	for (size_t i = 0; i < pg->ninitdb; i++)
		check(strncmp(pg->initdb[i], "--", 2) == 0);
	if (pg->enabled)
		check(pg->loop_wait_ms <= pg->ttl_ms / 3);
}

static int load(struct cfg *c, char *err, size_t errlen)
{
	memset(c, 0x5A, sizeof *c); /* cfg_load must zero it first */
	int rc = cfg_load(path, c, err, errlen);
	if (rc == 0) {
		check(strcmp(c->path, path) == 0);
		return 0;
	}
	check(rc == ERR_INVAL || rc == ERR_NOMEM);
	check(zeroed(c));
	/* "PATH:LINE: reason" or "PATH: reason" */
	size_t pl = strlen(path);
	check(strncmp(err, path, pl) == 0 && err[pl] == ':');
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0; /* the loader's limits are per line; keep runs fast */
	if (size > 0 && data[0] == '{') {
		one_json(data, size);
		return 0;
	}
	check(ftruncate(memfd, 0) == 0);
	check(pwrite(memfd, data, size, 0) == (ssize_t)size);

	struct cfg c;
	char err[1024];
	int rc = load(&c, err, sizeof err);
	if (rc == 0) {
		check_loaded(&c);
		cfg_free(&c);
		check(zeroed(&c));
		cfg_free(&c); /* twice: a no-op */
	}

	/* the same input with allocation failures */
	if (++inputs % 10 == 0) {
		long n = size ? (long)(data[size / 2] % 64) : 0;
		mem_fail_after(n);
		struct cfg d;
		int rd = load(&d, err, sizeof err);
		mem_fail_after(-1);
		check(rd == rc || rd == ERR_NOMEM);
		if (rd == 0)
			cfg_free(&d);
	}
	return 0;
}
