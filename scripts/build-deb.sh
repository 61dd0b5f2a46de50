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
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
        tar --null -T - -cf -) | tar -C "$tree" -xf -

(cd "$tree" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
        tail -50 "$out/build.log" >&2
        exit 1
}
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out/"
# Errors fail the build; warnings and infos are kept for the report (see debian/README.source).
lintian --fail-on error --info "$work"/*.changes >"$out/lintian.txt" 2>&1 || {
        cat "$out/lintian.txt" >&2
        exit 1
}
