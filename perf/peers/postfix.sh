#!/bin/bash
# postfix.sh - a private Postfix instance for the comparison suite, beside (never
# instead of) the system's Postfix, which stays stopped.
#
#   postfix.sh start DIR PORT [PROXY_PORT]   write DIR/main.cf + master.cf, start it
#   postfix.sh stop DIR                      stop it (waits up to 15 s)
#   postfix.sh pid DIR                       print the master's pid
#
# The instance listens on 127.0.0.1:PORT (plain SMTP) and, if given, 127.0.0.1:PROXY_PORT
# with smtpd_upstream_proxy_protocol = haproxy (PROXY v1 and v2, as from haproxy's
# send-proxy-v2). It accepts mail for bench.example from anyone (relay_domains) and
# for anything from 127.0.0.0/8, queues it durably (cleanup fsyncs the queue file
# before smtpd's 250) and delivers every message with the discard: transport.
# Limits are raised so a benchmark measures Postfix, not its defaults: process limit
# 6000 (one smtpd per connection, idle ones included), no per-client connection
# limit, in_flow_delay 0, no client hostname lookup. The master runs under nsrun.sh
# (a private /etc/resolv.conf naming 127.0.0.1) so nothing it resolves leaves the
# machine. Needs root; the postfix user and postdrop group (package postfix) exist.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

usage() {
    echo "usage: postfix.sh start DIR PORT [PROXY_PORT] | stop DIR | pid DIR" >&2
    exit 2
}

write_main_cf() {
    local dir=$1
    cat >"$dir/main.cf" <<EOF
# private benchmark instance written by perf/peers/postfix.sh
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $dir/log/maillog
maillog_file_prefixes = $dir
myhostname = postfix.bench.example
mydomain = bench.example
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains = bench.example
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, permit_auth_destination, reject
smtpd_recipient_restrictions =
local_recipient_maps =
default_transport = discard
relay_transport = discard
local_transport = discard
virtual_transport = discard
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
default_process_limit = 6000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
in_flow_delay = 0
smtpd_timeout = 300s
message_size_limit = 52428800
EOF
}

write_master_cf() {
    local dir=$1 port=$2 proxy_port=$3
    {
        echo "# private benchmark instance written by perf/peers/postfix.sh"
        echo "127.0.0.1:$port inet n - n - - smtpd"
        if [ -n "$proxy_port" ]; then
            echo "127.0.0.1:$proxy_port inet n - n - - smtpd"
            echo "  -o smtpd_upstream_proxy_protocol=haproxy"
        fi
        cat <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    } >"$dir/master.cf"
}

master_pid() {
    local f=$1/queue/pid/master.pid
    [ -s "$f" ] && tr -d ' \n' <"$f"
}

cmd_start() {
    local dir=$1 port=$2 proxy_port=${3:-}
    mkdir -p "$dir/queue" "$dir/data" "$dir/log"
    dir=$(cd "$dir" && pwd)
    chown postfix "$dir/data"
    write_main_cf "$dir"
    write_master_cf "$dir" "$port" "$proxy_port"
    if ! postfix -c "$dir" check; then
        # Postfix prints its reason only to a terminal (or to the log it cannot open yet)
        script -qec "postfix -c '$dir' check" /dev/null >&2 || true
        return 1
    fi
    "$HERE/nsrun.sh" postfix -c "$dir" start
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "postfix: started in $dir on 127.0.0.1:$port${proxy_port:+ (PROXY on $proxy_port)}," \
                "master pid $(master_pid "$dir")"
            return 0
        fi
        sleep 0.1
    done
    echo "postfix: not listening on $port after 10 s; see $dir/log/maillog" >&2
    return 1
}

cmd_stop() {
    local dir=$1 pid
    pid=$(master_pid "$dir") || { echo "postfix: not running in $dir"; return 0; }
    postfix -c "$dir" stop || true
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || { echo "postfix: stopped ($dir)"; return 0; }
        sleep 0.1
    done
    postfix -c "$dir" abort || kill -KILL "$pid" 2>/dev/null || true
    echo "postfix: aborted after 15 s ($dir)"
}

[ $# -ge 2 ] || usage
case $1 in
start) [ $# -ge 3 ] || usage; cmd_start "$2" "$3" "${4:-}" ;;
stop) cmd_stop "$2" ;;
pid) master_pid "$2" || exit 1; echo ;;
*) usage ;;
esac
