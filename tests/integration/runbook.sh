#!/usr/bin/env bash
# runbook: every command of README.md's runbook table ("The seed runbook,
# with pgwarden"), run through the CLI as an operator would, on a live
# three-node cluster with real PostgreSQL, each checked by its effect:
#   list, members, endpoints, endpoint health, curl /liveness, the HAProxy
#   checks (/primary, /master, /replica, /), get / --prefix, del KEY,
#   lease list / lease revoke ID, member add / member remove (a fourth,
#   never-started learner), force-new-cluster (refused while the node
#   runs: the offline recovery itself is force_new_cluster.sh's),
#   switchover, failover --candidate, history, pause (the primary's death
#   is not failed over), resume (then it is), reinit NODE (the data
#   directory is wiped and cloned again).
FO_SYNC_MODE=${FO_SYNC_MODE:-off}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 32800
fo_up
T0=$SECONDS
others() { local i; for i in 1 2 3; do ((i == $1)) || echo "$i"; done; }

# ---- list: one primary, two streaming replicas, in the table too
out=$(pgw list) || fail "list: $out"
log "list:"$'\n'"$out"
[[ $(head -n1 <<<"$out") == "Cluster: $PG_CLUSTER ("[0-9]*")" ]] || fail "list header: $(head -n1 <<<"$out")"
[[ $(grep -c "node$P .*primary *| *running" <<<"$out") == 1 ]] || fail "list does not show node$P as the running primary"
[[ $(grep -c "replica *| *streaming" <<<"$out") == 2 ]] || fail "list does not show two streaming replicas"

# ---- members: three voters, one of them the leader that endpoints names
js=$(pgw members -o json) || fail "members: $js"
assert_eq "3 3" "$(jq -r '"\(.members | length) \([.members[] | select(.role == "voter")] | length)"' <<<"$js")" "members: voters"
out=$(pgw members) || fail "members: $out"
for i in 1 2 3; do grep -q "node$i" <<<"$out" || fail "members does not list node$i: $out"; done
# the Raft leader may move (move_raft_leader): members and endpoints must
# name the same one when asked one after the other
ldr=
leaders_agree() {
	ldr=$(pgw members -o json | jq -er '.leader | select(. != "")') && raft_leader_is "$ldr"
}
wait_until -t 10 leaders_agree || fail "members says ${ldr:-nobody} leads, endpoints says $(raft_leader)"

# ---- endpoints: every node answers, equal applied indexes, equal hashes
same_state() {
	local js
	js=$(pgw endpoints -o json) || return 1
	jq -e 'length == 3 and ([.[] | .applied_index] | unique | length) == 1 and
		([.[] | .fsm_hash] | unique | length) == 1' <<<"$js" >/dev/null
}
wait_until -t 10 same_state || fail "endpoints: nodes differ: $(pgw endpoints 2>&1)"
out=$(pgw endpoints) || fail "endpoints: $out"
for i in 1 2 3; do grep -q "$(api_url "$i")" <<<"$out" || fail "endpoints does not list node$i: $out"; done

# ---- endpoint health: all healthy
all_healthy() {
	out=$(pgw endpoint health 2>&1) && leaders_agree &&
		[[ $(grep -c "is healthy: leader $ldr" <<<"$out") == 3 ]]
}
wait_until -t 10 all_healthy || fail "endpoint health: $out"

# ---- curl /liveness and the HAProxy checks
for i in 1 2 3; do
	assert_eq '{"status":"ok"}' "$(curl -s --max-time 5 "$(api_url "$i")/liveness")" "node$i /liveness"
	if ((i == P)); then w=200 r=503; else w=503 r=200; fi
	for p in /primary /master /; do assert_eq "$w" "$(http_code GET "$(api_url "$i")$p")" "node$i $p"; done
	assert_eq "$r" "$(http_code GET "$(api_url "$i")/replica")" "node$i /replica"
	assert_eq 400 "$(http_code GET "$(api_url "$i")/replica?lag=99999999999TB")" "node$i /replica with too large a lag"
done

# ---- get / --prefix: the cluster's keys, the leader key naming the primary
out=$(pgw get / --prefix) || fail "get / --prefix: $out"
grep -qx "/service/$PG_CLUSTER/leader" <<<"$out" || fail "get / --prefix has no leader key: $out"
assert_eq "node$P" "$(grep -A1 -x "/service/$PG_CLUSTER/leader" <<<"$out" | tail -n1)" "leader key value"
for i in 1 2 3; do grep -qx "/service/$PG_CLUSTER/members/node$i" <<<"$out" || fail "no member key of node$i"; done

# ---- del KEY
pgw put /runbook/k v >/dev/null || fail "put"
assert_eq 1 "$(pgw del /runbook/k)" "del /runbook/k"
assert_eq 0 "$(pgw get /runbook/k -o json | jq .count)" "keys after del"

# ---- lease list / lease revoke ID: a lease of our own, with a key on it
out=$(pgw lease grant 60) || fail "lease grant: $out"
id=$(awk '{print $2}' <<<"$out")
pgw put /runbook/leased v --lease "$id" >/dev/null || fail "put --lease"
out=$(pgw lease list) || fail "lease list: $out"
grep -q "$id" <<<"$out" || fail "lease list does not show $id: $out"
assert_eq "lease $id revoked" "$(pgw lease revoke "$id")" "lease revoke"
assert_eq 0 "$(pgw get /runbook/leased -o json | jq .count)" "the revoked lease's key"
pgw lease list | grep -q "$id" && fail "lease list still shows $id"

# ---- member add / member remove: a learner that never starts (a learner
# has no vote, so the cluster keeps its quorum meanwhile)
spare=$((PG_BASE + 39))
out=$(pgw member add node4 --peer-url "127.0.0.1:$spare") || fail "member add: $out"
[[ $out == "Member node4 added with ID "* ]] || fail "member add output: $out"
assert_eq learner "$(pgw members -o json | jq -r '.members[] | select(.name == "node4") | .role')" "node4 after member add"
assert_eq "Member node4 removed" "$(pgw member remove node4)" "member remove"
assert_eq 3 "$(pgw members -o json | jq '.members | length')" "members after member remove"

# ---- force-new-cluster -c FILE: offline only; refused on a running node,
# which goes on as a member of the three
rc=0
out=$("$PG_DIR/bin/pgwarden" force-new-cluster -c "$(ini "$P")" 2>&1) || rc=$?
((rc != 0)) || fail "force-new-cluster on a running node succeeded: $out"
[[ $out == *"in use"* ]] || fail "force-new-cluster on a running node: unclear message: $out"
node_running "$P" || fail "node$P died from a refused force-new-cluster"
assert_eq 3 "$(pgw members -o json | jq '.members | length')" "members after the refused force-new-cluster"
log "read-only commands checked after $((SECONDS - T0)) s"

# ---- switchover (to the best replica) and failover --candidate
h0=$(pgw history -o json | jq length)
out=$(pgw --timeout 30 switchover --force 2>&1) || fail "switchover: $out"
wait_until -t 10 fo_new_primary "$P" || fail "no new primary after switchover: $(pgw list 2>&1)"
S=$(primary_idx)
# both replicas stream from the new primary (a failover candidate must)
for i in $(others "$S"); do
	wait_until -t 20 fo_streams_from "$i" "$S" || fail "node$i does not stream from node$S after the switchover: $(pgw list 2>&1)"
	wait_until -t 10 fo_is_role_state "$i" replica/streaming || fail "node$i is not listed streaming after the switchover: $(pgw list 2>&1)"
done
log "switchover: node$P -> node$S after $((SECONDS - T0)) s"
C=$(others "$S" | grep -vx "$P")
out=$(pgw --timeout 30 failover --candidate "node$C" --force 2>&1) || fail "failover --candidate node$C: $out"
wait_until -t 10 fo_primary_is "$C" || fail "node$C is not the primary after failover: $(pgw list 2>&1)"
for i in $(others "$C"); do
	wait_until -t 20 fo_streams_from "$i" "$C" || fail "node$i does not stream from node$C after the failover: $(pgw list 2>&1)"
done
log "failover: node$S -> node$C after $((SECONDS - T0)) s"
pg_wait_healthy 20

# ---- history: one entry more for each, the last naming the candidate
h=$(pgw history -o json) || fail "history: $h"
(($(jq length <<<"$h") == h0 + 2)) || fail "history has $(jq length <<<"$h") entries, $h0 before two switches: $h"
assert_eq "switchover node$S" "$(jq -r '.[-2] | "\(.reason) \(.leader)"' <<<"$h")" "history entry of the switchover"
# a manual failover while a primary runs is a switchover to the named node
# (docs/architecture.md, "Manual failover"), and recorded as one
assert_eq "switchover node$C" "$(jq -r '.[-1] | "\(.reason) \(.leader)"' <<<"$h")" "history entry of the failover"
tl=$(fo_list_tl "$C")
jq -e --argjson tl "$tl" '.[-1].timeline == $tl or .[-1].timeline == $tl - 1' <<<"$h" >/dev/null ||
	fail "history: the failover's entry is not for timeline $tl: $h"
out=$(pgw history) || fail "history: $out"
grep -q "switchover *| *node$C" <<<"$out" || fail "history table: $out"

# ---- pause: maintenance mode shown; the primary's death is not failed over
out=$(pgw pause 2>&1) || fail "pause: $out"
[[ $out == *"maintenance mode on"* ]] || fail "pause output: $out"
# (sed reads all of it: head would end the pipe early and, under
# pipefail, fail the line with the CLI's SIGPIPE)
list_head() { pgw list | sed -n 1p; }
# `list` answers from the first endpoint's own copy of the store, which
# may trail the write by a moment (linearizable list: issue "operate it")
wait_until -t 5 eval '[[ $(list_head) == *"[maintenance mode]"* ]]' ||
	fail "list does not show maintenance mode: $(pgw list 2>&1)"
paused_everywhere() {
	local i
	for i in 1 2 3; do [[ $(curl -s --max-time 3 "$(api_url "$i")/health" | jq -r .paused) == true ]] || return 1; done
}
wait_until -t 5 paused_everywhere || fail "not every node reports paused"
node_kill_machine "$C"
log "paused; node$C (primary) killed"
t_kill=$SECONDS
# the dead primary's lease runs out (ttl 2.5 s), which unpaused is what
# starts a failover; paused, the replicas stay replicas for many loop_waits
# (400 ms) after that
no_leader_key() { [[ -z $(leader_key) ]]; }
wait_until -t 15 no_leader_key || fail "the leader key outlives its dead holder: $(leader_key)"
log "node$C's lease expired $((SECONDS - t_kill)) s after its death"
still_replicas() {
	local i
	for i in $(others "$C"); do
		[[ $(sql_at "$i" "SELECT pg_is_in_recovery()") == t ]] || return 1
		[[ $(http_code GET "$(api_url "$i")/primary") == 503 ]] || return 1
	done
}
# checked again and again for 4 s (ten loop_waits) after the expiry
t_end=$(($(date +%s%N) + 4000000000))
checks=0
while (($(date +%s%N) < t_end)); do
	still_replicas || fail "a replica was promoted while paused: $(pgw list 2>&1)"
	checks=$((checks + 1))
done
((checks >= 2)) || fail "only $checks checks in 4 s"
[[ -z $(leader_key) ]] || fail "a leader key was written while paused: $(leader_key)"
log "no promotion while paused ($checks checks), $((SECONDS - t_kill)) s after node$C's death"
# ---- resume: now the dead primary is replaced
out=$(pgw resume 2>&1) || fail "resume: $out"
t_resume=$SECONDS
[[ $out == *"maintenance mode off"* ]] || fail "resume output: $out"
wait_until -t 5 eval '[[ $(list_head) != *"maintenance mode"* ]]' ||
	fail "list still shows maintenance mode"
N=
new_primary() {
	local i
	for i in $(others "$C"); do
		[[ $(http_code GET "$(api_url "$i")/primary") == 200 ]] && { N=$i; return 0; }
	done
	return 1
}
wait_until -t 20 new_primary || fail "no failover within 20 s of resume: $(pgw list 2>&1)"
new_primary
log "resume: node$N took over $((SECONDS - t_resume)) s after resume, $((SECONDS - t_kill)) s after node$C's death"
last_is_failover() { [[ $(pgw history -o json | jq -r '.[-1] | "\(.reason) \(.leader)"') == "failover node$N" ]]; }
wait_until -t 10 last_is_failover || fail "history has no failover entry for node$N: $(pgw history 2>&1)"
fo_start_node "$C"
pg_wait_healthy 30

# ---- reinit NODE: a replica's data directory is wiped and cloned again
P=$(primary_idx)
R=$(others "$P" | sed -n 1p)
marker="$(pg_data "$R")/runbook-marker"
touch "$marker"
pm0=$(postmaster_pid "$R")
out=$(pgw reinit "node$R" --force 2>&1) || fail "reinit node$R: $out"
[[ $out == "node$R: reinitialize scheduled"* ]] || fail "reinit output: $out"
wait_until -t 30 test ! -e "$marker" || fail "node$R's data directory was not wiped"
wait_until -t 30 fo_streams_from "$R" "$P" || fail "node$R does not stream again after reinit: $(pgw list 2>&1)"
[[ $(postmaster_pid "$R") != "$pm0" ]] || fail "node$R runs the same postmaster after reinit"
pg_wait_healthy 20
# and the primary refuses to be reinitialized
rc=0
out=$(pgw reinit "node$P" --force 2>&1) || rc=$?
((rc == 1)) && [[ $out == *"409"*"primary"* ]] || fail "reinit of the primary: exit $rc: $out"
log "runbook done in $((SECONDS - T0)) s after the cluster came up"
