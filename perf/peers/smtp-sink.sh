#!/bin/bash
# smtp-sink.sh - Postfix's smtp-sink as the "stores nothing" reference server.
#
#   smtp-sink.sh start DIR PORT    listen on 127.0.0.1:PORT, pid in DIR/smtp-sink.pid
#   smtp-sink.sh stop DIR
#   smtp-sink.sh pid DIR
#
# smtp-sink answers every command at once and throws the mail away without writing
# anything: an upper bound on what the network path and the load generator can do,
# not an MTA. Concurrency bound raised to 20000 (-m) and backlog 1024 so the idle-
# connection scenario is not limited by its defaults (256). No PROXY support.
set -eu
usage() {
    echo "usage: smtp-sink.sh start DIR PORT | stop DIR | pid DIR" >&2
    exit 2
}
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)

cmd_start() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -x "$SINK" ] || { echo "smtp-sink: not installed (package postfix)" >&2; return 1; }
    # run from DIR: smtp-sink writes nothing, but keep its cwd out of the tree
    (cd "$dir" && exec setsid "$SINK" -u nobody -m 20000 "127.0.0.1:$port" 1024 \
        </dev/null >>"$dir/smtp-sink.log" 2>&1) &
    echo $! >"$dir/smtp-sink.pid"
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "smtp-sink: started on 127.0.0.1:$port, pid $(cat "$dir/smtp-sink.pid")"
            return 0
        fi
        sleep 0.1
    done
    echo "smtp-sink: not listening on $port; see $dir/smtp-sink.log" >&2
    return 1
}

cmd_stop() {
    local dir=$1 pid
    pid=$(cat "$dir/smtp-sink.pid" 2>/dev/null) || { echo "smtp-sink: not running"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/smtp-sink.pid"
    echo "smtp-sink: stopped"
}

[ $# -ge 2 ] || usage
case $1 in
start) [ $# -ge 3 ] || usage; cmd_start "$2" "$3" ;;
stop) cmd_stop "$2" ;;
pid) cat "$2/smtp-sink.pid" ;;
*) usage ;;
esac
