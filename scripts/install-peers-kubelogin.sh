#!/bin/bash
# Install the peers the benchmarks and the comparison tests hold the daemon against, pinned, and
# cached outside the checkout: kubelogin from the Go module proxy, MSAL Python and azure-identity
# from PyPI (hashes in tests/peers/msal-requirements.txt) into a venv. Idempotent.
set -euo pipefail
. "$(dirname "$0")/peers-lib.sh"
export PATH="$PATH:/usr/local/go/bin" # the machines carry Go 1.26 there; Debian 12 ships 1.19, too old

root=/var/cache/aksspark-tokend-peers
kubelogin_version=v0.2.21 # v0.2.22 needs go 1.26.10; the machines carry 1.26.8
src="$(cd "$(dirname "$0")/.." && pwd)"

mkdir -p "$root"
if [ "$("$root/kubelogin/kubelogin" --version 2>/dev/null | grep -o 'v[0-9][0-9.]*' | head -1)" \
        != "$kubelogin_version" ]; then
        echo "install-peers: kubelogin $kubelogin_version"
        GOBIN="$root/kubelogin" GOPATH="$root/go" GOMODCACHE="$root/go/pkg/mod" \
                GOCACHE="$root/go/cache" GOFLAGS=-modcacherw \
                go install "github.com/Azure/kubelogin@$kubelogin_version"
fi

req="$src/tests/peers/msal-requirements.txt"
venv="$root/msal-venv"
if ! venv_is_current "$venv" "$req"; then
        echo "install-peers: msal and azure-identity into $venv"
        rm -rf "$venv"
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
                --require-hashes -r "$req"
        venv_mark_current "$venv" "$req"
fi
