#!/usr/bin/env bash
# SIGKILL of the leader: writes go on through the survivors, a new leader
# is elected, and the killed node restarts with the same config and
# catches up (same applied index and FSM hash, and a key written while it
# was down is readable from it with --serializable).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24200
cl_ports_free
cl_start_all
L=$(cl_wait_leader)
for i in $(seq 1 10); do pgw put "/lk/before/$i" "b$i" >/dev/null; done
wait_until same_fsm 1 2 3 || fail "nodes disagree before the kill"

# a lease of 3 s, 2 s old when the leader dies: it must not end before
# 3 s after its grant was sent (docs/architecture.md "Leases": the new
# leader uses the apply time it recorded as a follower), and must end.
tg=$(date +%s%N)
out=$(pgw lease grant 3)
[[ $out =~ ^lease\ ([0-9a-f]{16})\ granted ]] || fail "lease grant: $out"
lid=${BASH_REMATCH[1]}
pgw put /lk-lease/a held --lease "$lid" >/dev/null
sleep 2

log "killing leader node$L"
t0=$(date +%s%N)
node_kill "$L"
# a write through the CLI with all endpoints (the dead one among them)
out=$(pgw --timeout 10 put /lk/during first 2>&1) || fail "write after leader kill failed: $out"
ms=$((($(date +%s%N) - t0) / 1000000))
log "first write after SIGKILL of the leader took ${ms} ms"
((ms < 10000)) || fail "first write took ${ms} ms"
# a new leader, one of the survivors
N=$(cl_wait_leader)
[[ $N != "$L" ]] || fail "leader is still node$L"
log "new leader node$N"
for i in $(seq 1 20); do
	pgw --timeout 10 put "/lk/down/$i" "d$i" >/dev/null || fail "write $i while node$L is down"
done
survivors=()
for i in 1 2 3; do [[ $i == "$L" ]] || survivors+=("$i"); done

lease_gone() { [[ -z $(pgw_at "${survivors[0]}" get /lk-lease/a --serializable) ]]; }
wait_until -t 15 lease_gone || fail "leased key still there 15 s after the kill"
tend=$(date +%s%N)
log "the 3 s lease (2 s old at the kill) ended $(((tend - tg) / 1000000)) ms after its grant, $(((tend - t0) / 1000000)) ms after the kill"
(((tend - tg) / 1000000 >= 3000)) || fail "lease of 3 s expired $(((tend - tg) / 1000000)) ms after its grant was sent"
for i in "${survivors[@]}"; do
	assert_eq d20 "$(pgw_at "$i" get /lk/down/20 --print-value-only)" "read via node$i"
done
st=$(status "${survivors[0]}")
assert_eq "node$N" "$(jq -r .leader <<<"$st")" "survivor's leader"
if pgw_at "$L" get /lk/during >/dev/null 2>&1; then fail "node$L answered while killed"; fi
# endpoints: the dead member gets a row with only its error, exit status 1
rc=0
js=$(pgw endpoints -o json) || rc=$?
assert_eq 1 "$rc" "endpoints exit status with node$L down"
assert_eq 3 "$(jq length <<<"$js")" "endpoints rows with node$L down"
assert_eq 1 "$(jq '[.[] | select(.error != null)] | length' <<<"$js")" "endpoints rows with an error"
assert_eq "$(api_url "$L")" "$(jq -r '.[] | select(.error != null) | .endpoint' <<<"$js")" "endpoint of the error row"
# endpoint health: the dead endpoint is unhealthy (exit 1), the others healthy
rc=0
out=$(pgw endpoint health 2>&1) || rc=$?
assert_eq 1 "$rc" "endpoint health exit status with node$L down"
for i in "${survivors[@]}"; do
	grep -q "^$(api_url "$i") is healthy" <<<"$out" || fail "endpoint health: node$i not healthy: $out"
done

# restart the killed node with the same config; it catches up
node_start "$L"
wait_until -t 20 same_fsm 1 2 3 || fail "node$L did not catch up: $(fsm_of 1) / $(fsm_of 2) / $(fsm_of 3)"
assert_eq d20 "$(pgw_at "$L" get /lk/down/20 --serializable --print-value-only)" "key written while node$L was down"
assert_eq first "$(pgw_at "$L" get /lk/during --serializable --print-value-only)" "first key after the kill"
assert_eq b10 "$(pgw_at "$L" get /lk/before/10 --serializable --print-value-only)" "key written before the kill"
assert_eq 31 "$(pgw_at "$L" get /lk/ --prefix --serializable -o json | jq .count)" "key count on node$L"
st=$(status "$L")
assert_eq true "$(jq -r .is_member <<<"$st")" "node$L is_member"
assert_eq "node$N" "$(jq -r .leader <<<"$st")" "node$L's leader"
# and it takes writes again (forwarded)
assert_eq OK "$(pgw_at "$L" --timeout 10 put /lk/after x)" "write through the restarted node"
wait_until same_fsm 1 2 3 || fail "nodes disagree at the end"
exit 0
