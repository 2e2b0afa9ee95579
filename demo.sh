#!/usr/bin/env bash
# tern's demo: build tern and two Go programs for WASI. The first runs under
# tern with a preopened folder, environment and stdin. The second is frozen
# mid-run into an image, inspected, and resumed in a new tern process, on
# the interpreter engine, carrying on where it stopped. Then a tern agent
# (embedded NATS in a temporary directory) runs it as a grid process whose
# output is followed from the grid.
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

echo
echo "=== 3. the agent: processes run through the device's daemon, state in embedded NATS"
bin/tern agent --data "$work/agent" --name demo-node &
agent=$!
trap 'kill $agent 2>/dev/null || true; wait $agent 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do bin/tern nodes --data "$work/agent" >/dev/null 2>&1 && break; sleep 0.1; done
bin/tern nodes --data "$work/agent"
id=$(bin/tern run --on auto --data "$work/agent" bin/primes.wasm 300000)
echo "--- started $id; its output, followed from the grid to the end:"
bin/tern logs -f --data "$work/agent" "$id" | tail -n 3
bin/tern ps --data "$work/agent"
kill "$agent"
wait "$agent"
