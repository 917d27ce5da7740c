#!/usr/bin/env bash
# tools/setup.sh - the project's one set-up script (README quick start, CI).
#
#   tools/setup.sh run    install missing Debian packages, build, start postern -bdf on the
#                         embedded default config (127.0.0.1:2525, mail to ./var/mail/<user>/)
#   tools/setup.sh test   install, build, run the whole suite (ctest), then again in the
#                         ASan+UBSan and the TSan builds
#   tools/setup.sh build  install and build only
#
# Environment: BUILD_DIR (default ./build), POSTERN_SKIP_ASAN=1 / POSTERN_SKIP_TSAN=1 to skip
# the ASan+UBSan / TSan passes,
# POSTERN_SKIP_INSTALL=1 to skip apt-get (offline rebuilds).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build_dir=${BUILD_DIR:-$here/build}
action=${1:-build}

# Every package the build, the tests and the perf suite need.
packages=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libssl-dev openssl liburcu-dev libhiredis-dev libspf2-dev libopendmarc-dev libjemalloc-dev
  libcmocka-dev libpcre2-dev
  python3 python3-pytest swaks haproxy redis-server postfix util-linux procps iproute2
  publicsuffix perl libmariadb3 libidn12 strace
)

install_packages() {
  [ "${POSTERN_SKIP_INSTALL:-0}" = 1 ] && return 0
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  # Postfix is installed only for its tools (smtp-source, smtp-sink) and as a perf peer:
  # "No configuration" keeps it from becoming or starting the system MTA.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  local dir=$1; shift
  cmake -S "$here" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

run_tests() {
  local dir=$1
  (cd "$dir" && ctest --output-on-failure -j 2 --timeout 900)
}

install_packages
case "$action" in
  build)
    build "$build_dir" -DPOSTERN_WERROR=ON
    ;;
  run)
    build "$build_dir"
    mkdir -p var
    echo "postern: starting on 127.0.0.1:2525 (embedded default config). Try:"
    echo "  swaks --server 127.0.0.1:2525 --to user@localhost"
    echo "then look in ./var/mail/user/new/ and ./var/log/mainlog. Ctrl-C stops it."
    exec "$build_dir/postern" -bdf
    ;;
  test)
    build "$build_dir" -DPOSTERN_WERROR=ON
    run_tests "$build_dir"
    # The sanitizer builds set their runtime options per test (tests/CMakeLists.txt).
    if [ "${POSTERN_SKIP_ASAN:-0}" != 1 ]; then
      build "$build_dir-asan" -DPOSTERN_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug
      run_tests "$build_dir-asan"
    fi
    if [ "${POSTERN_SKIP_TSAN:-0}" != 1 ]; then
      build "$build_dir-tsan" -DPOSTERN_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug
      run_tests "$build_dir-tsan"
    fi
    ;;
  *)
    echo "usage: $0 run|test|build" >&2
    exit 2
    ;;
esac
