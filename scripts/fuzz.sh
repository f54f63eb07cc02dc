#!/usr/bin/env bash
# Runs every fuzz target of the module for $FUZZTIME each (default 50000x:
# fifty thousand inputs). A count rather than a duration: with a duration,
# Go 1.26's fuzzing coordinator can report its own stop deadline as a
# "context deadline exceeded" failure of the target, with no input at fault
# (fixed in Go 1.27).
# Targets are found with `go test -list`, so a new Fuzz function is picked
# up without editing this script. A failing input is written by go test to
# the package's testdata/fuzz/<target>/ (commit it: it becomes a regression
# seed). Extra arguments are passed to go test (e.g. -race).
#
#   FUZZTIME=500000x scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-50000x}"

# `go test -list` prints a package's matching names, then its "ok" line.
# It runs first on its own so that a package that does not build fails the
# script instead of silently contributing no targets.
list=$(go test -list '^Fuzz' ./...)
targets=()
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	ok*)
		pkg=$(awk '{print $2}' <<<"$line")
		for n in "${names[@]}"; do targets+=("$pkg $n"); done
		names=()
		;;
	*) names=() ;;
	esac
done <<<"$list"

if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

failed=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "=== $pkg $name ($fuzztime)"
	if ! go test "$@" -run "^${name}\$" -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		failed+=("$pkg $name")
	fi
done

echo "fuzz.sh: ${#targets[@]} targets, ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "FAILED: $f"; done
[ "${#failed[@]}" -eq 0 ]
