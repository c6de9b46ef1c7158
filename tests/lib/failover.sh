# tests/lib/failover.sh - helpers for the failover system tests
# (tests/integration/fo_*.sh, issue 4 item 8), on top of pgcluster.sh.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/failover.sh"
#   FO_SYNC_MODE=${FO_SYNC_MODE:-on}     # [ha] synchronous_mode
#   fo_init 30000                        # ports 30000..30999, 100 a test
#   pg_start_all; pg_wait_healthy; fo_table
#   fo_writer_start w                    # records every acknowledged row
#   ... the event ...
#   fo_writer_stop w
#   fo_check_lost FINAL_PRIMARY w        # (a) nothing acknowledged lost
#   fo_check_overlap w                   # (b) no overlapping write windows
#
# The writer (tests/lib/fo_writer.c, $FO_WRITER) offers each row to every
# PostgreSQL in rotation over kept connections and writes one line per
# outcome to $PG_DIR/w.NAME: "A id send_us ack_us port pmstart_us target"
# for an acknowledged row (CLOCK_MONOTONIC microseconds; port and
# postmaster start time returned by the INSERT itself, so a record names
# the PostgreSQL instance that accepted it). A PostgreSQL instance becomes
# writable at most once in its life (startup as primary or promotion; a
# demotion needs a restart), so its write window is [first send, last ack]
# of the rows it acknowledged; check (b) asserts those windows are
# pairwise disjoint, which is stricter than comparing first and last acks.
#
# Network namespaces (fo_ns_init): three hosts pgwfo<T>1..3 at
# 10.200.0.1..3/24 and a client pgwfo<T>c at 10.200.0.10, joined by a
# bridge in pgwfo<T>sw; the nodes listen on their own address, the writer
# and every CLI or psql call run in the client namespace. The namespaces
# are deleted on exit (before pgcluster's cleanup kills every process by
# pid), also on failure.
#
# Environment: FO_WRITER (required), WDFIFO (for fo_wd_*), FO_SYNC_MODE,
# PGW_KEEP=1 keeps the temp dir.

# shellcheck source=pgcluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/pgcluster.sh"

: "${FO_WRITER:?FO_WRITER must name the fo_writer binary (tests/lib/fo_writer.c)}"
FO_WRITER=$(readlink -f "$FO_WRITER")
FO_SYNC_MODE=${FO_SYNC_MODE:-off}
FO_HA_EXTRA=${FO_HA_EXTRA:-}      # extra [ha] lines
FO_WD=0                           # 1: [watchdog] required on a FIFO
FO_NS=0
FO_NS_PREFIX=
FO_NS_CLIENT=
declare -a FO_NS_LIST=()
declare -A FO_TAGS=()             # node -> [tags] lines
declare -A FO_WPID=()             # writer name -> pid
declare -A FO_WDPID=()            # node -> wdfifo pid
declare -A FO_CUT=()              # node -> 1 while partitioned
FO_T0=

fo_now() { "$FO_WRITER" --now; }
# fo_since T_US: milliseconds from T_US until now
fo_since() { echo $((($(fo_now) - $1) / 1000)); }
fo_addr() { if ((FO_NS)); then echo "10.200.0.$1"; else echo 127.0.0.1; fi; }
port_node() { echo $(($1 - PG_BASE - 20)); }

# fo_init BASE: pg_init on our own port block (30000..30900, or 32000..33900
# for the tests added later: 31000s belong to bench/failover). pg_init only
# accepts its own range (28000..28900), so it is called with 28000 and the
# ini files are written again for BASE before anything starts.
fo_init() {
	local base=$1 i
	if ((base % 100 != 0 || !((base >= 30000 && base <= 30900) || (base >= 32000 && base <= 33900)))); then
		echo "port base $base outside 30000..30900 and 32000..33900 (a block of 100)" >&2
		exit 2
	fi
	PGW_PG_PORT_BASE= pg_init 28000
	PG_BASE=$((base + PGW_TEST_PORT_SHIFT))
	trap fo_cleanup EXIT
	for ((i = 1; i <= PG_NODES; i++)); do fo_write_ini "$i"; done
	for ((i = PG_NODES + 1; i <= PG_NODES + PG_WITNESS; i++)); do pg_write_ini "$i"; done
	[[ -x $FO_WRITER ]] || fail "FO_WRITER $FO_WRITER is not executable"
	command -v nft >/dev/null || ((!FO_NS)) || skip "nft not installed"
	FO_T0=$(fo_now)
	log "fo: port base $PG_BASE (not 28000), synchronous_mode=$FO_SYNC_MODE, watchdog $( ((FO_WD)) && echo required || echo off)"
}

# fo_write_ini I: node I's ini with [ha], [watchdog] and [tags]
fo_write_ini() {
	local i=$1 wd
	if ((FO_WD)); then
		wd="[watchdog]
mode = required
device = $PG_DIR/wd$i.fifo
timeout = 1s"
	else
		wd="[watchdog]
mode = off"
	fi
	PG_INI_EXTRA[$i]="[ha]
synchronous_mode = $FO_SYNC_MODE
$FO_HA_EXTRA
$wd
${FO_TAGS[$i]:+[tags]
${FO_TAGS[$i]}}"
	pg_write_ini "$i"
}

fo_cleanup() {
	local rc=$? ns p w
	set +eE
	trap - ERR
	# a writer the test did not stop: on a test that passed so far it is
	# stopped and reaped like fo_writer_stop does, so that its failure
	# (exit status, or not stopping) fails the test too
	if ((rc == 0)); then
		for w in "${!FO_WPID[@]}"; do
			if ! fo_writer_halt "$w"; then
				printf '[%s %s] FAIL: %s\n' "$(date +%T.%3N)" "$PG_NAME" "$FO_WRITER_ERR" >&2
				rc=1
			fi
		done
	fi
	# writers and stand-ins first: a stand-in must not fire on a node the
	# cleanup is stopping
	for p in "${FO_WPID[@]}" "${FO_WDPID[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if ((rc != 0 && rc != 77)) && [[ -n $PG_DIR && -d $PG_DIR ]]; then
		local f
		for f in "$PG_DIR"/wd*.log; do
			[[ -f $f ]] && { echo "----- $f -----" >&2; tail -n 20 "$f" >&2; }
		done
		for f in "$PG_DIR"/w.*; do
			[[ -f $f && $f != *.stop && $f != *.err ]] || continue
			echo "----- $f (summary) -----" >&2
			fo_writer_summary_file "$f" >&2
		done
	fi
	# the namespaces' names go now; pg_cleanup then kills every process
	# by pid, which ends the namespaces themselves
	for ns in "${FO_NS_LIST[@]}"; do ip netns del "$ns" 2>/dev/null; done
	(exit "$rc")
	pg_cleanup
}

# ---------------------------------------------------------------- writer

# fo_table: the writer's table, through the read-write string
fo_table() {
	sql_rw "CREATE TABLE IF NOT EXISTS fo_w (id bigint PRIMARY KEY, port int, at timestamptz DEFAULT clock_timestamp())"
}

fo_targets() {
	local i out=
	for ((i = 1; i <= PG_NODES; i++)); do out+="${out:+,}$(fo_addr "$i"):$(pg_port "$i")"; done
	echo "$out"
}


# fo_writer_start NAME [FIRST_ID] [fo_writer options...]: a bounded writer
# (60 s at most unless --max-ms is given) in the background; by default
# over all nodes, from the client namespace when there is one. Ids of
# different writers must not collide: FIRST_ID (default 1).
fo_writer_start() {
	local name=$1 first=${2:-1}
	shift 2 || shift $#
	local f=$PG_DIR/w.$name
	: >"$f"
	rm -f "$f.stop"
	# no function or subshell in between: $! must be the writer itself
	# (ip netns exec execs it), so that the cleanup's kill reaches it
	local pre=()
	((FO_NS)) && pre=(ip netns exec "$FO_NS_CLIENT")
	"${pre[@]}" "$FO_WRITER" --out "$f" --targets "$(fo_targets)" \
		--first-id "$first" --max-ms 60000 --stop-file "$f.stop" "$@" \
		2>>"$PG_DIR/w.$name.err" &
	FO_WPID[$name]=$!
	log "writer $name started (pid $!)"
}

# fo_writer_start_in NS NAME FIRST_ID [options...]: a writer run in NS
fo_writer_start_in() {
	local ns=$1 name=$2 first=$3
	shift 3
	local f=$PG_DIR/w.$name
	: >"$f"
	rm -f "$f.stop"
	ip netns exec "$ns" "$FO_WRITER" --out "$f" --first-id "$first" \
		--max-ms 60000 --stop-file "$f.stop" "$@" 2>>"$PG_DIR/w.$name.err" &
	FO_WPID[$name]=$!
	log "writer $name started in $ns (pid $!)"
}

# fo_writer_stop NAME: ask writer NAME to stop (its stop file) and reap
# it. Fails the test if it does not stop within 10 s (it checks the file
# before each offer, and an offer is bounded by its timeouts) or if it
# exited non-zero, naming its exit status and its stderr: the record of a
# writer that failed cannot back the checks.
fo_writer_stop() {
	fo_writer_halt "$1" || fail "$FO_WRITER_ERR"
	log "writer $1 stopped: $(fo_writer_summary "$1")"
}

# fo_writer_halt NAME: fo_writer_stop without failing: returns 1 with the
# reason in FO_WRITER_ERR (for the cleanup, which must not exit early)
FO_WRITER_ERR=
fo_writer_halt() {
	local name=$1 p=${FO_WPID[$1]:-} rc=0
	FO_WRITER_ERR=
	[[ -n $p ]] || return 0
	touch "$PG_DIR/w.$name.stop"
	if ! wait_until -t 10 not pid_alive "$p"; then
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
		unset "FO_WPID[$name]"
		FO_WRITER_ERR="writer $name (pid $p) did not stop within 10 s of its stop file: killed"
		return 1
	fi
	wait "$p" 2>/dev/null || rc=$?
	unset "FO_WPID[$name]"
	if ((rc != 0)); then
		FO_WRITER_ERR="writer $name (pid $p) exited with $(signal_desc "$rc"): $(tail -n 5 "$PG_DIR/w.$name.err" 2>/dev/null | tr '\n' ' ')"
		return 1
	fi
}

# fo_acks_after NAME T_US [PORT]: acknowledged rows of writer NAME whose
# ack came after T_US (and that landed on PORT)
fo_acks_after() {
	awk -v t="$2" -v p="${3:-}" '$1 == "A" && $4 > t && (p == "" || $5 == p) { n++ } END { print n + 0 }' "$PG_DIR/w.$1"
}
fo_has_acks_after() { (($(fo_acks_after "$1" "$2" "${4:-}") >= $3)); }

# fo_wait_acks NAME N [SECONDS] [T_US] [PORT]: N acknowledged rows after T_US
fo_wait_acks() {
	local name=$1 n=$2 secs=${3:-20} t=${4:-0} port=${5:-}
	wait_until -t "$secs" fo_has_acks_after "$name" "$t" "$n" "$port" ||
		fail "writer $name: only $(fo_acks_after "$name" "$t" "$port") of $n acknowledged rows${port:+ on port $port} within $secs s (after t=$(((t - FO_T0) / 1000)) ms)"
}

fo_writer_summary_file() {
	awk -v b="$PG_BASE" '
		$1 == "A" { a++; on[$5]++ }
		$1 == "R" { r++; st[$6]++ }
		$1 == "U" { u++ }
		END {
			printf "%d acknowledged (", a + 0
			for (p in on) printf " node%d:%d", p - b - 20, on[p]
			printf " ), %d refused (", r + 0
			for (s in st) printf " %s:%d", s, st[s]
			printf " ), %d unknown outcome\n", u + 0
		}' "$1"
}
fo_writer_summary() { fo_writer_summary_file "$PG_DIR/w.$1"; }

# fo_acked_ids NAME...: every acknowledged id, sorted as text
fo_acked_ids() {
	local n
	for n in "$@"; do awk '$1 == "A" { print $2 }' "$PG_DIR/w.$n"; done | sort
}

# fo_check_lost I NAME...: (a) every row the writers acknowledged is on
# node I (the final primary, or a replica that caught up)
fo_check_lost() {
	local i=$1
	shift
	local rows=$PG_DIR/rows.node$i missing n
	sql_at "$i" "SELECT id FROM fo_w" | sort >"$rows" ||
		fail "cannot read fo_w on node$i"
	missing=$(comm -23 <(fo_acked_ids "$@") "$rows" | sort -n)
	n=$(fo_acked_ids "$@" | wc -l)
	if [[ -n $missing ]]; then
		local id w
		{
			echo "acknowledged rows missing on node$i (synchronous_mode=$FO_SYNC_MODE): $(wc -l <<<"$missing") of $n"
			for id in $(head -n 20 <<<"$missing"); do
				for w in "$@"; do
					awk -v id="$id" -v b="$PG_BASE" -v t0="$FO_T0" -v w="$w" '$1 == "A" && $2 == id {
						printf "  id %s (writer %s): sent %.3f s, acknowledged %.3f s by node%d (postmaster started %s)\n", id, w, ($3 - t0) / 1e6, ($4 - t0) / 1e6, $5 - b - 20, $6 }' "$PG_DIR/w.$w"
				done
			done
		} >&2
		fail "(a) $(wc -l <<<"$missing") acknowledged row(s) lost on node$i: $(head -n 20 <<<"$missing" | tr '\n' ' ')"
	fi
	log "(a) all $n acknowledged rows are on node$i"
}

# fo_windows NAME...: one line per PostgreSQL instance that acknowledged
# rows: "port pmstart first_send first_ack last_ack rows", by first_send
fo_windows() {
	local n
	for n in "$@"; do cat "$PG_DIR/w.$n"; done | awk '
		$1 == "A" {
			k = $5 " " $6
			if (!(k in fs) || $3 < fs[k]) fs[k] = $3
			if (!(k in fa) || $4 < fa[k]) fa[k] = $4
			if (!(k in la) || $4 > la[k]) la[k] = $4
			c[k]++
		}
		END { for (k in fs) print k, fs[k], fa[k], la[k], c[k] }' | sort -k3,3n
}

# fo_check_overlap NAME...: (b) the write windows of different PostgreSQL
# instances (nodes, and restarts of one node) are disjoint
fo_check_overlap() {
	local w prev_end=0 prev= bad=
	w=$(fo_windows "$@")
	[[ -n $w ]] || fail "(b) no acknowledged rows at all"
	log "(b) write windows (ms since the test's start; first send of an acknowledged row .. last ack):"
	while read -r port pm fs fa la c; do
		printf '    node%d (postmaster %s): %9.1f .. %9.1f  first ack %9.1f  %6d rows\n' \
			"$(port_node "$port")" "$pm" "$(((fs - FO_T0) / 100))e-1" "$(((la - FO_T0) / 100))e-1" \
			"$(((fa - FO_T0) / 100))e-1" "$c" >&2
		if [[ -n $prev ]] && ((fs <= prev_end)); then
			bad+="node$(port_node "$port") (postmaster $pm) accepted a row sent at $(((fs - FO_T0) / 1000)) ms while $prev accepted rows until $(((prev_end - FO_T0) / 1000)) ms; "
		fi
		if ((la > prev_end)); then
			prev_end=$la
			prev="node$(port_node "$port") (postmaster $pm)"
		fi
	done <<<"$w"
	[[ -z $bad ]] || fail "(b) overlapping write windows: $bad"
	log "(b) $(wc -l <<<"$w") write window(s), pairwise disjoint"
}

# fo_window_of PORT FIELD NAME...: FIELD (first_send|first_ack|last_ack)
# of the single window on PORT (fails if PORT has none or several)
fo_window_of() {
	local port=$1 field=$2
	shift 2
	local col
	case $field in first_send) col=3 ;; first_ack) col=4 ;; last_ack) col=5 ;; *) return 2 ;; esac
	fo_windows "$@" | awk -v p="$port" -v c="$col" '$1 == p { n++; v = $c } END { if (n != 1) exit 1; print v }'
}

# fo_check_pg_conf: no PostgreSQL log of this test says its configuration
# contains errors (pgwarden's reloads never ask for a restart-only change)
fo_check_pg_conf() {
	local i bad
	for ((i = 1; i <= PG_NODES; i++)); do
		bad=$(grep -h -B1 'contains errors' "$(pg_log "$i")" 2>/dev/null | head -n 4 || true)
		[[ -z $bad ]] || fail "node$i's PostgreSQL log: $bad"
	done
	log "no PostgreSQL log reports a configuration error"
}

# fo_max_gap NAME FROM_US TO_US: the longest time without an
# acknowledgement between FROM_US and TO_US (ms), and where it started
fo_max_gap() {
	awk -v f="$2" -v t="$3" -v t0="$FO_T0" '
		BEGIN { prev = f }
		$1 == "A" && $4 > f && $4 <= t { if ($4 - prev > g) { g = $4 - prev; at = prev } prev = $4 }
		END { if (t - prev > g) { g = t - prev; at = prev } printf "%d %d\n", g / 1000, (at - t0) / 1000 }' "$PG_DIR/w.$1"
}

# fo_first_ack_after NAME T_US [PORT]: microseconds from T_US to the
# first ack after it (on PORT), or fails
fo_first_ack_after() {
	awk -v t="$2" -v p="${3:-}" '$1 == "A" && $4 > t && (p == "" || $5 == p) { printf "%d\n", $4 - t; found = 1; exit } END { if (!found) exit 1 }' "$PG_DIR/w.$1"
}

# ---------------------------------------------------------------- cluster

# fo_timeline I: node I's timeline as its PostgreSQL reports it
fo_timeline() { sql_at "$1" "SELECT timeline_id FROM pg_control_checkpoint()"; }
# fo_list_tl I: the timeline `pgwarden list` shows for node I
fo_list_tl() { member_field timeline "node$1"; }
fo_role_state() { list_json | jq -r --arg n "node$1" '.[] | select(.name == $n) | "\(.role)/\(.state)"'; }
fo_is_role_state() { [[ $(fo_role_state "$1") == "$2" ]]; }
fo_primary_is() { [[ $(primary_idx 2>/dev/null) == "$1" ]]; }
fo_new_primary() { local n; n=$(primary_idx 2>/dev/null) && [[ $n != "$1" ]]; }

# fo_up: ports free, every node started, a healthy cluster within 60 s,
# the writer's table; P is the primary
P=
fo_up() {
	pg_ports_free
	fo_start_all
	pg_wait_healthy 60
	fo_table
	P=$(primary_idx) || fail "no single primary"
	log "primary node$P"
}

# raft_leader: the Raft leader's name (endpoints exits 1 when a member does
# not answer; its JSON still lists the others)
raft_leader() { { pgw --timeout 3 endpoints -o json 2>/dev/null || true; } | jq -er '[.[] | select(.is_leader == true) | .name] | if length == 1 then .[0] else error("no single leader") end'; }
raft_leader_is() { [[ $(raft_leader) == "$1" ]]; }

# fo_await_failover OLD T_US WRITER ACKS WHAT: bounded wait (30 s) for a
# primary other than node OLD, then for ACKS rows of WRITER acknowledged
# by it after T_US; sets N to the new primary and logs the write gap from
# WHAT (the event at T_US)
N=
fo_await_failover() {
	local old=$1 t=$2 w=$3 acks=$4 what=$5
	wait_until -t 30 fo_new_primary "$old" || {
		pgw list >&2 || true
		fail "no new primary within 30 s of $what"
	}
	N=$(primary_idx)
	fo_wait_acks "$w" "$acks" 20 "$t" "$(pg_port "$N")"
	log "write gap: $(($(fo_first_ack_after "$w" "$t" "$(pg_port "$N")") / 1000)) ms from $what to node$N's first acknowledged row"
}

# fo_rows_equal I J: nodes I and J hold the same writer rows
fo_digest() { sql_at "$1" "SELECT count(*) || ':' || md5(coalesce(string_agg(id::text, ',' ORDER BY id), '')) FROM fo_w"; }
fo_same_rows() { [[ $(fo_digest "$1" 2>/dev/null) == "$(fo_digest "$2" 2>/dev/null)" ]]; }

# fo_streaming_from R P: replica R's WAL receiver streams from node P
fo_streams_from() {
	local r=$1 p=$2 got
	got=$(sql_at "$r" "SELECT status || ' ' || sender_port FROM pg_stat_wal_receiver" 2>/dev/null) || return 1
	[[ $got == "streaming $(pg_port "$p")" ]]
}

# fo_log_count I PATTERN: lines of node I's log matching PATTERN (ERE)
fo_log_count() { grep -cE -- "$2" "$(node_log "$1")" || true; }

# ---------------------------------------------------------------- watchdog

# fo_wd_start I: the watchdog stand-in for node I (run as postgres, so
# that the FIFO it creates is the node's to open), killing node I's
# process group when keepalives stop; --persist so the node can arm it
# again after a magic close.
fo_wd_start() {
	local i=$1 pg=${PG_PID[$1]:?node not started}
	: "${WDFIFO:?WDFIFO must name the wdfifo binary}"
	[[ -x $WDFIFO ]] || fail "WDFIFO $WDFIFO is not executable"
	install -m 0755 "$WDFIFO" "$PG_DIR/bin/wdfifo"
	(cd / && exec setpriv --reuid=$PG_USER --regid=$PG_USER --init-groups \
		"$PG_DIR/bin/wdfifo" --fifo "$PG_DIR/wd$i.fifo" --timeout-ms 1000 \
		--kill-pgid "$pg" --log "$PG_DIR/wd$i.log" --persist \
		2>/dev/null </dev/null) &
	FO_WDPID[$i]=$!
	log "watchdog stand-in for node$i (pgid $pg): pid $!"
}

# fo_wd_fired_ms I: the CLOCK_MONOTONIC ms of node I's "watchdog fired"
fo_wd_fired_ms() {
	[[ -f $PG_DIR/wd$1.log ]] || return 1
	sed -n 's/.* mono=\([0-9]*\) .*watchdog fired.*/\1/p' "$PG_DIR/wd$1.log" | head -n 1 | grep .
}
fo_wd_armed() { grep -q ' armed$' "$PG_DIR/wd$1.log" 2>/dev/null; }

# fo_fencer_fired_ms I: the CLOCK_MONOTONIC ms of node I's fencer process
# firing ("fencer[NAME] fired mono=MS" in node I's log)
fo_fencer_fired_ms() {
	sed -n 's/.* fencer\[[^]]*\] fired mono=\([0-9]*\).*/\1/p' "$(node_log "$1")" 2>/dev/null | head -n 1 | grep .
}
# fo_fencer_armed I: node I's fencer process was armed (it led)
fo_fencer_armed() { grep -q "fencer\[node$1\] armed for postmaster" "$(node_log "$1")"; }
# fo_fired_ms I / fo_fired_wall I: when node I was fenced from outside its
# agent: by the watchdog stand-in (FO_WD=1) or else by the fencer process;
# CLOCK_MONOTONIC ms, and the log's wall-clock time stamp
fo_fired_ms() { if ((FO_WD)); then fo_wd_fired_ms "$1"; else fo_fencer_fired_ms "$1"; fi; }
fo_fired_wall() {
	if ((FO_WD)); then
		sed -n 's/^\([0-9T:.-]*Z\) mono=[0-9]* .*watchdog fired.*/\1/p' "$PG_DIR/wd$1.log" | head -n 1
	else
		sed -n 's/^\([0-9T:.-]*Z\) . fencer\[[^]]*\] fired mono=.*/\1/p' "$(node_log "$1")" | head -n 1
	fi
}
# fo_wait_fenced I PM T_US WHAT: node I was fenced from outside its agent
# (fo_fence_what) within 10 s, its postmaster PM and every postgres
# process of its data dir gone within 5 s more; logs the time from WHAT
# (the event at T_US)
fo_wait_fenced() {
	local i=$1 pm=$2 t=$3 what=$4 by
	by=$(fo_fence_what)
	wait_until -t 10 fo_fired_ms "$i" || fail "node$i's $by did not fire within 10 s of $what"
	log "node$i's $by fired $(($(fo_fired_ms "$i") - t / 1000)) ms after $what"
	wait_until -t 5 not pid_alive "$pm" || fail "node$i's postmaster $pm survived the $by"
	wait_until -t 5 no_postmaster "$i" || fail "postgres processes of node$i survive: $(postmasters_of "$i")"
}

# fo_leader_key_state: the leader key's value, create revision and lease
fo_leader_key_state() { pgw --timeout 3 get "/service/$PG_CLUSTER/leader" -o json | jq -c '.kvs[0] | [.value, .create_revision, .lease]'; }

fo_fence_what() { if ((FO_WD)); then echo "watchdog stand-in"; else echo "fencer process"; fi; }

# fo_start_node I: node_start (or its namespace form) plus its stand-in
fo_start_node() {
	node_start "$1"
	if ((FO_WD)); then fo_wd_start "$1"; fi
}
fo_start_all() {
	local i
	for ((i = 1; i <= PG_NODES; i++)); do fo_start_node "$i"; done
	# the witness (PG_WITNESS=1) runs no PostgreSQL: no stand-in
	for ((i = PG_NODES + 1; i <= PG_NODES + PG_WITNESS; i++)); do node_start "$i"; done
}

# ---------------------------------------------------------------- namespaces

# fo_ns_init TAG: use network namespaces pgwfo<TAG>{1,2,3,sw,c}; call
# before fo_init. Redefines the address-dependent helpers of pgcluster.sh.
fo_ns_init() {
	local tag=$1
	FO_NS=1
	FO_NS_PREFIX=pgwfo$PGW_TEST_NS_TAG$tag
	FO_NS_CLIENT=${FO_NS_PREFIX}c
	FO_NS_LIST=("${FO_NS_PREFIX}1" "${FO_NS_PREFIX}2" "${FO_NS_PREFIX}3" "${FO_NS_PREFIX}c" "${FO_NS_PREFIX}sw")
	command -v nft >/dev/null || skip "nft not installed"
	command -v ip >/dev/null || skip "ip not installed"

	api_url() { echo "http://10.200.0.$1:$(api_port "$1")"; }
	# endpoints of reachable nodes first: the CLI tries them in order
	endpoints_csv() {
		local i out= cut=
		for ((i = 1; i <= PG_NODES; i++)); do
			if [[ -n ${FO_CUT[$i]:-} ]]; then cut+="${cut:+,}$(api_url "$i")"; else out+="${out:+,}$(api_url "$i")"; fi
		done
		echo "$out${cut:+,$cut}"
	}
	pgw() { ip netns exec "$FO_NS_CLIENT" "$PG_DIR/bin/pgwarden" -e "$(endpoints_csv)" --token-file "$PG_DIR/token" "$@"; }
	rw_conninfo() {
		local i h= p=
		for ((i = 1; i <= PG_NODES; i++)); do
			h+="${h:+,}10.200.0.$i"
			p+="${p:+,}$(pg_port "$i")"
		done
		echo "host=$h port=$p user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=3"
	}
	sql_at() {
		ip netns exec "$FO_NS_CLIENT" psql -X -q -At -v ON_ERROR_STOP=1 \
			"host=10.200.0.$1 port=$(pg_port "$1") user=postgres dbname=postgres connect_timeout=3" -c "$2"
	}
	sql_rw() { ip netns exec "$FO_NS_CLIENT" psql -X -q -At -v ON_ERROR_STOP=1 "$(rw_conninfo)" -c "$1"; }
	node_addr() { echo "10.200.0.$1"; }
	node_netns() { echo "${FO_NS_PREFIX}$1"; }
	node_sock_dir() { echo "$PG_DIR/run$1"; }
	pg_hba_lines() {
		echo "host all all 10.200.0.0/24 scram-sha-256"
		echo "         host all all 127.0.0.1/32 scram-sha-256"
		echo "         host replication replicator 10.200.0.0/24 scram-sha-256"
	}
}

# fo_ns_up: create the namespaces (after fo_init, which installs the trap
# that deletes them); leftovers of an earlier run of this test are removed
fo_ns_up() {
	local ns i sw=${FO_NS_PREFIX}sw p
	for ns in "${FO_NS_LIST[@]}"; do
		if ip netns list | awk '{ print $1 }' | grep -qx "$ns"; then
			for p in $(ip netns pids "$ns" 2>/dev/null); do
				log "killing leftover pid $p in namespace $ns"
				kill -KILL "$p" 2>/dev/null || true
			done
			ip netns del "$ns"
		fi
	done
	for ns in "${FO_NS_LIST[@]}"; do ip netns add "$ns"; done
	ip -n "$sw" link add br0 type bridge
	ip -n "$sw" link set br0 up
	ip -n "$sw" link set lo up
	for i in 1 2 3 c; do
		local host=${FO_NS_PREFIX}$i addr=$i
		[[ $i == c ]] && addr=10
		ip -n "$sw" link add "sw$i" type veth peer name eth0 netns "$host"
		ip -n "$sw" link set "sw$i" master br0 up
		ip -n "$host" addr add "10.200.0.$addr/24" dev eth0
		ip -n "$host" link set eth0 up
		ip -n "$host" link set lo up
	done
	# psql and the writer (root) reach the nodes at 10.200.0.N
	printf '*:*:*:postgres:%s\n' "$(cat "$PG_DIR/superuser.pw")" >>"$PG_DIR/pgpass"
	wait_until -t 5 fo_ns_reaches "$FO_NS_CLIENT" 10.200.0.3 ||
		fail "namespaces: 10.200.0.3 does not answer from the client"
	log "namespaces up: ${FO_NS_LIST[*]}"
}

# fo_ns_reaches NS ADDR: a TCP SYN from NS to ADDR is answered (a refusal
# counts: there is no ping here); no answer within 1 s fails
fo_ns_reaches() {
	local rc=0
	ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/9" 2>/dev/null || rc=$?
	((rc != 124))
}

# fo_cut I: drop everything but loopback in node I's namespace
fo_cut() {
	ip netns exec "${FO_NS_PREFIX}$1" nft -f - <<'NFT'
table inet pgwfo_cut {
	chain input { type filter hook input priority 0; policy drop; iif "lo" accept; }
	chain output { type filter hook output priority 0; policy drop; oif "lo" accept; }
}
NFT
	FO_CUT[$1]=1
	log "partitioned node$1 (nftables in ${FO_NS_PREFIX}$1: all but lo dropped)"
}
fo_heal() {
	ip netns exec "${FO_NS_PREFIX}$1" nft delete table inet pgwfo_cut
	unset "FO_CUT[$1]"
	log "healed node$1"
}

# fo_wait_sync_published [SECONDS]: in synchronous mode, wait until the
# primary has published a non-empty synchronous set (/service/<c>/sync with
# k >= 1). Until then the controller promotes nobody (the primary ran
# asynchronously), so a failover test must start its event after it.
fo_sync_published() {
	pgw --timeout 3 get "/service/$PG_CLUSTER/sync" --print-value-only |
		jq -e '.k >= 1 and (.standbys | length) >= .k' >/dev/null
}
fo_wait_sync_published() {
	[[ $FO_SYNC_MODE != off ]] || return 0
	local t0
	t0=$(fo_now)
	wait_until -t "${1:-20}" fo_sync_published ||
		fail "synchronous_mode=$FO_SYNC_MODE: no synchronous set published within ${1:-20} s: $(pgw --timeout 3 get "/service/$PG_CLUSTER/sync" --print-value-only 2>&1)"
	log "synchronous set published ($(fo_since "$t0") ms): $(pgw --timeout 3 get "/service/$PG_CLUSTER/sync" --print-value-only)"
}

# fo_check_lsn_poll NEW COUNT: the controller asked the COUNT surviving
# replicas for their WAL position before naming a failover candidate (the
# last "WAL positions" line in any node's log), all of them answered, and
# node NEW, promoted, had the highest position received
fo_check_lsn_poll() {
	local n=$1 count=$2 line best
	line=$(grep -h 'ha-ctl WAL positions of' "$PG_DIR"/node*.log | sort | tail -n 1)
	[[ -n $line ]] || fail "no controller asked the replicas for their WAL position"
	log "controller: ${line#* I }"
	[[ $line == *"WAL positions of $count replica(s)"* ]] || fail "expected $count replicas asked: $line"
	[[ $line != *"=("* ]] || fail "a replica did not answer the controller: $line"
	# "nodeI=HI/LO,HI/LO ...": the nodes with the highest received position
	local e name recv v max=-1
	best=
	for e in ${line##*(received,replayed): }; do
		name=${e%%=*}
		recv=${e#*=}
		recv=${recv%%,*}
		v=$(((16#${recv%/*} << 32) + 16#${recv#*/}))
		if ((v > max)); then
			max=$v
			best=$name
		elif ((v == max)); then
			best+=" $name"
		fi
	done
	[[ " $best " == *" node$n "* ]] || fail "node$n was promoted but the highest received position was on $best: $line"
}

# fo_check_fired_first OLD NEW NAME...: node OLD was fenced from outside
# its agent (the watchdog stand-in, or the fencer process with FO_WD=0)
# before node NEW acknowledged its first row, and node OLD's PostgreSQL
# acknowledged no row sent after the fire (its last window's rows)
fo_check_fired_first() {
	local o=$1 n=$2
	shift 2
	local fired fa fs last_send what
	what=$(fo_fence_what)
	fired=$(fo_fired_ms "$o") || fail "node$o's $what never fired"
	fa=$(fo_window_of "$(pg_port "$n")" first_ack "$@") || fail "node$n has no single write window"
	fs=$(fo_window_of "$(pg_port "$n")" first_send "$@")
	# the log's mono= is in whole ms, truncated: the fire happened in
	# [fired, fired + 1) ms; each comparison takes the unfavourable end
	((fired * 1000 + 1000 <= fa)) ||
		fail "node$n acknowledged its first row at $(((fa - FO_T0) / 1000)) ms, before node$o's $what fired at $(((fired * 1000 - FO_T0) / 1000)) ms"
	# the last row the old PostgreSQL acknowledged: "send ack"
	local last
	last=$(for w in "$@"; do cat "$PG_DIR/w.$w"; done |
		awk -v p="$(pg_port "$o")" '$1 == "A" && $5 == p && $3 + 0 > m + 0 { m = $3; a = $4 } END { if (m == "") { m = 0; a = 0 } print m, a }')
	last_send=${last% *}
	[[ $fired =~ ^[0-9]+$ && $fa =~ ^[0-9]+$ && $fs =~ ^[0-9]+$ && $last_send =~ ^[0-9]+$ ]] ||
		fail "fo_check_fired_first: not numbers: fired=$fired first_ack=$fa first_send=$fs last=$last"
	# a row sent after the fire must not be acknowledged by the old
	# PostgreSQL; one sent within the fire's millisecond cannot be ordered
	# against it (the log has whole ms) and is reported, not failed
	((last_send < fired * 1000 + 1000)) ||
		fail "node$o's PostgreSQL acknowledged a row sent $(((last_send - fired * 1000) / 1000)) ms after its $what fired (sent at $last_send us, acknowledged at ${last#* } us; fired at ${fired} ms, CLOCK_MONOTONIC)"
	if ((last_send >= fired * 1000)); then
		log "NOTE: node$o's last acknowledged row was sent in the millisecond of the fire (sent $last_send us, acknowledged ${last#* } us, fired ${fired} ms): cannot be ordered"
	fi
	# and on the wall clock of the logs: the fire precedes the promotion
	local fired_wall prom
	fired_wall=$(fo_fired_wall "$o")
	prom=$(grep -E 'op=promote begin' "$(node_log "$n")" | tail -n 1 | cut -d' ' -f1)
	[[ -n $fired_wall && -n $prom ]] || fail "no fire time ($fired_wall) or no promotion in node$n's log ($prom)"
	[[ $fired_wall < $prom ]] || fail "node$n began its promotion at $prom, not after node$o's $what fired at $fired_wall"
	log "node$o's $what fired at $fired_wall, node$n began promoting at $prom"
	log "node$o: $what fired at $(((fired * 1000 - FO_T0) / 1000)) ms; its last acknowledged row was sent $((fired * 1000 - last_send)) us before and acknowledged $((fired * 1000 - ${last#* })) us before; node$n's first acknowledged row was sent $(((fs - fired * 1000) / 1000)) ms and acknowledged $(((fa - fired * 1000) / 1000)) ms after the fire"
}
