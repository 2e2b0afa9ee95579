#!/usr/bin/env bash
# tern's demo: build tern and two Go programs for WASI. The first runs under
# tern with a preopened folder, environment and stdin. The second is frozen
# mid-run into an image, inspected, and resumed in a new tern process, on
# the interpreter engine, carrying on where it stopped.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p bin
go build -o bin/tern ./cmd/tern
GOOS=wasip1 GOARCH=wasm go build -o bin/notes.wasm ./examples/notes
GOOS=wasip1 GOARCH=wasm go build -o bin/primes.wasm ./examples/primes
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "=== 1. a Go program under tern's WASI layer"
printf 'buy milk\ncall Ada\nbook trains\nwater the cactus\n' |
	bin/tern run --dir "$work:/notes" --env USER_NAME=demo bin/notes.wasm /notes
echo "--- on the host, $work now holds:"
(cd "$work" && find . -type f | sort | while read -r f; do printf '%s: %s\n' "$f" "$(cat "$f")"; done)

echo
echo "=== 2. freeze a running program after 1.5 s (Ctrl-C would do the same)"
bin/tern run --checkpoint "$work/primes.img" --freeze-after 1500ms bin/primes.wasm 600000
echo "--- the image:"
bin/tern inspect "$work/primes.img"
echo "--- resumed in a new process, on the interpreter; the count carries on:"
bin/tern resume --engine interpreter "$work/primes.img"
