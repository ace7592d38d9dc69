#!/bin/bash
# One prepared device run (session 3): benchmarks/gpu_check.py on a quiet GPU (random-weight Inception: parity,
# pipeline and network throughput, score_series), then three DCGAN recipes trained side by side on the same GPU
# (batch 128/256/512, linear learning-rate decay over the second half), every checkpoint scored with the MNIST
# metrics on CUDA (N = 10,000, one run at a time), and the best-MNIST-IS checkpoint of each run exported EMA-only.
#
# Needs: .whl/torch_fidelity-0.4.0-py3-none-any.whl and .devwork/mnist/ (the four MNIST .gz files), both carried.
# Knobs (environment): DEV (cuda), TRAIN_S (wall seconds for the training phase), CHECK_S/CHECK_ARGS, NS (samples
# per checkpoint), RUNS ("name batch iterations [model]" entries; model dcgan unless given), DECAY_FROM (fraction of the run after which the learning
# rate decays; default 0.5), EVERY (checkpoint interval), PRECISION (fp32 or bf16; default fp32), OUT.
# CHECK_S=0 skips gpu_check. Besides each run's best EMA generator it exports the last discriminator (D_*.safetensors,
# from the training state) so that discriminator-based sampling can be studied on the CPU afterwards.
set -u
T0=$(date +%s)
PY=${PY:-python3}; DEV=${DEV:-cuda}; TRAIN_S=${TRAIN_S:-330}; CHECK_S=${CHECK_S:-150}; NS=${NS:-10000}; EVERY=${EVERY:-1000}
CHECK_ARGS=${CHECK_ARGS:---budget-s 140 --skip compile}
RUNS=${RUNS:-"b128 128 15000;b256 256 13000;b512 512 10000"}; DECAY_FROM=${DECAY_FROM:-0.5}; PRECISION=${PRECISION:-fp32}
LOG=$OUT/device_log.txt
say() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$LOG"; }
[ -n "${SKIP_PIP:-}" ] || $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/torch_fidelity-*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD GANEVAL_DATA_DIR=$PWD/.devwork/mnist GANEVAL_OFFLINE=1 GANEVAL_CACHE_DIR=/tmp/gcache \
    PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$LOG" 2>&1
$PY -c "import torch; print('torch', torch.__version__)" >>"$LOG" 2>&1

if [ "$CHECK_S" != 0 ]; then
    say "== gpu_check ($CHECK_ARGS)"
    timeout "$CHECK_S" $PY benchmarks/gpu_check.py $CHECK_ARGS --out "$OUT" >"$OUT/gpu_check_log.txt" 2>&1
    say "gpu_check rc=$?"
fi

S=/tmp/sweep; R=/tmp/sweep_rep; rm -rf $S $R; mkdir -p $S $R
say "== training side by side for at most $TRAIN_S s ($PRECISION): $RUNS"
IFS=';' read -ra SPECS <<<"$RUNS"
for spec in "${SPECS[@]}"; do
    read -r name batch its model <<<"$spec"
    timeout "$TRAIN_S" $PY -m ganeval train --model "${model:-dcgan}" --batch-size "$batch" --iterations "$its" \
        --lr-decay-start $(python3 -c "print(int($its * $DECAY_FROM))") --checkpoint-every "$EVERY" --log-every 500 --device "$DEV" --seed 0 --precision "$PRECISION" \
        --out $S/$name --no-progress >$S/$name.log 2>&1 &
done
wait
for spec in "${SPECS[@]}"; do
    read -r name batch its model <<<"$spec"
    say "$name: $(tail -1 $S/$name/train_log.csv 2>/dev/null) | $(ls $S/$name 2>/dev/null | grep -c ckpt_) checkpoints"
done

# One scoring process at a time: three side by side stalled on the 16-core device host (session 3).
say "== MNIST-domain scoring on $DEV (N = $NS), one run after another"
for spec in "${SPECS[@]}"; do
    read -r name batch its model <<<"$spec"
    timeout 120 $PY -m ganeval score $S/$name --metrics mnist_is mnist_fd modes --num-samples "$NS" --device "$DEV" \
        --out $R/$name --bootstrap 20 >$R/$name.log 2>&1
    say "$name scored: rc=$?"
done
for spec in "${SPECS[@]}"; do
    read -r name batch its model <<<"$spec"
    say "$name scores:"; grep -A40 "iteration" $R/$name.log | head -25 | tee -a "$LOG" >/dev/null
done

say "== export (EMA-only) of each run's best-MNIST-IS checkpoint"
$PY - "$S" "$R" <<'PY' 2>&1 | tee -a "$LOG"
import os, shutil, sys
from pathlib import Path
import pandas as pd
from safetensors import safe_open
from safetensors.torch import load_file, save_file
S, R, OUT = Path(sys.argv[1]), Path(sys.argv[2]), Path(os.environ["OUT"])
for rep in sorted(p for p in R.iterdir() if p.is_dir()):
    try:
        df = pd.read_csv(rep / "scores.csv").dropna(subset=["mnist_is"])
        best = df.sort_values("mnist_is", ascending=False).iloc[0]
        src = S / rep.name / best["checkpoint"]
        with safe_open(str(src), "pt") as f:
            meta = f.metadata()
        t = {k: v for k, v in load_file(str(src)).items() if k.startswith("g_ema.")}
        dst = OUT / f"{rep.name}_{best['checkpoint']}"
        save_file(t, str(dst), metadata=meta)
        print(f"{rep.name}: best MNIST-IS {best['mnist_is']:.4f} at {int(best['iteration'])} (FD {best['mnist_fd']:.3f}, "
              f"modes {int(best['modes_covered'])}) -> {dst.name} {dst.stat().st_size / 2**20:.1f} MiB")
        st = S / rep.name / "train_state.safetensors"
        with safe_open(str(st), "pt") as f:
            d = {k: f.get_tensor(k) for k in f.keys() if k.startswith("d.")}
            smeta = f.metadata()
        dpath = OUT / f"{rep.name}_D_last.safetensors"
        save_file(d, str(dpath), metadata=smeta)
        print(f"{rep.name}: last discriminator -> {dpath.name} {dpath.stat().st_size / 2**20:.1f} MiB")
        it = int(best["iteration"])
        for png in (f"samples_{it:07d}.png", sorted((S / rep.name).glob("samples_*.png"))[-1].name):
            shutil.copy(S / rep.name / png, rep / f"{rep.name}_{png}")
    except Exception as exc:  # noqa: BLE001 - one run's failure must not stop the others
        print(f"{rep.name}: export FAILED {exc.__class__.__name__}: {exc}")
PY
(cd / && tar czf "$OUT/sweep.tgz" --exclude='*.npz' tmp/sweep_rep tmp/sweep/*.log tmp/sweep/*/train_log.csv) 2>>"$LOG"
say "done"; ls -la "$OUT" | tee -a "$LOG"
