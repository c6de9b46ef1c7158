#!/usr/bin/env bash
# From three empty directories to one PostgreSQL primary and two streaming
# replicas: `pgwarden list` shows primary/running and replica/streaming;
# /service/<cluster>/initialize holds the primary's system identifier; a
# row written through the read-write multi-host string is read on both
# replicas; each replica streams through its own active slot on the primary.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pgcluster.sh"
pg_init 28000
pg_ports_free
pg_start_all
pg_wait_healthy 60

P=$(primary_idx) || fail "no single primary in list"
log "primary is node$P"
js=$(list_json)
assert_eq 3 "$(jq length <<<"$js")" "members in list"
for i in 1 2 3; do
	m=$(jq -c --arg n "node$i" '.[] | select(.name == $n)' <<<"$js")
	[[ -n $m ]] || fail "node$i missing from list: $js"
	if ((i == P)); then
		assert_eq primary/running "$(jq -r '"\(.role)/\(.state)"' <<<"$m")" "node$i role/state"
	else
		assert_eq replica/streaming "$(jq -r '"\(.role)/\(.state)"' <<<"$m")" "node$i role/state"
	fi
	assert_eq "$(pg_port "$i")" "$(jq -r .port <<<"$m")" "node$i port in list"
	assert_eq 127.0.0.1 "$(jq -r .host <<<"$m")" "node$i host in list"
	assert_eq "$(api_url "$i")" "$(jq -r .api_url <<<"$m")" "node$i api_url in list"
	assert_eq 1 "$(jq -r .timeline <<<"$m")" "node$i timeline in list"
done

# the initialize key holds the primary's system identifier
init=$(pgw get "/service/$PG_CLUSTER/initialize" --print-value-only)
sysid=$(pg_sysid "$P")
[[ $sysid =~ ^[0-9]+$ ]] || fail "system identifier of node$P: '$sysid'"
assert_eq "$sysid" "$init" "/service/$PG_CLUSTER/initialize vs the primary's system_identifier"
for i in 1 2 3; do
	assert_eq "$sysid" "$(pg_sysid "$i")" "system identifier of node$i"
done
# the writable one is the primary; the replicas are in recovery
assert_eq f "$(sql_at "$P" "SELECT pg_is_in_recovery()")" "node$P in recovery"
for i in 1 2 3; do
	((i == P)) && continue
	assert_eq t "$(sql_at "$i" "SELECT pg_is_in_recovery()")" "node$i in recovery"
done

# a row written through target_session_attrs=read-write lands on the primary
sql_rw "CREATE TABLE t_assemble (id int PRIMARY KEY, v text)"
sql_rw "INSERT INTO t_assemble VALUES (1, 'hello-$RANDOM')"
v=$(sql_at "$P" "SELECT v FROM t_assemble WHERE id = 1")
[[ $v == hello-* ]] || fail "row not on the primary node$P: '$v'"
for i in 1 2 3; do
	((i == P)) && continue
	wait_until -t 15 sql_eq "$i" "SELECT v FROM t_assemble WHERE id = 1" "$v" ||
		fail "row not readable on replica node$i within 15 s"
	log "row read on replica node$i"
done

# each replica has an active replication slot on the primary
slots=$(sql_at "$P" "SELECT slot_name || ':' || slot_type || ':' || active FROM pg_replication_slots ORDER BY 1")
log "slots on node$P: $(tr '\n' ' ' <<<"$slots")"
nslots=0
for i in 1 2 3; do
	((i == P)) && continue
	# the slot is named after the node; check the one whose walsender
	# belongs to that replica is active
	ok=$(sql_at "$P" "SELECT count(*) FROM pg_replication_slots s
		JOIN pg_stat_replication r ON r.pid = s.active_pid
		WHERE s.slot_type = 'physical' AND s.active AND s.slot_name LIKE '%node$i%'
		  AND r.state = 'streaming'")
	assert_eq 1 "$ok" "active physical slot of node$i on the primary, used by a streaming walsender"
	nslots=$((nslots + 1))
done
assert_eq 2 "$(sql_at "$P" "SELECT count(*) FROM pg_replication_slots WHERE active")" "active slots on the primary"
# and each replica uses its slot (primary_slot_name)
for i in 1 2 3; do
	((i == P)) && continue
	sn=$(sql_at "$i" "SHOW primary_slot_name")
	[[ -n $sn ]] || fail "node$i has no primary_slot_name"
	assert_eq t "$(sql_at "$P" "SELECT active FROM pg_replication_slots WHERE slot_name = '$sn'")" "slot $sn of node$i active on node$P"
done
