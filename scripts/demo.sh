#!/bin/bash
# The main job as a demo: the daemon against the project's local identity provider (HTTPS with
# a throwaway CA), a device sign-in approved as a person would, then the token file and two
# spark.properties refreshed twice with a short token lifetime. Everything lives in a temporary
# directory and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

demo=$(mktemp -d /tmp/aksspark-demo.XXXXXX)
chmod 755 "$demo"
idp_pid= daemon_pid=
cleanup() {
        [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
        [ -n "$idp_pid" ] && kill "$idp_pid" 2>/dev/null && wait "$idp_pid" 2>/dev/null
        rm -rf "$demo"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Tokens are shown by their last characters (the signature), which differ for every token.
abbrev() { printf '…%s (%d bytes)' "${1: -16}" "${#1}"; }
short() { abbrev "$(cat "$1")"; echo; }
props_line() {
        local line value
        line=$(grep -a 'oauthToken' "$1")
        value=$(sed -E 's/^.*[ =:]//' <<<"$line")
        printf '%s%s\n' "${line%"$value"}" "$(abbrev "$value")"
}

export HOME=$demo/home XDG_RUNTIME_DIR=$demo/run
mkdir -p "$HOME/.kube" "$HOME/spark" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
ctl() { "$src/build/aksspark-tokenctl" "$@"; }

say "A local identity provider (stands in for Azure AD; tokens live 70 s: the daemon never refreshes more often than every 30 s)"
python3 tests/idp/fake_idp.py --dir "$demo/idp" --lifetime 70 >"$demo/idp.out" 2>&1 &
idp_pid=$!
for _ in $(seq 100); do grep -q READY "$demo/idp.out" 2>/dev/null && break; sleep 0.1; done
url=$(cat "$demo/idp/url")
echo "serving $url"

say "What the person had before: a spark.properties in the common padded style, and a kubeconfig"
cat >"$HOME/spark/spark.properties" <<PROPS
# Spark on AKS, team analytics
spark.master                                           k8s://https://analytics-dns-1234.hcp.westeurope.azmk8s.io:443
spark.submit.deployMode                                cluster
spark.kubernetes.namespace                             alice
spark.kubernetes.authenticate.driver.serviceAccountName spark
spark.kubernetes.authenticate.submission.oauthToken    PASTE-TOKEN-HERE
PROPS
cat "$HOME/spark/spark.properties"
cat >"$HOME/.kube/config" <<KUBE
apiVersion: v1
kind: Config
current-context: analytics
contexts:
- name: analytics
  context: {cluster: analytics, user: alice}
clusters:
- name: analytics
  cluster: {server: "https://analytics-dns-1234.hcp.westeurope.azmk8s.io:443"}
users:
- name: alice
  user: {}
KUBE

say "The configuration"
mkdir -p "$HOME/.config/aksspark-tokend"
cat >"$HOME/.config/aksspark-tokend/config.ini" <<CONF
[daemon]
log_level = info

[profile default]
tenant           = contoso.onmicrosoft.com
authority_host   = $url
ca_file          = $demo/idp/ca.pem
refresh_before   = 10m
spark_properties = ~/spark/spark.properties
spark_properties = ~/spark/nightly.properties
kubeconfig       = ~/.kube/config
CONF
cat "$HOME/.config/aksspark-tokend/config.ini"
build/aksspark-tokend --check-config

say "Start the daemon (it would run under systemd; here in the background, log in $demo/daemon.log)"
root_flag=()
[ "$(id -u)" -eq 0 ] && root_flag=(--allow-root)
build/aksspark-tokend "${root_flag[@]}" >"$demo/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$XDG_RUNTIME_DIR/aksspark-tokend.sock" ] && break; sleep 0.1; done
ctl status || true

say "Sign in once: aksspark-tokenctl login (the script approves the code as the person would)"
ctl login &
login_pid=$!
code=
for _ in $(seq 100); do
        code=$(python3 tests/idp/fake_idp.py --dir "$demo/idp" admin pending 2>/dev/null | grep -oE '[A-Z0-9]{8,9}' | head -n1 || true)
        [ -n "$code" ] && break
        sleep 0.1
done
sleep 1
echo "(the person opens the page, types $code, signs in as alice@contoso.com)"
python3 tests/idp/fake_idp.py --dir "$demo/idp" admin approve "user_code=$code" user=alice@contoso.com >/dev/null
wait "$login_pid"

say "The outputs"
echo "~/.kube/oauthToken: $(short "$HOME/.kube/oauthToken")  mode $(stat -c %a "$HOME/.kube/oauthToken")"
echo "~/spark/spark.properties (only the token changed):"
cp "$HOME/spark/spark.properties" "$demo/before.properties"
diff <(sed 's/oauthToken .*/oauthToken …/' "$demo/before.properties") <(sed 's/oauthToken .*/oauthToken …/' "$HOME/spark/spark.properties") && echo "  every other byte kept"
props_line "$HOME/spark/spark.properties"
echo "~/spark/nightly.properties (created, spark.master from the kubeconfig):"
grep -av oauthToken "$HOME/spark/nightly.properties"
props_line "$HOME/spark/nightly.properties"
echo
ctl status

for n in 1 2; do
        say "Refresh $n: waiting for the daemon to refresh before expiry (no one touches anything)"
        old=$(cat "$HOME/.kube/oauthToken")
        for _ in $(seq 600); do [ "$(cat "$HOME/.kube/oauthToken")" != "$old" ] && break; sleep 0.1; done
        [ "$(cat "$HOME/.kube/oauthToken")" != "$old" ] || { echo "no refresh happened"; exit 1; }
        echo "~/.kube/oauthToken: $(short "$HOME/.kube/oauthToken")"
        props_line "$HOME/spark/spark.properties"
        grep -aE 'refresh|token for' "$demo/daemon.log" | tail -n 1
done

say "Pre-flight as a scheduled job would run it"
ctl check --min-valid 5s && echo "check: exit 0, the job may start"

say "Stop"
kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=
tail -n 2 "$demo/daemon.log"
echo "demo finished"
