#!/usr/bin/env bash
# tern's demo: build tern and two Go programs for WASI. The first runs under
# tern with a preopened folder, environment and stdin. The second is frozen
# mid-run into an image, inspected, and resumed in a new tern process, on
# the interpreter engine, carrying on where it stopped. Then two tern agents
# (two devices, on loopback; the grid's state in the first one's embedded
# NATS) run it as a grid process that moves live between them while its
# output is followed from the grid.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p bin
go build -o bin/tern ./cmd/tern
GOOS=wasip1 GOARCH=wasm go build -o bin/notes.wasm ./examples/notes
GOOS=wasip1 GOARCH=wasm go build -o bin/primes.wasm ./examples/primes
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The keys that sign the demo's images: its own, not this device's.
export TERN_DATA="$work/device"

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
echo "=== 3. a grid of two agents (two devices, here on loopback): a process moves live between them"
port=$((20000 + RANDOM % 20000))
bin/tern agent --data "$work/home" --name home --listen "127.0.0.1:$port" &
home=$!
trap 'kill $home ${laptop:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do bin/tern nodes --data "$work/home" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(bin/tern token create --data "$work/home" 2>/dev/null)
echo "--- a single-use join token from the hub: ${token:0:16}…"
bin/tern agent --data "$work/laptop" --name laptop --listen "127.0.0.1:$((port + 10))" \
	--join "127.0.0.1:$port" --token "$token" &
laptop=$!
for _ in $(seq 100); do bin/tern nodes --data "$work/laptop" >/dev/null 2>&1 && break; sleep 0.1; done
bin/tern nodes --data "$work/home"
id=$(bin/tern run --on home --data "$work/home" bin/primes.wasm 3000000)
echo "--- started $id on home; followed from laptop while it moves home -> laptop -> home:"
bin/tern logs -f --data "$work/laptop" "$id" > "$work/followed.txt" &
follower=$!
sleep 1
bin/tern migrate --data "$work/home" "$id" laptop
sleep 1
bin/tern migrate --data "$work/laptop" "$id" home
wait $follower
tail -n 3 "$work/followed.txt"
bin/tern ps --data "$work/laptop"
kill "$laptop" "$home"
wait "$laptop" "$home"
