#!/usr/bin/env bash
# Replay a finished run as a live one: a stand-in "trainer" copies its checkpoints into a fresh folder, one every
# PACE seconds, and stops as soon as the stop file appears (as `ganeval train --stop-file` would), while
# `ganeval watch` judges them. Shows the stop-file hand-off end to end on real checkpoints.
#   bash benchmarks/watch_replay.sh RUN OUT [PACE] [watch options...]
# e.g. bash benchmarks/watch_replay.sh runs/mlp_seed0_long /tmp/replay 3 --patience 2
set -euo pipefail
run=$1; out=$2; pace=${3:-3}; shift $(( $# < 3 ? $# : 3 ))
rm -rf "$out" "$out.STOP"; mkdir -p "$out"
(
  for ck in "$run"/ckpt_*.safetensors; do
    [ -e "$out.STOP" ] && { echo "trainer: stop file seen, stopping before $(basename "$ck")"; break; }
    cp "$ck" "$out/.tmp" && mv "$out/.tmp" "$out/$(basename "$ck")"   # atomic, as ganeval's trainer writes
    sleep "$pace"
  done
  echo "trainer: wrote $(ls "$out" | grep -c '^ckpt_') checkpoints"
) &
trainer=$!
start=$(date +%s)
ganeval watch "$out" --stop-file "$out.STOP" --interval 1 --idle-timeout $(( pace * 4 + 30 )) --settle 0 "$@"
echo "watch: $(( $(date +%s) - start )) s"
wait "$trainer"
