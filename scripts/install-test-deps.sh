#!/usr/bin/env bash
# install-test-deps.sh installs the third-party Kafka clients that the tests in
# ./test/... drive as separate processes: kcat (librdkafka), kafka-python and
# confluent-kafka-python from Debian 12, and kafkajs from npm.
#
# It is idempotent: a package already installed is not installed again, and
# node_modules is only (re)built when package-lock.json is newer than it.
# Debian's Python packages land in /usr/bin/python3's dist-packages, so the
# tests always run /usr/bin/python3 (never a pyenv/virtualenv python3 first on
# PATH).
set -euo pipefail

cd "$(dirname "$0")/.."

debs=(kcat python3-kafka python3-confluent-kafka)

missing=()
for p in "${debs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} > 0)); then
	sudo=""
	if [[ $(id -u) -ne 0 ]]; then
		sudo="sudo"
	fi
	echo "install-test-deps: apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
	echo "install-test-deps: Debian packages present (${debs[*]})"
fi

# Sanity-check what the tests will import.
/usr/bin/python3 -c 'import kafka, confluent_kafka; print("install-test-deps: kafka-python", kafka.__version__, "confluent-kafka", confluent_kafka.version()[0], "librdkafka", confluent_kafka.libversion()[0])'
kcat -V 2>&1 | head -n 1

node_dir=test/clients/node
if ! command -v npm >/dev/null 2>&1; then
	echo "install-test-deps: npm not found; the kafkajs tests will be skipped" >&2
	exit 0
fi
if [[ ! -d $node_dir/node_modules/kafkajs || $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
	echo "install-test-deps: npm ci in $node_dir"
	(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
else
	echo "install-test-deps: $node_dir/node_modules up to date"
fi
