#!/bin/bash
# The two Azure CLIs the azurecli tests sign in against the local identity provider: Debian 12's
# azure-cli (2.45, no expires_on in its answer) from apt, and a current one from PyPI, pinned
# with hashes in tests/peers/az-requirements.txt, in a venv outside the checkout. Idempotent.
set -euo pipefail
. "$(dirname "$0")/peers-lib.sh"

root=/var/cache/aksspark-tokend-peers
src="$(cd "$(dirname "$0")/.." && pwd)"
req="$src/tests/peers/az-requirements.txt"
venv="$root/az-venv"

missing=()
for p in azure-cli python3-venv; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "install-peers-az: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$root"
if ! venv_is_current "$venv" "$req"; then
        echo "install-peers-az: azure-cli from PyPI into $venv"
        rm -rf "$venv"
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
                --require-hashes -r "$req"
        venv_mark_current "$venv" "$req"
fi
