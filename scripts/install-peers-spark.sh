#!/bin/bash
# Spark and fabric8 for test_spark.py and test_fabric8.py, pinned, outside the checkout under
# /var/cache/aksspark-tokend-peers: pyspark 3.5 and 4 (their jars carry spark-kubernetes and
# fabric8) from PyPI with hashes, each in its own venv; fabric8's kubernetes-client from Maven
# Central at the version each Spark bundles and the newest. Idempotent: skips what is there.
set -euo pipefail
. "$(dirname "$0")/peers-lib.sh"

root=/var/cache/aksspark-tokend-peers
src="$(cd "$(dirname "$0")/.." && pwd)"
# The fabric8 versions: Spark 3.5.9's, Spark 4.3.0's, the newest.
fabric8_versions=(6.7.2 7.6.1 8.0.0)

missing=()
[ "$(dpkg-query -W -f='${Status}' python3-venv 2>/dev/null || true)" = "install ok installed" ] || missing+=(python3-venv)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
if [ ${#missing[@]} -gt 0 ]; then
        echo "install-peers-spark: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$root"
need=0
for line in spark-3.5 spark-4; do
        venv_is_current "$root/$line" "$src/tests/peers/$line-requirements.txt" || need=1
done
for v in "${fabric8_versions[@]}"; do
        [ -f "$root/fabric8-$v/.installed" ] || need=1
done
if [ "$need" = 1 ]; then
        # Two pyspark venvs (~0.9 GB unpacked), their download (~0.8 GB) and Maven's (~0.1 GB).
        free_kb=$(df -Pk "$root" | awk 'NR==2 {print $4}')
        if [ "$free_kb" -lt $((3 * 1024 * 1024)) ]; then
                echo "install-peers-spark: $root has $((free_kb / 1024)) MiB free; Spark and fabric8 need 3 GiB" >&2
                exit 1
        fi
fi

for line in spark-3.5 spark-4; do
        venv="$root/$line"
        req="$src/tests/peers/$line-requirements.txt"
        if ! venv_is_current "$venv" "$req"; then
                echo "install-peers-spark: pyspark ($line) from PyPI into $venv"
                rm -rf "$venv"
                /usr/bin/python3 -m venv "$venv"
                "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-cache-dir \
                        --require-hashes -r "$req"
                venv_mark_current "$venv" "$req"
        fi
done

for v in "${fabric8_versions[@]}"; do
        dir="$root/fabric8-$v"
        if [ ! -f "$dir/.installed" ]; then
                echo "install-peers-spark: fabric8 kubernetes-client $v from Maven Central into $dir"
                rm -rf "$dir"
                mvn -q -B -Dstyle.color=never -f "$src/tests/peers/fabric8/pom.xml" -Dfabric8.version="$v" \
                        -Dmaven.repo.local="$root/m2" dependency:copy-dependencies -DoutputDirectory="$dir"
                touch "$dir/.installed"
        fi
done
