#!/bin/bash
# Build the Debian package from this checkout in a copy of the tree, so the checkout stays
# clean (dpkg-buildpackage writes obj-*/ and debian/ files, and the .deb to the parent dir).
#   scripts/build-deb.sh OUTDIR     -> OUTDIR/aksspark-tokend_*.deb (+ -dbgsym, .buildinfo,
#                                      .changes, lintian.txt)
# The copy holds the files git knows about plus untracked ones not ignored (work in progress is
# packaged as it is). Needs the packages of scripts/install-deps.sh.
set -euo pipefail

out=${1:?usage: build-deb.sh OUTDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /var/tmp/aksspark-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT

version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tree="$work/aksspark-tokend-${version%-*}"
mkdir "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked and untracked-but-not-ignored files that exist (a deleted file stays out).
        (cd "$src" && git ls-files -z --cached --others --exclude-standard |
                python3 -c 'import os,sys; sys.stdout.write("".join(p + "\0" for p in sys.stdin.read().split("\0") if p and os.path.lexists(p)))' |
                tar --null -T - -cf -) | tar -C "$tree" -xf -
else
        tar -C "$src" --exclude=./.git --exclude='./build*' --exclude='./obj-*' -cf - . | tar -C "$tree" -xf -
fi

export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} parallel=$(nproc)"
start=$(date +%s%N)
(cd "$tree" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
        tail -50 "$out/build.log" >&2
        exit 1
}
echo "build-deb: dpkg-buildpackage took $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out/"
start=$(date +%s%N)
# Errors fail the build; warnings and infos are kept for the report (see debian/README.source).
lintian --fail-on error --info "$work"/*.changes >"$out/lintian.txt" 2>&1 || {
        cat "$out/lintian.txt" >&2
        exit 1
}
echo "build-deb: lintian took $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
