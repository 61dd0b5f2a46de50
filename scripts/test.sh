#!/bin/bash
# Install what is needed, build, and run the whole test suite (unit and integration).
# Usage: scripts/test.sh [BUILD_DIR [MESON_OPTION...]]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
builddir=${1:-build}
shift || true

if [ -d "$builddir" ]; then
        meson setup --reconfigure "$builddir" "$@" >/dev/null
else
        meson setup "$builddir" "$@" >/dev/null
fi
ninja -C "$builddir"
# AKSSPARK_TEST_ARGS: more meson test arguments (CI's sanitizer pass leaves out a suite).
# shellcheck disable=SC2086 # one word per argument
meson test -C "$builddir" --print-errorlogs --num-processes 2 ${AKSSPARK_TEST_ARGS:-}
