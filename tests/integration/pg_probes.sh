#!/usr/bin/env bash
# Health probes on each node of a healthy cluster (issue 3, item 5):
# /primary (and /master, /leader, /read-write; GET, HEAD, OPTIONS) 200 only
# on the primary; /replica 200 only on streaming replicas, with ?lag=16MB
# 200 and ?lag=bad 400 (on every node); /read-only, /health, /readiness 200 everywhere;
# GET / (and OPTIONS /, HAProxy's bare `option httpchk`) 200 only on the
# primary, with a JSON body naming role and state; a replica with the tag
# noloadbalance=true answers 503 to /replica. GET /internal/lsn needs the
# token and answers a replica's current WAL position.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
pg_init 28100
pg_ports_free
pg_start_all
pg_wait_healthy 60
P=$(primary_idx) || fail "no single primary in list"
log "primary is node$P"

expect_code() { # CODE METHOD NODE PATH
	local got
	got=$(http_code "$2" "$(api_url "$3")$4")
	[[ $got == "$1" ]] || fail "$2 $4 on node$3 ($([[ $3 == "$P" ]] && echo primary || echo replica)): expected $1, got $got"
}

check_all() {
	local i want
	for i in 1 2 3; do
		if ((i == P)); then want=200; else want=503; fi
		for path in /primary /master /leader /read-write; do
			for m in GET HEAD OPTIONS; do expect_code "$want" "$m" "$i" "$path"; done
		done
		expect_code "$want" GET "$i" /
		expect_code "$want" OPTIONS "$i" /
		expect_code "$want" HEAD "$i" /
		if ((i == P)); then want=503; else want=${REPLICA_WANT[$i]:-200}; fi
		for m in GET HEAD OPTIONS; do expect_code "$want" "$m" "$i" /replica; done
		expect_code "$want" GET "$i" "/replica?lag=16MB"
		expect_code "$want" GET "$i" "/replica?lag=16777216"
		for path in /read-only /health /readiness; do
			for m in GET HEAD OPTIONS; do expect_code 200 "$m" "$i" "$path"; done
		done
		# the body of GET / names this node, its role and its state
		body=$(curl -s --max-time 5 "$(api_url "$i")/")
		assert_eq "node$i" "$(jq -r .name <<<"$body")" "GET / name on node$i"
		if ((i == P)); then
			assert_eq primary/running "$(jq -r '"\(.role)/\(.state)"' <<<"$body")" "GET / role/state on node$i"
		else
			assert_eq replica/streaming "$(jq -r '"\(.role)/\(.state)"' <<<"$body")" "GET / role/state on node$i"
		fi
	done
}

declare -A REPLICA_WANT=()
check_all
# a bad lag bound is the client's error, whichever node answers
for i in 1 2 3; do
	expect_code 400 GET "$i" "/replica?lag=bad"
	expect_code 400 GET "$i" "/replica?lag=-1"
	expect_code 400 GET "$i" "/replica?lag=17179869184GB"
done
# not a probe: an unknown path is 404, a write method 405
expect_code 404 GET "$P" /no-such-probe
expect_code 405 POST "$P" /primary

# GET /internal/lsn (what the controller asks each replica when the lease
# is gone): the token is required; the answer is a fresh probe, so on a
# quiet cluster a replica's lsn_received is what PostgreSQL says now
expect_code 401 GET "$P" /internal/lsn
tok=$(<"$PG_DIR/token")
sql_rw "CREATE TABLE t_lsn (id int); INSERT INTO t_lsn VALUES (1)"
for i in 1 2 3; do
	if ((i == P)); then
		body=$(curl -s --max-time 5 -H "Authorization: Bearer $tok" "$(api_url "$i")/internal/lsn")
		assert_eq "false node$i" "$(jq -r '"\(.in_recovery) \(.name)"' <<<"$body")" "/internal/lsn on the primary"
		continue
	fi
	want=$(sql_at "$P" "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
	wait_until -t 10 sql_eq "$i" "SELECT pg_last_wal_receive_lsn() - '0/0'::pg_lsn" "$want" ||
		fail "node$i did not receive up to $want within 10 s"
	body=$(curl -s --max-time 5 -H "Authorization: Bearer $tok" "$(api_url "$i")/internal/lsn")
	assert_eq "true node$i $want" "$(jq -r '"\(.in_recovery) \(.name) \(.lsn_received)"' <<<"$body")" "/internal/lsn on replica node$i"
	[[ $(jq -r .lsn_replayed <<<"$body") -le $want ]] || fail "node$i: lsn_replayed beyond lsn_received: $body"
done

# a replica tagged noloadbalance=true: restart it with the tag
R=
for i in 3 2 1; do ((i == P)) || { R=$i; break; }; done
log "restarting replica node$R with [tags] noloadbalance = true"
node_stop "$R"
PG_INI_EXTRA[$R]=$'[tags]\nnoloadbalance = true'
pg_write_ini "$R"
node_start "$R"
# the record written by the restarted node (the one from before its stop
# may still be listed until its lease ends)
tagged() { [[ $(member_field tags.noloadbalance "node$R") == true ]]; }
wait_until -t 30 tagged || fail "noloadbalance tag of node$R not in list within 30 s"
streaming_again() { [[ $(http_code GET "$(api_url "$R")/read-only") == 200 && $(member_field state "node$R") == streaming ]]; }
wait_until -t 30 streaming_again || fail "node$R not streaming within 30 s of its restart"
pg_wait_healthy 60
assert_eq "$P" "$(primary_idx)" "primary after restarting a replica"
REPLICA_WANT[$R]=503
check_all
expect_code 503 GET "$R" "/replica?lag=16MB"
