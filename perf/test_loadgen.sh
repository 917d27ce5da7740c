#!/bin/bash
# test_loadgen.sh LOADGEN - the load generator against Postfix's smtp-sink: 200 messages
# over 20 connections, plain and pipelined, with PROXY v2 off; each run must report
# "200 sent, 0 failed, 0 errors". Exits 77 (skipped) when smtp-sink is not installed.
set -u
LOADGEN=${1:?usage: test_loadgen.sh path/to/loadgen}
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$SINK" ] || { echo "smtp-sink not installed: skipped"; exit 77; }

# a free loopback port
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
trap 'kill $SINK_PID 2>/dev/null; wait $SINK_PID 2>/dev/null; rm -rf "$DIR"' EXIT
(cd "$DIR" && exec "$SINK" -u nobody -m 2000 127.0.0.1:$PORT 1024) &
SINK_PID=$!
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.1
done

fail=0
run() {
    local out
    out=$("$LOADGEN" --port "$PORT" --duration 30 --timeout 10 "$@")
    local rc=$?
    local result
    result=$(printf '%s\n' "$out" | grep '^result:')
    if [ $rc -ne 0 ] || [ "$result" != "result: 200 sent, 0 failed, 0 errors" ]; then
        echo "FAIL ($*): exit $rc"
        printf '%s\n' "$out"
        fail=1
    else
        echo "ok   ($*): $result"
    fi
}
run -c 20 -m 200 -k 5
run -c 20 -m 200 -k 10 --pipelining --rcpts 3
run -c 10 -m 200 -k 1 --size-dist 512:50,4096:40,65536:10
run -c 20 -m 200 -k 4 --rate 2000 --pipelining
run -c 5 -m 200 -k 50 --idle 50

# JSON output carries the same count
json=$("$LOADGEN" --port "$PORT" -c 4 -m 200 -k 50 --json --duration 30)
if ! printf '%s' "$json" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["messages"]["ok"] == 200, r["messages"]
assert r["error_total"] == 0, r["errors"]
assert r["latency_ms"]["message"]["count"] == 200
'; then
    echo "FAIL: --json"; printf '%s\n' "$json"; fail=1
else
    echo "ok   (--json)"
fi

# refuses a target that is not loopback
if "$LOADGEN" --host 192.0.2.1 --port 25 -m 1 >/dev/null 2>&1; then
    echo "FAIL: accepted a non-loopback target"; fail=1
else
    echo "ok   (non-loopback target refused)"
fi
exit $fail
