#!/bin/bash
# Run the pgctl system test (tests/integration/pgctl_system.c) as the
# postgres user: initdb and postgres refuse root. HOME and cwd are ones
# postgres can use. The test directory is made here so that, whatever
# happens to the program (a sanitizer abort, a timeout), every postmaster
# whose postmaster.pid lies under it is stopped by pid afterwards.
# Exit 77 (skip) when there is no postgres user.
set -u
bin=$1
as_pg=()
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || { echo "SKIP: no postgres user"; exit 77; }
	as_pg=(runuser -u postgres --)
elif [ "$(id -un)" != postgres ]; then
	echo "SKIP: run as root or postgres"
	exit 77
fi
cd /tmp || exit 1
dir=$("${as_pg[@]}" mktemp -d /tmp/pgc.XXXXXX) || exit 1
chmod 700 "$dir"

cleanup() {
	local f pid
	for f in "$dir"/*/postmaster.pid; do
		[ -f "$f" ] || continue
		pid=$(head -n 1 "$f")
		case $pid in '' | *[!0-9]*) continue ;; esac
		# Only a postgres whose cwd is that data directory.
		[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(dirname "$f")" ] || continue
		echo "pgctl_system.sh: stopping leftover postmaster $pid" >&2
		kill -QUIT "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${as_pg[@]}" env HOME=/var/lib/postgresql PGC_TEST_DIR="$dir" \
	${ASAN_OPTIONS+ASAN_OPTIONS="$ASAN_OPTIONS"} \
	${UBSAN_OPTIONS+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
	${PGC_DEBUG+PGC_DEBUG="$PGC_DEBUG"} "$bin"
