#!/usr/bin/env bash
# A bootstrap that fails after PostgreSQL started (post_bootstrap exits 1
# on its first run only) leaves no writable PostgreSQL behind (issue 3,
# item 3: "a node that is not the leader never runs writable"): once
# another node has bootstrapped the cluster, the only PostgreSQL that
# takes writes is the leader's, and the multi-host read-write string
# reaches it, for several seconds in a row.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
pg_init 28900
cat >"$PG_DIR/post_bootstrap.sh" <<'SH'
#!/bin/sh
# fails the first time it runs, succeeds afterwards
m="$(dirname "$0")/post_bootstrap.ran"
if [ ! -e "$m" ]; then
	touch "$m"
	echo "post_bootstrap: failing on purpose (first run)" >&2
	exit 1
fi
exit 0
SH
chmod 0755 "$PG_DIR/post_bootstrap.sh"
chown "$PG_USER:$PG_USER" "$PG_DIR/post_bootstrap.sh"
for i in 1 2 3; do
	pg_write_ini "$i"
	sed -i "s|^\[bootstrap\]\$|[bootstrap]\npost_bootstrap = $PG_DIR/post_bootstrap.sh|" "$(ini "$i")"
	grep -q '^post_bootstrap = ' "$(ini "$i")" || fail "post_bootstrap not in $(ini "$i")"
done
pg_ports_free
pg_start_all

# the cluster gets initialised (by a node whose post_bootstrap succeeded)
initialized() { [[ -n $(pgw --timeout 3 get "/service/$PG_CLUSTER/initialize" --print-value-only) ]]; }
wait_until -t 60 initialized || {
	pgw list >&2 || true
	fail "cluster not initialised within 60 s"
}
[[ -e $PG_DIR/post_bootstrap.ran ]] || fail "post_bootstrap never ran"
has_leader() { [[ -n $(leader_key) ]]; }
wait_until -t 30 has_leader || fail "no leader key"
sysid=$(pgw get "/service/$PG_CLUSTER/initialize" --print-value-only)
log "initialised, system id $sysid, leader $(leader_key)"

# writable: node I runs a PostgreSQL that is not in recovery
writable() { [[ $(sql_at "$1" "SELECT pg_is_in_recovery()" 2>/dev/null) == f ]]; }
# for 8 s: only the leader's PostgreSQL is writable, the rw string gets there
deadline=$((SECONDS + 8))
n=0
while ((SECONDS < deadline)); do
	L=$(leader_key) || fail "leader key unreadable"
	for i in 1 2 3; do
		if [[ node$i != "$L" ]] && writable "$i"; then
			pgw list >&2 || true
			fail "node$i runs a writable PostgreSQL (system id $(pg_sysid "$i")) but the leader key names '$L'"
		fi
	done
	if [[ -n $L ]]; then
		port=$(sql_rw "SHOW port" 2>/dev/null) || port=none
		if [[ $port != none && $port != "$(pg_port "${L#node}")" ]]; then
			fail "the read-write string reached port $port, the leader $L listens on $(pg_port "${L#node}")"
		fi
	fi
	n=$((n + 1))
	sleep 0.3
done
log "$n checks: only the leader's PostgreSQL was writable"
pgw list >&2 || true
