#!/usr/bin/env bash
# The seed's HAProxy configuration works unchanged against pgwarden's API:
# `option httpchk` (HAProxy's default check, OPTIONS /) with
# `http-check expect status 200` on the API ports routes to the primary;
# `option httpchk GET /primary` does the same and `GET /replica` routes to a
# replica. Through the rw ports `SELECT pg_is_in_recovery()` is false,
# through the ro port true. (The check interval is shortened from the
# seed's 3 s so the test is quick; the checks themselves are the seed's.)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
command -v haproxy >/dev/null || skip "haproxy not installed (deploy/install-deps installs it)"
pg_init 28200
pg_ports_free
pg_start_all

SEED_PORT=$((PG_BASE + 31))   # the seed's section: bare `option httpchk`
RW_PORT=$((PG_BASE + 32))     # option httpchk GET /primary
RO_PORT=$((PG_BASE + 33))     # option httpchk GET /replica
servers() {
	local i
	for i in 1 2 3; do
		echo "    server node${i} 127.0.0.1:$(pg_port "$i") maxconn 100 check port $(api_port "$i")"
	done
}
cat >"$PG_DIR/haproxy.cfg" <<CFG
global
    maxconn 100

defaults
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 4s
    timeout server 30m
    timeout check 5s

listen seed_cluster
    bind 127.0.0.1:$SEED_PORT
    option httpchk
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1 on-marked-down shutdown-sessions
$(servers)

listen primary
    bind 127.0.0.1:$RW_PORT
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1 on-marked-down shutdown-sessions
$(servers)

listen replicas
    bind 127.0.0.1:$RO_PORT
    balance roundrobin
    option httpchk GET /replica
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1 on-marked-down shutdown-sessions
$(servers)
CFG
haproxy -c -q -f "$PG_DIR/haproxy.cfg" || fail "haproxy rejects the config"
haproxy -db -f "$PG_DIR/haproxy.cfg" >"$PG_DIR/haproxy.log" 2>&1 </dev/null &
PG_EXTRA_PIDS+=("$!")
log "haproxy pid $!"

pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary in list"
log "primary is node$P"

via() { # PORT SQL
	psql -X -q -At -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$1 user=postgres dbname=postgres connect_timeout=3" -c "$2"
}
via_eq() { [[ $(via "$1" "$2" 2>/dev/null) == "$3" ]]; }

# haproxy marks servers up after its first successful check
for port in $SEED_PORT $RW_PORT; do
	wait_until -t 15 via_eq "$port" "SELECT pg_is_in_recovery()" f ||
		fail "port $port (rw) does not reach a writable PostgreSQL: $(via "$port" "SELECT pg_is_in_recovery()" 2>&1)"
	assert_eq "$(pg_port "$P")" "$(via "$port" "SHOW port")" "PostgreSQL port reached through haproxy port $port"
done
wait_until -t 15 via_eq "$RO_PORT" "SELECT pg_is_in_recovery()" t ||
	fail "port $RO_PORT (ro) does not reach a replica: $(via "$RO_PORT" "SELECT pg_is_in_recovery()" 2>&1)"
# several connections: every one lands on the primary (rw) or a replica (ro)
declare -A seen=()
for n in $(seq 1 8); do
	assert_eq f "$(via "$SEED_PORT" "SELECT pg_is_in_recovery()")" "seed port, connection $n"
	assert_eq f "$(via "$RW_PORT" "SELECT pg_is_in_recovery()")" "rw port, connection $n"
	r=$(via "$RO_PORT" "SELECT pg_is_in_recovery() || ' ' || current_setting('port')")
	[[ $r == "true "* ]] || fail "ro port, connection $n: $r"
	[[ ${r#true } != "$(pg_port "$P")" ]] || fail "ro port reached the primary"
	seen[${r#true }]=1
done
assert_eq 2 "${#seen[@]}" "replicas reached through the ro port (round robin)"
# a write through the rw port is read through the ro port
via "$RW_PORT" "CREATE TABLE t_ha AS SELECT 42 AS v"
wait_until -t 15 via_eq "$RO_PORT" "SELECT v FROM t_ha" 42 || fail "row written through rw not read through ro"
