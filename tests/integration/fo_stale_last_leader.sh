#!/usr/bin/env bash
# fo_stale_last_leader: a stale last_leader key must not promote a lagging
# node. synchronous_mode = on (ANY 1 of the two replicas), nodes in
# network namespaces. One replica gets its WAL through a 64 kbit/s
# bottleneck (htb on the switch's port towards it), so it streams and
# reports but falls behind, while the other acknowledges every commit. Then the primary's machine dies and, before
# its lease runs out, last_leader is overwritten with the lagging
# replica's name: the state a failed or late last_leader write leaves
# behind (the previous primary named, now a replica). The controller must
# still name the replica holding the most WAL: every row the writer had
# acknowledged is on the new primary (a), no overlapping write windows (b).
# Also: while a primary runs, it puts its own name back into a
# last_leader key that names someone else within a couple of seconds.
FO_SYNC_MODE=${FO_SYNC_MODE:-on}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_ns_init stale_ll
fo_init 32800
fo_ns_up
fo_start_all
pg_wait_healthy 60
fo_table
P=$(primary_idx) || fail "no single primary"
fo_wait_sync_published
LL=/service/$PG_CLUSTER/last_leader
last_leader() { pgw --timeout 3 get "$LL" --print-value-only; }
last_leader_is() { [[ $(last_leader) == "$1" ]]; }

# the primary repairs a last_leader that does not name it
R=$(((P % 3) + 1))    # one replica
S=$(((R % 3) + 1))    # the other one
[[ $S == "$P" ]] && S=$(((S % 3) + 1))
wait_until -t 10 last_leader_is "node$P" || fail "last_leader is '$(last_leader)', not node$P"
pgw put "$LL" "node$R" >/dev/null || fail "put $LL"
wait_until -t 5 last_leader_is "node$P" ||
	fail "the primary node$P did not restore last_leader (still '$(last_leader)') within 5 s"
log "node$P restored last_leader after it was set to node$R"

fo_writer_start w
fo_wait_acks w 100 20
# node$R receives the primary's WAL through a 64 kbit/s bottleneck (on the
# switch's port towards it, PostgreSQL's traffic only): it keeps streaming
# and reporting, ever further behind; node$S acknowledges every commit
sw=${FO_NS_PREFIX}sw
tcsw() { ip netns exec "$sw" tc "$@" 2>/dev/null || fail "tc $*"; }
tcsw qdisc add dev "sw$R" root handle 1: htb default 10
tcsw class add dev "sw$R" parent 1: classid 1:10 htb rate 1gbit
tcsw class add dev "sw$R" parent 1: classid 1:20 htb rate 64kbit ceil 64kbit
tcsw filter add dev "sw$R" parent 1: protocol ip u32 match ip sport "$(pg_port "$P")" 0xffff flowid 1:20
log "node$R's WAL from node$P limited to 64 kbit/s; node$S streams freely"
n0=$(fo_acks_after w 0)
wait_until -t 20 eval '(($(fo_acks_after w 0) > n0 + 500))' || fail "the writer stalled with node$R throttled"
log "node$R as listed: $(list_json | jq -c --arg n "node$R" '.[] | select(.name == $n)')"

# maintenance mode (pause) over the primary's death: the lease runs out
# while nothing acts, and every replica reports again before anything is
# decided, as after any slow failover decision
api_post() { # api_post PATH: POST with the token, through the client's namespace
	local code
	code=$(ip netns exec "$FO_NS_CLIENT" curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		-X POST -H "Authorization: Bearer $(cat "$PG_DIR/token")" "$(api_url "$S")$1")
	[[ $code == 2* ]] || fail "POST $1: HTTP $code"
}
api_post /pause
pgw --timeout 3 get "/service/$PG_CLUSTER/pause" -o json | jq -e ".count == 1" >/dev/null || fail "no pause key after POST /pause"
tk=$(fo_now)
node_kill_machine "$P"
pgw --timeout 2 put "$LL" "node$R" >/dev/null || fail "put $LL after the kill"
log "paused; node$P killed; last_leader set to the lagging node$R $(fo_since "$tk") ms later"
wait_until -t 20 eval '[[ -z $(leader_key 2>/dev/null) ]]' || fail "the leader key outlived node$P by 20 s"
rec_of() { list_json | jq -c --arg n "node$1" '.[] | select(.name == $n) | .lag_bytes'; }
wait_until -t 10 eval '[[ $(rec_of "$R") == -1 && $(rec_of "$S") == -1 ]]' ||
	fail "node$R and node$S did not report the primary's loss: $(rec_of "$R") $(rec_of "$S")"
log "leader key gone, both replicas reported it; resuming"
api_post /resume
wait_until -t 30 fo_new_primary "$P" || {
	pgw list >&2 || true
	fail "no new primary within 30 s of the resume"
}
N=$(primary_idx)
log "new primary node$N listed $(fo_since "$tk") ms after the kill"
assert_eq "$S" "$N" "new primary (node$S held the most WAL, node$R lagged)"
fo_wait_acks w 50 20 "$tk" "$(pg_port "$N")"
fo_writer_stop w
fo_check_lost "$N" w
fo_check_overlap w
