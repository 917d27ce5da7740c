#!/bin/bash
# smtp-source.sh - the core issue's benchmark: Postfix's smtp-source against postern and
# against a private Postfix (durable queue, discard delivery), alternating, in one run.
#
#   perf/smtp-source.sh [ROUNDS] [MESSAGES] [SESSIONS] [SIZE]     (defaults 3 3000 100 1024)
#
# Each round sends MESSAGES one-message connections, SESSIONS at a time, SIZE-byte messages,
# to postern and then to Postfix, and prints messages/s and server CPU seconds per 1,000
# messages (utime+stime of the server's processes, reaped children included, from /proc).
# Needs root (Postfix), POSTERN_BIN (default build/postern), loopback only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-3} messages=${2:-3000} sessions=${3:-100} size=${4:-1024}
postern=${POSTERN_BIN:-$here/../build/postern}
work=$(mktemp -d /tmp/postern-smtp-source-XXXXXX)
chmod 755 "$work" # Postfix's own users must reach its queue inside
pport=32000 fport=32010
hz=$(getconf CLK_TCK)

# CPU ticks of a process and every descendant, living or reaped
cpu_ticks() {
    local total=0 pid
    for pid in $(pstree -p -T "$1" | grep -o '([0-9]\+)' | tr -d '()'); do
        [ -r /proc/$pid/stat ] || continue
        total=$((total + $(awk '{print $14+$15+$16+$17}' /proc/$pid/stat)))
    done
    echo $total
}

cleanup() {
    [ -n "${postern_pid:-}" ] && kill "$postern_pid" 2>/dev/null && wait "$postern_pid" 2>/dev/null
    "$here/peers/postfix.sh" stop "$work/postfix" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"$postern" -bdf -C "$here/conf/postern-bench.conf" -oX $pport -D BENCH_DIR="$work/postern" \
    >"$work/postern.out" 2>&1 &
postern_pid=$!
"$here/peers/postfix.sh" start "$work/postfix" $fport >/dev/null
postfix_pid=$("$here/peers/postfix.sh" pid "$work/postfix")
sleep 1

run() { # name port pid
    local t0 c0 t1 c1
    c0=$(cpu_ticks "$3"); t0=$(date +%s.%N)
    /usr/sbin/smtp-source -m "$messages" -s "$sessions" -l "$size" -f a@bench.example \
        -t b@bench.example 127.0.0.1:"$2" >/dev/null
    t1=$(date +%s.%N)
    sleep 2 # let delivery of the last messages finish before reading CPU
    c1=$(cpu_ticks "$3")
    awk -v n="$1" -v m="$messages" -v t="$(echo "$t1 - $t0" | bc)" -v c="$((c1 - c0))" -v hz="$hz" \
        'BEGIN { printf "%-8s %8.1f msgs/s  %6.2f CPU s per 1000 msgs\n", n, m / t, c / hz / m * 1000 }'
}

echo "smtp-source: $rounds rounds, $messages messages, $sessions sessions, $size bytes"
for r in $(seq "$rounds"); do
    echo "round $r"
    run postern $pport $postern_pid
    run postfix $fport "$postfix_pid"
done
