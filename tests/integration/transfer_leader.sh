#!/usr/bin/env bash
# transfer-leader NAME moves leadership to that node; without a name the
# leader hands over to another voter; the cluster keeps working and agrees.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 25000
cl_ports_free
cl_start_all
L=$(cl_wait_leader)
pgw put /tl/a 1 >/dev/null
wait_until same_fsm 1 2 3 || fail "nodes disagree at the start"

leader_is() { [[ $(leader_name) == "$1" ]]; }
for round in 1 2; do
	# a named target that is not the leader, asked through a follower
	T=$((L % 3 + 1))
	via=$((T % 3 + 1))
	[[ $via != "$L" ]] || via=$T
	out=$(pgw_at "$via" --timeout 10 transfer-leader "node$T") || fail "transfer-leader node$T: $out"
	assert_eq "Leadership transferred to node$T" "$out" "transfer-leader output"
	wait_until leader_is "node$T" || fail "node$T is not the leader: $(leader_name || true)"
	assert_eq true "$(status "$T" .is_leader)" "node$T is_leader"
	log "round $round: node$L -> node$T"
	pgw put "/tl/named$round" ok >/dev/null || fail "write after the transfer to node$T"
	L=$T
done

# without a name: any other up-to-date voter
out=$(pgw --timeout 10 transfer-leader) || fail "transfer-leader without a name: $out"
[[ $out =~ ^Leadership\ transferred\ to\ (node[123])$ ]] || fail "transfer-leader output: $out"
N=${BASH_REMATCH[1]}
[[ $N != "node$L" ]] || fail "transfer-leader without a name kept node$L"
wait_until leader_is "$N" || fail "$N is not the leader"
log "no name: node$L -> $N"

# errors: an unknown node, and a learner/absent name is refused with 404
expect_fail out pgw transfer-leader node9
assert_eq 1 "$EXPECT_RC" "exit status of transfer-leader to an unknown node"
[[ $out == *404* ]] || fail "transfer-leader node9: $out"
log "transfer-leader node9: $out"
# transfer to the current leader: it stays leader (or says so), no harm
rc=0
out=$(pgw transfer-leader "$N" 2>&1) || rc=$?
log "transfer-leader to the leader itself: exit $rc: $out"
((rc == 0)) || [[ $out == *already* ]] || fail "transfer-leader to the leader itself: unclear error: $out"
wait_until leader_name || fail "no leader after a transfer to the leader itself"

pgw put /tl/end ok >/dev/null
wait_until same_fsm 1 2 3 || fail "nodes disagree at the end"
assert_eq 4 "$(pgw get /tl/ --prefix -o json | jq .count)" "keys at the end"
exit 0
