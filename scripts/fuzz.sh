#!/usr/bin/env bash
# The body of `make fuzz`: runs each fuzz target, given as package:FuzzName, for FUZZTIME (10s)
# with FUZZMINIMIZETIME (2s) to shrink a failing input, using GO (go).
#
#   scripts/fuzz.sh .:FuzzParseUST ./httpapi/:FuzzInput ...
#
# Go 1.26's fuzzing coordinator can fail a run that found nothing, with a bare "context deadline
# exceeded" as -fuzztime runs out (golang/go#75804, fixed in Go 1.27). A run that fails that way
# and writes no input under its package's testdata/fuzz/<FuzzName>/ (where a failing input goes)
# is run once more. Any other failure, or a second one, fails.
set -euo pipefail

readonly fuzztime=${FUZZTIME:-10s} minimize=${FUZZMINIMIZETIME:-2s} go=${GO:-go}
output=$(mktemp)
trap 'rm -f "$output"' EXIT

# inputs DIR: the names of the inputs kept in DIR, none when it does not exist.
inputs() { if [[ -d $1 ]]; then ls -A "$1"; fi; }

for target in "$@"; do
	pkg=${target%%:*} name=${target##*:}
	corpus=${pkg%/}/testdata/fuzz/$name
	for attempt in 1 2; do
		echo "fuzzing $name in $pkg for $fuzztime"
		before=$(inputs "$corpus")
		if "$go" test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg" 2>&1 |
			tee "$output"; then
			continue 2
		fi
		if [[ $attempt == 1 && $(inputs "$corpus") == "$before" ]] &&
			grep -qx '[[:space:]]*context deadline exceeded' "$output"; then
			echo "fuzz: $name stopped with Go's spurious deadline error (golang/go#75804) and wrote no input; running it again" >&2
			continue
		fi
		exit 1
	done
done
