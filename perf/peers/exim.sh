#!/bin/bash
# exim.sh - a private Exim 4.96 (Debian's exim4-daemon-heavy) for the comparison suite,
# unpacked into a scratch directory: it never replaces the system's MTA (Postfix).
#
#   exim.sh setup                            download + unpack once (cached)
#   exim.sh start DIR PORT [PROXY_PORT]      write DIR/exim.conf, start the daemon
#   exim.sh stop DIR                         stop it (waits up to 15 s)
#   exim.sh pid DIR                          print the daemon's pid
#
# Cache: $PERF_CACHE (default /var/tmp/postern-perf)/exim/{debs,root}. The packages'
# shared libraries that Postfix's machine lacks (libmariadb3, libidn12) must be
# installed: `apt-get install libmariadb3 libidn12`; setup says so if they are missing.
#
# The instance listens on 127.0.0.1:PORT and, if given, 127.0.0.1:PROXY_PORT where
# hosts_proxy applies (PROXY v1/v2 required from 127.0.0.1 on that port only). It
# accepts any recipient at bench.example and routes it to a redirect router with
# data = :blackhole:, so every message is received into the spool (Exim fsyncs the
# -D and -H files and the input/ directory before its 250), delivered at once by
# a fresh `exim -Mc` process, and thrown away. Limits raised: smtp_accept_max 6000,
# backlog 1024, no per-connection queueing. host_lookup is unset; it still resolves
# PROXY clients' names, so the daemon runs under nsrun.sh (/etc/resolv.conf naming
# 127.0.0.1) and no query leaves the machine. Needs root.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${PERF_CACHE:-/var/tmp/postern-perf}/exim
EXIM=$CACHE/root/usr/sbin/exim4

usage() {
    echo "usage: exim.sh setup | start DIR PORT [PROXY_PORT] | stop DIR | pid DIR" >&2
    exit 2
}

cmd_setup() {
    if [ ! -x "$EXIM" ]; then
        mkdir -p "$CACHE/debs" "$CACHE/root"
        (cd "$CACHE/debs" && apt-get download exim4-daemon-heavy exim4-base) >&2
        for deb in "$CACHE"/debs/*.deb; do
            dpkg -x "$deb" "$CACHE/root"
        done
    fi
    local missing
    missing=$(ldd "$EXIM" | awk '/not found/ {print $1}')
    if [ -n "$missing" ]; then
        echo "exim: missing libraries: $missing (apt-get install libmariadb3 libidn12)" >&2
        return 1
    fi
    getent passwd Debian-exim >/dev/null || useradd -r -M -d /nonexistent -s /usr/sbin/nologin Debian-exim
}

write_conf() {
    local dir=$1 port=$2 proxy_port=$3 ports=$2 proxy_hosts=""
    if [ -n "$proxy_port" ]; then
        ports="$port : $proxy_port"
        # hosts_proxy is a host list, expanded per connection: only the PROXY port
        proxy_hosts="\${if =={\$received_port}{$proxy_port}{127.0.0.1}{}}"
    fi
    cat >"$dir/exim.conf" <<EOF
# private benchmark instance written by perf/peers/exim.sh
primary_hostname = exim.bench.example
exim_path = $EXIM
spool_directory = $dir/spool
log_file_path = $dir/log/%slog
pid_file_path = $dir/exim.pid
local_interfaces = 127.0.0.1
daemon_smtp_ports = $ports
hosts_proxy = $proxy_hosts
never_users = root
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
smtp_accept_max = 6000
smtp_accept_max_per_host =
smtp_accept_queue_per_connection = 0
smtp_accept_reserve = 0
smtp_connect_backlog = 1024
message_size_limit = 50M
prdr_enable = true
keep_environment =
domainlist bench_domains = bench.example
acl_smtp_rcpt = acl_check_rcpt

begin acl

acl_check_rcpt:
  accept  domains = +bench_domains
  deny    message = relay not permitted

begin routers

blackhole:
  driver = redirect
  domains = +bench_domains
  data = :blackhole:

begin transports

begin retry

*   *   F,1h,15m
EOF
}

cmd_start() {
    local dir=$1 port=$2 proxy_port=${3:-}
    cmd_setup
    mkdir -p "$dir/spool" "$dir/log"
    dir=$(cd "$dir" && pwd)
    chown Debian-exim "$dir/spool" "$dir/log"
    write_conf "$dir" "$port" "$proxy_port"
    "$EXIM" -C "$dir/exim.conf" -bV >/dev/null || {
        "$EXIM" -C "$dir/exim.conf" -bV >&2
        return 1
    }
    rm -f "$dir/exim.pid"
    # -bdf: stay in the foreground (so whoever started us is the parent); detach here
    setsid "$HERE/nsrun.sh" "$EXIM" -C "$dir/exim.conf" -bdf -oP "$dir/exim.pid" \
        </dev/null >>"$dir/log/stdout" 2>&1 &
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && [ -s "$dir/exim.pid" ]; then
            echo "exim: started in $dir on 127.0.0.1:$port${proxy_port:+ (PROXY on $proxy_port)}," \
                "pid $(cat "$dir/exim.pid")"
            return 0
        fi
        sleep 0.1
    done
    echo "exim: not listening on $port after 10 s; see $dir/log/" >&2
    return 1
}

cmd_stop() {
    local dir=$1 pid
    pid=$(cat "$dir/exim.pid" 2>/dev/null) || { echo "exim: not running in $dir"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/exim.pid"; echo "exim: stopped ($dir)"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/exim.pid"
    echo "exim: killed after 15 s ($dir)"
}

[ $# -ge 1 ] || usage
case $1 in
setup) cmd_setup ;;
start) [ $# -ge 3 ] || usage; cmd_start "$2" "$3" "${4:-}" ;;
stop) [ $# -ge 2 ] || usage; cmd_stop "$2" ;;
pid) [ $# -ge 2 ] || usage; cat "$2/exim.pid" ;;
*) usage ;;
esac
