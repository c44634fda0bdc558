#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each, as CI does
# after the tests (`make test`). The targets are found with
# `go test -list '^Fuzz'`, so a new one runs without being added here.
#
#   FUZZTIME   time (or "Nx" executions) per target; default 3s
#   FUZZ_ONLY  a regexp: run only the targets whose names match it
#
# A plain `go test` already runs each target's seeds and its committed
# corpus (testdata/fuzz/<target>/) as regression tests; this adds a short
# search for new inputs. A failing input is written to
# testdata/fuzz/<target>/ by go test: commit it with the fix. To run one
# target longer:
#
#   go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 10m ./assets/
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}
FUZZ_ONLY=${FUZZ_ONLY:-.}

# Only packages with a fuzz function are listed: listing builds a package's
# test binary, and most packages have none.
pkgs=$("$GO" list -f '{{.ImportPath}} {{.Dir}}' ./... | while read -r pkg dir; do
	if grep -qs '^func Fuzz' "$dir"/*_test.go; then echo "$pkg"; fi
done)
# "package target" lines, in package order, so the runs of one package
# follow each other and its instrumented build is reused.
# shellcheck disable=SC2086 # one word per package
targets=$("$GO" test -list '^Fuzz' $pkgs | awk '
	/^Fuzz/ { names = names " " $1; next }
	/^ok/   { n = split(names, a, " "); for (i = 1; i <= n; i++) print $2, a[i]; names = "" }')

failed=()
start=$SECONDS
while read -r pkg name; do
	[[ -n "$name" && "$name" =~ $FUZZ_ONLY ]] || continue
	t0=$SECONDS
	log="${TMPDIR:-/tmp}/fuzz-$name.log"
	if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
		echo "ok   $pkg $name ($((SECONDS - t0))s)"
	elif grep -qx '    context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
		# Go 1.26's fuzz coordinator can report its own -fuzztime deadline
		# as a failure when a worker is busy at that moment
		# (go.dev/issue/75804, fixed in Go 1.27); no input failed.
		echo "ok   $pkg $name ($((SECONDS - t0))s; the coordinator's deadline race, go.dev/issue/75804)"
	else
		echo "FAIL $pkg $name ($((SECONDS - t0))s)"
		grep -v '^fuzz: elapsed' "$log" | sed 's/^/    /' | tail -40
		failed+=("$pkg $name")
	fi
done <<<"$targets"

echo "fuzzing took $((SECONDS - start))s"
if ((${#failed[@]} > 0)); then
	printf 'failed: %s\n' "${failed[@]}"
	exit 1
fi
