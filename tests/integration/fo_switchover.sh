#!/usr/bin/env bash
# fo_switchover: under a write load, `pgwarden switchover --candidate NODE
# --force` to a named replica, then `pgwarden switchover --force` to any.
# Each completes (the CLI returns 0 once the new primary runs), the old
# primary streams from the new one, and `pgwarden history` gains an entry
# with reason switchover for the new timeline. A clean switchover must
# lose nothing even with asynchronous replication (the default here): (a)
# every acknowledged row is on the final primary and on every node, and
# (b) no two PostgreSQL instances accepted writes in overlapping windows.
# Prints each switchover's duration and write gap.
FO_SYNC_MODE=${FO_SYNC_MODE:-off}
source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
fo_init 30700
fo_up
C=$((P % 3 + 1))
log "primary node$P, candidate node$C"
fo_writer_start w
fo_wait_acks w 100 20

# switchover OLD [CANDIDATE]: run it, check it, print the figures; sets NEW
switchover() {
	local old=$1 cand=${2:-} t0 out rc=0 tl_old h
	# an operator switches over a healthy cluster: both replicas streaming
	pg_wait_healthy 20
	tl_old=$(fo_list_tl "$old")
	t0=$(fo_now)
	out=$(pgw --timeout 30 switchover ${cand:+--candidate "node$cand"} --force 2>&1) || rc=$?
	log "switchover${cand:+ to node$cand}: exit $rc after $(fo_since "$t0") ms: $(tr '\n' ' ' <<<"$out")"
	((rc == 0)) || fail "switchover${cand:+ to node$cand} failed (exit $rc): $out"
	wait_until -t 10 fo_new_primary "$old" || fail "no new primary listed after the switchover: $(pgw list 2>&1)"
	NEW=$(primary_idx)
	[[ -z $cand || $NEW == "$cand" ]] || fail "switchover to node$cand made node$NEW the primary"
	fo_wait_acks w 30 20 "$t0" "$(pg_port "$NEW")"
	local fa la
	fa=$(fo_first_ack_after w "$t0" "$(pg_port "$NEW")")
	la=$(awk -v t="$t0" -v p="$(pg_port "$old")" '$1 == "A" && $4 > t && $5 == p { m = $4 } END { print m }' "$PG_DIR/w.w")
	log "node$old -> node$NEW: first row on node$NEW $((fa / 1000)) ms after the command; write gap $(((t0 + fa - ${la:-$t0}) / 1000)) ms (from node$old's last acknowledged row)"
	wait_until -t 20 fo_streams_from "$old" "$NEW" || fail "node$old does not stream from node$NEW: $(pgw list 2>&1)"
	log "node$old streams from node$NEW $(fo_since "$t0") ms after the command"
	h=$(pgw history -o json)
	jq -e --argjson tl "$(fo_list_tl "$NEW")" --arg n "node$NEW" \
		'any(.[]; (.timeline == $tl or .timeline == $tl - 1) and .reason == "switchover" and .leader == $n)' <<<"$h" >/dev/null ||
		fail "history has no switchover entry for the switch to timeline $(fo_list_tl "$NEW") (from $tl_old): $h"
	log "history: $(jq -c '.[-1]' <<<"$h")"
}
switchover "$P" "$C"
N1=$NEW
switchover "$N1"
N2=$NEW
pg_wait_healthy 20
fo_wait_acks w 30 20 "$(fo_now)"
fo_writer_stop w
pgw history >&2

fo_check_lost "$N2" w
for i in 1 2 3; do
	((i == N2)) && continue
	wait_until -t 15 fo_same_rows "$i" "$N2" || fail "node$i's rows differ from node$N2's: $(fo_digest "$i") vs $(fo_digest "$N2")"
	fo_check_lost "$i" w
done
fo_check_overlap w
fo_check_pg_conf
