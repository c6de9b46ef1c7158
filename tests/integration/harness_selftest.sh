#!/usr/bin/env bash
# harness_selftest: the test harness (tests/lib/) cannot pass a test in
# which a daemon died or a sanitizer spoke. Each case below is a small
# sub-test, run as its own process, that does one thing and then exits 0
# ("passes"); the harness must turn it into a failure, naming the cause:
#   died       a node exits by itself (SIGABRT, as an assertion or a
#              sanitizer abort would): fails, naming node1, "status 134
#              (SIGABRT)" and the tail of its log
#   restarted  a node dies by itself and the test starts it again: fails
#   asan       a node log holds "ERROR: AddressSanitizer": fails
#   ubsan      a node log holds "runtime error:": fails
#   killed     (control) the test kills the node through node_kill: passes
#   pg_died    the same as died for tests/lib/pgcluster.sh (a store-only
#              node, no PostgreSQL needed; root only)
#   writer     a failover writer (tests/lib/fo_writer.c) exits non-zero:
#              fo_writer_stop fails, naming its exit status and message
#   writer_end the same writer, never stopped by the test: the cleanup
#              fails the test
#   writer_ok  (control) a writer with nobody to write to, stopped: passes
# Ports: cluster.sh block 25800, pgcluster.sh block 28850, failover.sh
# block 33900 (all moved by PGW_TEST_PORT_SHIFT).
set -uo pipefail
: "${PGWARDEN:?PGWARDEN must name the pgwarden binary}"
LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)
T=$(mktemp -d /tmp/pgw-selftest.XXXXXX)
trap 'rm -rf "$T"' EXIT
failures=0

say() { printf '[%s harness_selftest] %s\n' "$(date +%T.%3N)" "$*" >&2; }

# case NAME WANT_RC PATTERN: run sub-test NAME (the script on stdin); its
# exit status must be WANT_RC ("nonzero" or 0) and its output must match
# the extended regex PATTERN (lines joined by spaces)
case_() {
	local name=$1 want=$2 pat=$3 rc=0 f=$T/$1.sh
	cat >"$f"
	timeout 120 bash "$f" >"$T/$name.out" 2>&1 || rc=$?
	local ok=1
	if [[ $want == nonzero ]]; then ((rc != 0 && rc != 77)) || ok=0; else ((rc == want)) || ok=0; fi
	tr '\n' ' ' <"$T/$name.out" | grep -qE -- "$pat" || ok=0
	if ((ok)); then
		say "ok: $name (exit $rc, output matches '$pat')"
	else
		say "FAIL: $name: exit $rc (wanted $want), output must match '$pat'; it was:"
		sed 's/^/    | /' "$T/$name.out" >&2
		failures=$((failures + 1))
	fi
}

CL_HEAD="source '$LIB/cluster.sh'
CL_NODES=1
cl_init 25800
cl_ports_free
cl_start_all
wait_until status 1 || fail 'node1 does not answer'"

case_ died nonzero 'FAIL: node1 \(pid [0-9]+\) exited unexpectedly with status 134 \(SIGABRT\)' <<EOF
$CL_HEAD
kill -ABRT "\$(node_pid 1)"
wait_until not node_running 1 || fail 'node1 survived SIGABRT'
exit 0
EOF

case_ restarted nonzero 'node1 died before the test started it again' <<EOF
$CL_HEAD
kill -ABRT "\$(node_pid 1)"
wait_until not node_running 1 || fail 'node1 survived SIGABRT'
node_start 1
exit 0
EOF

case_ asan nonzero 'FAIL: sanitizer report in .*node1\.log' <<EOF
$CL_HEAD
echo '==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x1' >>"\$(node_log 1)"
exit 0
EOF

case_ ubsan nonzero 'FAIL: sanitizer report in .*node1\.log' <<EOF
$CL_HEAD
echo 'raft-store/rs_store.c:1:1: runtime error: signed integer overflow' >>"\$(node_log 1)"
exit 0
EOF

case_ killed 0 'PASS' <<EOF
$CL_HEAD
node_kill 1
exit 0
EOF

if [[ $(id -u) == 0 ]] && id postgres >/dev/null 2>&1; then
	case_ pg_died nonzero 'FAIL: node1 \(pid [0-9]+\) exited unexpectedly with status 134 \(SIGABRT\)' <<EOF
source '$LIB/pgcluster.sh'
PG_NODES=0
PG_WITNESS=1
pg_init 28850
pg_ports_free
pg_start_all
wait_until curl -sf --max-time 2 "\$(api_url 1)/status" || fail 'node1 does not answer'
kill -ABRT "\$(node_pid 1)"
wait_until not node_running 1 || fail 'node1 survived SIGABRT'
exit 0
EOF

	: "${FO_WRITER:?FO_WRITER must name the fo_writer binary}"
	FO_HEAD="source '$LIB/failover.sh'
fo_init 33900"
	case_ writer nonzero 'FAIL: writer w \(pid [0-9]+\) exited with status 2: usage: fo_writer' <<EOF
$FO_HEAD
fo_writer_start w 1 --no-such-option 1
wait_until not pid_alive "\${FO_WPID[w]}" || fail 'the writer runs on'
fo_writer_stop w
exit 0
EOF

	case_ writer_end nonzero 'FAIL: writer w \(pid [0-9]+\) exited with status 2: usage: fo_writer' <<EOF
$FO_HEAD
fo_writer_start w 1 --no-such-option 1
exit 0
EOF

	case_ writer_ok 0 'writer w stopped: 0 acknowledged.*PASS' <<EOF
$FO_HEAD
fo_writer_start w 1 --connect-timeout-ms 200
sleep 0.5
fo_writer_stop w
exit 0
EOF
else
	say "not root or no postgres user: the pgcluster.sh and failover.sh cases are not run"
fi

if ((failures)); then
	say "FAILED: $failures case(s)"
	exit 1
fi
say "PASS"
