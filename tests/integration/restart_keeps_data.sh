#!/usr/bin/env bash
# libraft 0.15 workaround 1: every command is padded to a multiple of 8
# bytes, or acknowledged entries vanish when the log is reloaded. Write
# 60 keys whose values are 1..60 bytes long (entry sizes hit every residue
# mod 8), restart all three nodes (SIGTERM, then SIGKILL), and read every
# key back with its exact value.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
cl_init 24300
cl_ports_free
cl_start_all
cl_wait_leader >/dev/null

value() { # value N: N bytes, varied content
	local n=$1 s=
	while ((${#s} < n)); do s+="v${n}x"; done
	echo "${s:0:n}"
}
write_keys() { # write_keys PREFIX
	local k
	for k in $(seq 1 60); do
		pgw put "$1/$k" "$(value "$k")" >/dev/null || fail "put $1/$k"
	done
}
check_keys() { # check_keys PREFIX NODE: every key with its exact value
	local k js
	js=$(pgw_at "$2" get "$1/" --prefix --serializable -o json) || fail "get $1/ via node$2"
	for k in $(seq 1 60); do echo "$1/$k=$(value "$k")"; done | sort >"$CL_DIR/exp"
	jq -r '.kvs[] | "\(.key)=\(.value)"' <<<"$js" | sort >"$CL_DIR/got"
	diff "$CL_DIR/exp" "$CL_DIR/got" >&2 || fail "keys under $1 on node$2 differ (above: < expected, > got)"
}
restart_all() { # restart_all stop|kill
	local i
	for i in 1 2 3; do "node_$1" "$i"; done
	for i in 1 2 3; do node_start "$i"; done
	cl_wait_leader 20 >/dev/null
}

write_keys /term
wait_until same_fsm 1 2 3 || fail "nodes disagree before SIGTERM"
before=$(fsm_of 1)
restart_all stop
wait_until same_fsm 1 2 3 || fail "nodes disagree after the SIGTERM restart"
for i in 1 2 3; do check_keys /term "$i"; done
# linearizable reads too, and the log was not cut: the FSM is where it was
# (or later: a new leader appends entries of its own)
for k in 1 8 9 60; do
	assert_eq "$(value "$k")" "$(pgw get "/term/$k" --print-value-only)" "linearizable /term/$k"
done
read -r ai h <<<"$(fsm_of 1)"
((ai >= ${before%% *})) || fail "applied index went back: $before -> $ai"

write_keys /kill
wait_until same_fsm 1 2 3 || fail "nodes disagree before SIGKILL"
restart_all kill
wait_until same_fsm 1 2 3 || fail "nodes disagree after the SIGKILL restart"
for i in 1 2 3; do
	check_keys /term "$i"
	check_keys /kill "$i"
done
# the cluster still works after both restarts
assert_eq OK "$(pgw put /after ok)" "write after restarts"
for i in 1 2 3; do
	if grep -qiE 'corrupt|auto-recover|truncat' "$(node_log "$i")"; then
		fail "node$i log mentions log corruption: $(grep -iE 'corrupt|auto-recover|truncat' "$(node_log "$i")" | head -3)"
	fi
done
exit 0
