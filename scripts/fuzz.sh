#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each, as CI does
# after the tests (`make test`). The targets are found by listing each test
# binary's (-test.list '^Fuzz'), so a new one runs without being added here.
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

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cache=$("$GO" env GOCACHE)/fuzz

# Each package with a fuzz function is built once, instrumented for
# fuzzing (go test -c -fuzz), and its binary asked for its targets and run
# once per target in the package's directory, where its corpus is: a
# `go test -fuzz` per target would link the package's test binary again
# for each, which took longer than the fuzzing itself.
failed=()
start=$SECONDS
while read -r pkg dir; do
	grep -qs '^func Fuzz' "$dir"/*_test.go || continue
	exe="$bin/$(basename "$dir").$RANDOM.test"
	if ! "$GO" test -c -fuzz=. -o "$exe" "$pkg" >"$bin/build.log" 2>&1; then
		echo "FAIL $pkg (build)"
		sed 's/^/    /' "$bin/build.log"
		failed+=("$pkg")
		continue
	fi
	for name in $(cd "$dir" && "$exe" -test.list '^Fuzz'); do
		[[ "$name" =~ $FUZZ_ONLY ]] || continue
		t0=$SECONDS
		log="$bin/$name.log"
		if (cd "$dir" && "$exe" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$FUZZTIME" \
			-test.fuzzcachedir "$cache/$pkg" -test.timeout 10m) >"$log" 2>&1; then
			echo "ok   $pkg $name ($((SECONDS - t0))s)"
		elif grep -qx '    context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
			# Go 1.26's fuzz coordinator can report its own -fuzztime
			# deadline as a failure when a worker is busy at that moment
			# (go.dev/issue/75804, fixed in Go 1.27); no input failed.
			echo "ok   $pkg $name ($((SECONDS - t0))s; the coordinator's deadline race, go.dev/issue/75804)"
		else
			echo "FAIL $pkg $name ($((SECONDS - t0))s)"
			grep -v '^fuzz: elapsed' "$log" | sed 's/^/    /' | tail -40
			failed+=("$pkg $name")
		fi
	done
done < <("$GO" list -f '{{.ImportPath}} {{.Dir}}' ./...)

echo "fuzzing took $((SECONDS - start))s"
if ((${#failed[@]} > 0)); then
	printf 'failed: %s\n' "${failed[@]}"
	exit 1
fi
