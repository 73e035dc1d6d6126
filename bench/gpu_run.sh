#!/usr/bin/env bash
# One call on a lent GPU machine (docs/training.md, "The next GPU run"): fine-tune the bundled
# transformer for MINUTES of the call, then leave its EMA weights in $OUT/ema (8 files at most
# come back: the weights in parts under 16 MB, their config, state.json, log.jsonl, config.yaml)
# and the run's output in $OUT/train.log.
#
# Here, before the call:  python bench/train_gpu.py pack --out .gpu
#                          mv models/tenku-world/vae /tmp/hold-vae   # tree + .gpu under 64 MiB
# The call (device run, carry [".gpu"], timeout_s 600):
#                          bash bench/gpu_run.sh 7.6 [key=value ... for tenku train dit]
# Here, after it:          mv /tmp/hold-vae models/tenku-world/vae
#                          python bench/train_gpu.py join --parts /work/.device/N/ema --out runs/gpu-sX/transformer
# With max_text_tokens=N among the overrides (256 keeps every world caption whole), ship the transformer with pipe.cfg.max_text_tokens = N
# (the pack covers captions of any length since session 15: re-pack an older .gpu).
# object_weight=W (session 16, off) weighs the loss up on the objects' latent cells (the feed writes the ground truth it
# reads); on the CPU it drew more fragments: not a default (docs/training-history.md).
# shape_head=0.5 (session 18, off; on the CPU it doubled the shape gain on the objective but drew no more right shapes and
# cost identity in the world suite, session 19: not the next run's setting, training-history.md)
# adds the per-cell shape head's loss on block 4 (tenku.train.shape_head; the feed's
# ground truth again); log.jsonl's shape_acc (shape_acc_hi: at noise >= 0.8) says how often the head names the object's shape.
set -o pipefail
minutes=${1:-7.6}
shift || true
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out/ema"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
limit=$(python3 -c "print(int($minutes * 60 + 45))")  # a run past its budget is stopped; its checkpoints stay
timeout "$limit" python3 bench/train_gpu.py run --pack .gpu --out /tmp/g --videos 16000 --minutes "$minutes" \
    --data-s 60 --feed \
    batch_size=256 lr=7e-4 warmup=100 ckpt_every=500 parallel.compile=true "$@" 2>&1 | grep -v -i warn | tee "$out/train.log"
python3 bench/train_gpu.py export --run /tmp/g/run --out "$out/ema" 2>&1 | tee -a "$out/train.log"
cp /tmp/g/run/log.jsonl /tmp/g/run/config.yaml "$out/ema/"
