#!/usr/bin/env bash
# fuzz-all.sh runs every Go fuzz target in the module for a short time.
#
#   scripts/fuzz-all.sh [FUZZTIME] [PACKAGE_PATTERN...]
#
# FUZZTIME defaults to $FUZZTIME or 5s. Targets are found by scanning
# *_test.go files for `func FuzzXxx(`, so a new target is picked up without
# editing this script. Each target runs alone (go test allows one -fuzz
# target per invocation): go test -run='^$' -fuzz='^FuzzXxx$' -fuzztime=T PKG.
# A failing target leaves its crasher in PKG/testdata/fuzz/FuzzXxx/ (commit
# it: it becomes a regression test) and the script exits non-zero after
# running the remaining targets.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is mid-call on a
# busy machine (golang/go#75804, fixed in Go 1.27). Such a run found
# nothing: no input was written. A target that fails that way, and only
# that way, is run once more; a second failure of any kind counts.
set -euo pipefail

cd "$(dirname "$0")/.."

fuzztime=${1:-${FUZZTIME:-5s}}
shift || true
patterns=("$@")
if ((${#patterns[@]} == 0)); then
	patterns=(./...)
fi

# Package directories of the selected packages (relative to the module root).
root=$(pwd)
mapfile -t dirs < <(go list -f '{{.Dir}}' "${patterns[@]}")

# fuzz_one runs one target, retrying (twice at most) after a bare deadline
# flake: on a loaded 2-CPU machine a slow target can hit it twice in a row.
fuzz_one() {
	local log rc
	log=$(mktemp)
	for attempt in 1 2 3; do
		rc=0
		go test -run='^$' -fuzz="^${2}\$" -fuzztime="$fuzztime" "$1" 2>&1 | tee "$log" || rc=$?
		if ((rc == 0)); then
			rm -f "$log"
			return 0
		fi
		if ((attempt < 3)) && grep -q 'context deadline exceeded' "$log" &&
			! grep -qE 'Failing input written|panic:' "$log"; then
			echo "fuzz: $1 $2: deadline flake of the Go fuzz coordinator (golang/go#75804), no input written; running it again"
			continue
		fi
		break
	done
	rm -f "$log"
	return 1
}

failed=()
count=0
for dir in "${dirs[@]}"; do
	rel=./${dir#"$root"/}
	[[ $dir == "$root" ]] && rel=.
	shopt -s nullglob
	files=("$dir"/*_test.go)
	shopt -u nullglob
	((${#files[@]} == 0)) && continue
	mapfile -t targets < <(grep -hoE '^func Fuzz[A-Za-z0-9_]*\(' "${files[@]}" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(/\1/' | sort -u)
	for target in "${targets[@]}"; do
		((count += 1))
		echo "fuzz: $rel $target ($fuzztime)"
		if ! fuzz_one "$rel" "$target"; then
			failed+=("$rel $target")
		fi
	done
done

echo "fuzz: ran $count targets, ${#failed[@]} failed"
if ((${#failed[@]} > 0)); then
	printf 'fuzz: FAILED %s\n' "${failed[@]}"
	exit 1
fi
