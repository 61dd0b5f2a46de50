#!/bin/sh
# Runs every benchmark in bench/ one after the other (they must not overlap: each measures time
# or CPU on this machine), printing each one's figures and saving them under OUT.
#
#   bench/run-all.sh [BUILD_DIR] [OUT_DIR]
#
# BUILD_DIR: a release-like build (default $AKSSPARK_BUILD_DIR, else ./build); OUT_DIR: where each
# benchmark's output goes (default /tmp/aksspark-bench-<date>). Needs python3, a C compiler (the
# socket benchmark's echo helpers), curl, strace and oidc-agent-cli. Takes about 15 minutes.
# Not run in CI. The long soak and the 200-kill crash run are separate (see bench/RESULTS.md).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-${AKSSPARK_BUILD_DIR:-$src/build}}
out=${2:-/tmp/aksspark-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
export AKSSPARK_BUILD_DIR="$build" AKSSPARK_SOURCE_DIR="$src"

run() {
        name=$1
        shift
        echo "### $name: $*"
        "$@" 2>&1 | tee "$out/$name.txt"
        echo
}

{
        echo "machine: nproc=$(nproc) cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) kernel=$(uname -r)"
        echo "build: $build ($(cd "$src" && git rev-parse --short HEAD 2>/dev/null || echo unknown))"
} | tee "$out/machine.txt"

run socket python3 "$here/bench_socket.py" --build "$build"
run check python3 "$here/bench_check.py" --build "$build"
run refresh python3 "$here/bench_refresh.py" --build "$build"
run startup python3 "$here/bench_startup.py" --build "$build"
run memory python3 "$here/bench_memory.py" --build "$build"
run trim python3 "$here/bench_trim.py" --build "$build"
run idle python3 "$here/bench_idle.py" --build "$build"
run jumphost python3 "$here/bench_jumphost.py" --build "$build"
run kubelogin python3 "$here/bench_kubelogin.py" --build "$build"

echo "all results in $out"
