#!/usr/bin/env bash
# fo_hostnames: every address in the ini files is a host name. Three nodes
# in network namespaces pgwfo<T>hostnames{1,2,3} (10.200.0.1..3); the names
# db1.pgwtest .. db3.pgwtest exist only in the namespaces' hosts files
# (/etc/netns/NS/hosts, which `ip netns exec` mounts over /etc/hosts), and
# the files use them for [raft] listen (node1: 0.0.0.0 and advertise by
# name) and peers, [api] listen and
# [postgresql] listen (so connect_address, its default). Checks:
#  - outside the namespaces the names do not resolve: check-config stops at
#    the line of the name (so the nodes really resolve through the hosts
#    files); inside, check-config passes;
#  - the cluster forms: Raft members carry the resolved IPv4 addresses,
#    each member record carries its name (host) and address (hostaddr), and
#    the replicas stream with primary_conninfo host=NAME hostaddr=ADDRESS
#    and application_name = the node's PostgreSQL name;
#  - member add of a name with the same PostgreSQL name as a member
#    (NODE2 next to node2) is refused;
#  - the primary's machine dies under a write load: a replica takes over,
#    the other replica follows it by name, and (a) no acknowledged row is
#    lost, (b) no two primaries accepted writes at once;
#  - the old primary restarts and rejoins through pg_rewind from the new
#    one, and a switchover back to it completes.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_ns_init hostnames
# after fo_ns_init (which sets numeric addresses), before fo_init (which
# writes the ini files with node_addr)
node_addr() { echo "db$1.pgwtest"; }
fo_init 32900
# node1 listens on the wildcard and advertises its name
sed -i "s/^listen = db1.pgwtest:$(raft_port 1)\$/listen = 0.0.0.0:$(raft_port 1)\nadvertise = db1.pgwtest:$(raft_port 1)/" "$(ini 1)"
grep -q "^advertise = db1.pgwtest:$(raft_port 1)\$" "$(ini 1)" || fail "node1.ini: no advertise line"

HN_DIRS=()
hn_cleanup() {
	local rc=$? d
	for d in "${HN_DIRS[@]}"; do rm -rf -- "$d"; done
	(exit "$rc")
	fo_cleanup
}
trap hn_cleanup EXIT
for s in 1 2 3 c; do
	d=/etc/netns/${FO_NS_PREFIX}$s
	[[ ! -e $d ]] || rm -rf -- "$d" # a leftover of an earlier run
	HN_DIRS+=("$d")
	mkdir -p "$d"
	{
		echo "127.0.0.1 localhost"
		for i in 1 2 3; do echo "10.200.0.$i db$i.pgwtest"; done
	} >"$d/hosts"
done

# outside: the names are unknown, and the error names the line
grep -q 'pgwtest' /etc/hosts && skip "/etc/hosts knows *.pgwtest"
out=$("$PGWARDEN" check-config -c "$(ini 1)" 2>&1) && fail "check-config resolved db1.pgwtest outside the namespaces: $out"
line=$(grep -n '^advertise = db1.pgwtest' "$(ini 1)" | cut -d: -f1)
[[ $out == "$(ini 1):$line: [raft] advertise: cannot resolve 'db1.pgwtest': "* ]] ||
	fail "check-config outside: unexpected message: $out"

fo_ns_up
for i in 1 2 3; do
	out=$(ip netns exec "${FO_NS_PREFIX}$i" "$PGWARDEN" check-config -c "$(ini "$i")" 2>&1) ||
		fail "check-config of node$i in its namespace: $out"
done
fo_up
fo_wait_sync_published

# Raft binds [raft] listen: node1 the wildcard, the others their name's
# address
bound() { ip netns exec "${FO_NS_PREFIX}$1" ss -Hltn "sport = :$(raft_port "$1")" | awk '{ print $4 }'; }
assert_eq "0.0.0.0:$(raft_port 1)" "$(bound 1)" "node1's raft listener"
assert_eq "10.200.0.2:$(raft_port 2)" "$(bound 2)" "node2's raft listener"
# Raft: the resolved IPv4 addresses
js=$(pgw members -o json)
for i in 1 2 3; do
	jq -e --arg n "node$i" --arg p "10.200.0.$i:$(raft_port "$i")" \
		'.members[] | select(.name == $n and .peer_url == $p)' <<<"$js" >/dev/null ||
		fail "members: node$i is not at 10.200.0.$i:$(raft_port "$i"): $js"
done
# member records: the name and the address it resolved to
for i in 1 2 3; do
	rec=$(pgw get "/service/$PG_CLUSTER/members/node$i" --print-value-only)
	assert_eq "db$i.pgwtest" "$(jq -r .host <<<"$rec")" "node$i record host"
	assert_eq "10.200.0.$i" "$(jq -r .hostaddr <<<"$rec")" "node$i record hostaddr"
done
# replicas: conninfo by name and address, application_name = node name
for i in 1 2 3; do
	((i == P)) && continue
	ci=$(sql_at "$i" "SHOW primary_conninfo")
	[[ $ci == *"host=db$P.pgwtest"* && $ci == *"hostaddr=10.200.0.$P"* && $ci == *"application_name=node$i"* ]] ||
		fail "node$i primary_conninfo lacks host=db$P.pgwtest hostaddr=10.200.0.$P application_name=node$i: $ci"
done
apps=$(sql_at "$P" "SELECT string_agg(application_name || '@' || host(client_addr), ',' ORDER BY application_name) FROM pg_stat_replication WHERE state = 'streaming'")
want=
for i in 1 2 3; do ((i == P)) || want+="${want:+,}node$i@10.200.0.$i"; done
assert_eq "$want" "$apps" "streaming replicas on node$P"

# a name that PostgreSQL would confuse with node2's
if out=$(pgw member add NODE2 --peer-url 10.200.0.9:7101 2>&1); then
	fail "member add NODE2 was accepted next to node2: $out"
fi
[[ $out == *"same PostgreSQL name 'node2'"*"member 'node2'"* ]] ||
	fail "member add NODE2: unexpected message: $out"
assert_eq 3 "$(pgw members -o json | jq '.members | length')" "members after the refused add"
# member add --peer-url by name: the CLI resolves it (in the client's
# namespace) and the cluster stores the IPv4 address; an unknown name is an
# error before anything is sent
if out=$(pgw member add node9 --peer-url nosuch.pgwtest:7109 2>&1); then
	fail "member add with an unknown host name was accepted: $out"
fi
[[ $out == *"cannot resolve 'nosuch.pgwtest'"* ]] || fail "member add nosuch.pgwtest: unexpected message: $out"
out=$(pgw member add node9 --peer-url db3.pgwtest:7109 2>&1) || fail "member add node9 by name: $out"
assert_eq "10.200.0.3:7109" "$(pgw members -o json | jq -r '.members[] | select(.name == "node9") | .peer_url')" "node9's stored peer_url"
out=$(pgw member remove node9 2>&1) || fail "member remove node9: $out"
three_members() { [[ $(pgw members -o json | jq '.members | length') == 3 ]]; }
wait_until -t 10 three_members || fail "node9 still listed after its removal"

# the primary's machine dies under a write load
fo_writer_start w
fo_wait_acks w 100 20
tk=$(fo_now)
node_kill_machine "$P"
no_postmaster "$P" || fail "postgres processes survive in node$P's data dir: $(postmasters_of "$P")"
wait_until -t 30 fo_new_primary "$P" || {
	pgw list >&2 || true
	fail "no new primary within 30 s of the kill"
}
N=$(primary_idx)
log "new primary node$N listed $(fo_since "$tk") ms after the kill"
fo_wait_acks w 50 20 "$tk" "$(pg_port "$N")"
fo_writer_stop w
assert_eq "node$N" "$(leader_key)" "leader key"
# the third node follows the new primary, by name and address
R=$((6 - P - N))
follows() {
	local ci
	ci=$(sql_at "$R" "SHOW primary_conninfo" 2>/dev/null) || return 1
	[[ $ci == *"host=db$N.pgwtest"* && $ci == *"hostaddr=10.200.0.$N"* ]] || return 1
	[[ $(sql_at "$N" "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'node$R' AND state = 'streaming'" 2>/dev/null) == 1 ]]
}
wait_until -t 30 follows || fail "node$R does not stream from node$N by name: $(sql_at "$R" "SHOW primary_conninfo" 2>&1)"

fo_check_lost "$N" w
fo_check_overlap w

# the dead primary comes back: pg_rewind from the new primary by name
# (its CHECKPOINT on the source goes through pgctl's own connection, which
# refuses a host name without hostaddr), then it streams
nlines=$(wc -l <"$(node_log "$P")")
fo_start_node "$P"
wait_until -t 40 fo_streams_from "$P" "$N" || {
	pgw list >&2 || true
	fail "node$P does not stream from node$N within 40 s of its restart"
}
tail -n +"$((nlines + 1))" "$(node_log "$P")" | grep -qE 'op=rewind done' ||
	fail "node$P's log since its restart shows no finished pg_rewind"
# the switchover takes a replica the cluster sees streaming (its record)
wait_until -t 10 fo_is_role_state "$P" replica/streaming || fail "node$P is $(fo_role_state "$P"), not replica/streaming"
# a switchover back to it: the old primary checks the target over libpq
# (host=NAME hostaddr=ADDRESS) before handing over
out=$(pgw --timeout 30 switchover --candidate "node$P" --force 2>&1) ||
	fail "switchover to node$P failed: $out"
wait_until -t 15 fo_primary_is "$P" || fail "node$P is not the primary after the switchover: $(pgw list 2>&1)"
wait_until -t 30 fo_streams_from "$N" "$P" || fail "node$N does not stream from node$P after the switchover"
log "switchover to node$P done; node$N streams from it"
