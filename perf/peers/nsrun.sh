#!/bin/bash
# nsrun.sh CMD [ARGS...] - run CMD in a private mount namespace whose /etc/resolv.conf
# names only 127.0.0.1, so that no DNS query made by CMD or its children (PTR lookups of
# PROXY clients, resolver start-up queries) can leave the machine. Needs root.
# Nothing else changes: same network, same users, same files.
set -eu
[ $# -ge 1 ] || { echo "usage: nsrun.sh CMD [ARGS...]" >&2; exit 2; }
RESOLV=${PERF_RESOLV_CONF:-/tmp/postern-perf-resolv.conf}
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$RESOLV.tmp.$$"
mv -f "$RESOLV.tmp.$$" "$RESOLV"
exec unshare -m --propagation private /bin/sh -c \
    'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$RESOLV" "$@"
