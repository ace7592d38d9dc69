#!/usr/bin/env bash
# Does bf16 training (--precision bf16) reach the quality of fp32? Two DCGAN runs with the same seed and recipe
# (batch 128, 1,500 iterations, checkpoints every 500), one per precision, then MNIST metrics at N = 10,000 on
# every checkpoint (shared latents, seed 0). Usage: OUT=/tmp/bf16q bash benchmarks/experiments/dcgan_bf16_quality.sh
set -euo pipefail
OUT=${OUT:-/tmp/bf16q}
ITS=${ITS:-1500}
mkdir -p "$OUT"
for p in bf16 fp32; do
  ganeval train --model dcgan --batch-size 128 --iterations "$ITS" --checkpoint-every 500 --log-every 100 \
    --device cpu --seed 0 --no-progress --precision "$p" --out "$OUT/$p"
  tail -n 1 "$OUT/$p/train_log.csv"
done
for p in bf16 fp32; do
  ganeval score "$OUT/$p" --metrics mnist_is mnist_fd modes --num-samples 10000 --reference mnist-train --device cpu \
    --out "$OUT/${p}_report" >/dev/null
done
