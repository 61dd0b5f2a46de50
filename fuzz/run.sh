#!/bin/sh
# Runs every libFuzzer target for SECONDS each on a scratch copy of its seed corpus (the committed
# corpus is never grown) and prints executions and crashes; exits 1 if any target crashed.
#
#   fuzz/run.sh [SECONDS_PER_TARGET [TARGET...]]     default 10 s, every target
#
# FUZZ_BUILD_DIR (default build-fuzz) is set up with clang when missing. Reproducers of crashes
# are kept in FUZZ_ARTIFACTS (default $FUZZ_BUILD_DIR/fuzz/artifacts/<target>/).
set -eu

seconds=${1:-10}
[ $# -gt 0 ] && shift
case $seconds in
''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET [TARGET...]]" >&2; exit 64 ;;
esac

src=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
artifacts=${FUZZ_ARTIFACTS:-$build/fuzz/artifacts}

if [ $# -gt 0 ]; then
        targets=$*
else
        targets=
        for f in "$src"/fuzz/fuzz-*.c; do
                f=${f##*/fuzz-}
                targets="$targets ${f%.c}"
        done
fi

if [ ! -f "$build/build.ninja" ]; then
        CC=${FUZZ_CC:-clang} meson setup "$build" "$src" -Dfuzzers=true -Db_lundef=false -Dtests=false >/dev/null
fi
ninja_targets=
for t in $targets; do
        ninja_targets="$ninja_targets fuzz/fuzz-$t"
done
# shellcheck disable=SC2086 # one word per target
ninja -C "$build" $ninja_targets >/dev/null

scratch=$(mktemp -d "${TMPDIR:-/tmp}/aksspark-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM

n_targets=0
total_execs=0
total_crashes=0
for t in $targets; do
        work=$scratch/$t
        mkdir -p "$work/corpus" "$work/artifacts"
        if [ -d "$src/fuzz/corpus/$t" ]; then
                cp -R "$src/fuzz/corpus/$t/." "$work/corpus/"
        fi

        # A unit that runs 10 s is a hang: libFuzzer reports it like a crash.
        rc=0
        "$build/fuzz/fuzz-$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
                -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1 || rc=$?

        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
        execs=${execs:-0}
        rate=$((execs / (seconds > 0 ? seconds : 1)))
        crashes=$(find "$work/artifacts" -type f | wc -l)
        if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
                crashes=1 # died without leaving an input behind
        fi

        echo "fuzz-$t: $execs executions in $seconds s ($rate/s), $crashes crashes"
        if [ "$crashes" -gt 0 ]; then
                mkdir -p "$artifacts/$t"
                cp "$work/artifacts/"* "$artifacts/$t/" 2>/dev/null || true
                cp "$work/log" "$artifacts/$t/log"
                grep -E 'ERROR|invariant failed|^    #[0-9]' "$work/log" | head -n 30 | sed 's/^/    /'
                echo "    reproducers and log: $artifacts/$t/"
        fi

        n_targets=$((n_targets + 1))
        total_execs=$((total_execs + execs))
        total_crashes=$((total_crashes + crashes))
done

echo "fuzz: $n_targets targets, $total_execs executions, $total_crashes crashes"
[ "$total_crashes" -eq 0 ]
