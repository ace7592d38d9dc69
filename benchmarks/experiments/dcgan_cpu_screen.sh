#!/usr/bin/env bash
# Short CPU screening runs of DCGAN recipes (session 4): the same seed, batch 128, 1,500 iterations, checkpoints every
# 500, then MNIST metrics (MNIST-IS, MNIST FD, modes) at N = 10,000 on every checkpoint (shared latents, seed 0).
# Each entry of RUNS is "name model precision"; a run folder that already finished is reused, not retrained.
# Usage: OUT=/tmp/bf16q RUNS="bf16 dcgan bf16;info_bf16 dcgan_info bf16;fp32 dcgan fp32" \
#        bash benchmarks/experiments/dcgan_cpu_screen.sh
set -euo pipefail
OUT=${OUT:-/tmp/bf16q}; ITS=${ITS:-1500}
RUNS=${RUNS:-"bf16 dcgan bf16;info_bf16 dcgan_info bf16;fp32 dcgan fp32"}
mkdir -p "$OUT"
IFS=';' read -ra SPECS <<<"$RUNS"
for spec in "${SPECS[@]}"; do
  read -r name model precision <<<"$spec"
  [ -f "$OUT/$name/ckpt_$(printf %07d "$ITS").safetensors" ] && continue
  resume=(); [ -f "$OUT/$name/train_state.safetensors" ] && resume=(--resume)
  ganeval train --model "$model" --batch-size 128 --iterations "$ITS" --checkpoint-every 500 --log-every 100 \
    --device cpu --seed 0 --no-progress --precision "$precision" --out "$OUT/$name" "${resume[@]}"
  echo "$name: $(tail -n 1 "$OUT/$name/train_log.csv")"
done
for spec in "${SPECS[@]}"; do
  read -r name model precision <<<"$spec"
  ganeval score "$OUT/$name" --metrics mnist_is mnist_fd modes --num-samples 10000 --reference mnist-train \
    --device cpu --out "$OUT/${name}_report" >/dev/null
  echo "== $name"; cut -d, -f1,6,8,11,12 "$OUT/${name}_report/scores.csv"
done
