#!/bin/bash
# Install the Debian 12 packages that building, the demo and the tests need. Idempotent: does
# nothing (and needs no network) when everything is already there.
set -euo pipefail

packages=(
        # build
        gcc clang clang-format meson ninja-build pkg-config scdoc
        libcurl4-openssl-dev libssl-dev libsystemd-dev libinih-dev libyaml-dev libjansson-dev check
        # the tests: local identity provider, Java's Properties reader, systemd, faults
        python3 openssl ca-certificates openjdk-17-jdk-headless systemd bash-completion
        util-linux passwd procps libclang-rt-14-dev valgrind strace
        # the Debian package (tests/integration/test_pid1.py builds it with dpkg-buildpackage)
        build-essential dpkg-dev debhelper fakeroot lintian
        # long-running Kubernetes clients through the kubeconfig output
        python3-kubernetes
        # a hung file system under an output: a FUSE server the tests SIGSTOP
        python3-fusepy fuse3 e2fsprogs
        # a real proxy in a network namespace (tests/integration/test_proxy.py)
        tinyproxy iproute2
        # benchmarks: the peers they compare against
        oidc-agent-cli curl
        # the metrics test: a real parser of the Prometheus text format
        python3-prometheus-client
        # a real browser for auth = browser (tests/integration/test_browser.py)
        chromium
        # the virtual environments of the pinned PyPI peers (scripts/install-peers-*.sh)
        python3-venv
        # sealed state on a desktop (test_sealed.py): a session bus, a Secret Service, a look inside
        dbus-daemon gnome-keyring libsecret-tools
)

if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: run as root (apt-get install)." >&2
        exit 1
fi

missing=()
for p in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [ "$status" = "install ok installed" ] || missing+=("$p")
done
# kubectl: the machines carry one; Debian 12 ships it as kubernetes-client.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
# Node and npm for @kubernetes/client-node: the machines carry Node 20; Debian 12 ships npm.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
        echo "install-deps: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# @kubernetes/client-node, pinned by tests/node/package-lock.json, into tests/node/node_modules
# (gitignored); again only when the lock file is newer than the last install.
node_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
   [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
        echo "install-deps: npm ci in tests/node"
        (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# kubelogin, MSAL Python and azure-identity, pinned, under /var/cache/aksspark-tokend-peers.
"$(dirname "$0")/install-peers-kubelogin.sh"
# The Azure CLIs of the azurecli tests (Debian's and a pinned one from PyPI).
"$(dirname "$0")/install-peers-az.sh"
# Spark (pyspark 3.5 and 4) and fabric8 for test_spark.py and test_fabric8.py.
"$(dirname "$0")/install-peers-spark.sh"
