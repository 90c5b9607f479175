#!/usr/bin/env bash
# Instructions per config for each way the config_construction benchmark
# makes one, counted by valgrind's cachegrind: steady where wall-clock time
# at this scale is not (see benches/config_construction.rs).
#
# Each way runs twice, with N and 2N configs; the difference divided by N is
# the cost of one config, start-up and set-up cancelled out.
#
#   scripts/count-instructions.sh [N]     (default N = 20000)
set -euo pipefail
n="${1:-20000}"
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
command -v valgrind >/dev/null || { echo "count-instructions: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

bin="$(cargo bench --bench config_construction --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "config_construction" and m.get("executable"):
        print(m["executable"])')"
[ -x "$bin" ] || { echo "count-instructions: could not build the benchmark" >&2; exit 1; }

tmp="$(mktemp -d)"
# Keeps the exit status: the clean-up never changes it.
trap 'status=$?; rm -rf "$tmp"; exit "$status"' EXIT

count() { # way n -> total instructions (Ir)
    MONOCORE_COUNT="$1:$2" valgrind --tool=cachegrind --cache-sim=no \
        --cachegrind-out-file="$tmp/out" "$bin" --bench >/dev/null 2>"$tmp/log" \
        || { cat "$tmp/log" >&2; exit 1; }
    awk '/^summary:/ { print $2 }' "$tmp/out"
}

declare -A per
for way in struct_literal vm_literal builder_validate struct_validate; do
    one="$(count "$way" "$n")"
    two="$(count "$way" $((2 * n)))"
    per[$way]=$(( (two - one) / n ))
done
base=${per[struct_literal]}
printf '%-18s %14s %8s\n' way "instr/config" ratio
for way in struct_literal vm_literal builder_validate struct_validate; do
    printf '%-18s %14d %8s\n' "$way" "${per[$way]}" "$(python3 -c "print(f'{${per[$way]}/$base:.3f}')")"
done
