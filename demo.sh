#!/usr/bin/env bash
# tern's demo: build tern and a Go program for WASI, then run the program
# under tern with a preopened folder, environment and stdin.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p bin
go build -o bin/tern ./cmd/tern
GOOS=wasip1 GOARCH=wasm go build -o bin/notes.wasm ./examples/notes
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'buy milk\ncall Ada\nbook trains\nwater the cactus\n' |
	bin/tern run --dir "$work:/notes" --env USER_NAME=demo bin/notes.wasm /notes
echo "--- on the host, $work now holds:"
(cd "$work" && find . -type f | sort | while read -r f; do printf '%s: %s\n' "$f" "$(cat "$f")"; done)
