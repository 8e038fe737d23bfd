#!/bin/bash
# The GPU-trained candidates of issue 15 on photos_v1:test (test only reports): the default
# val chose (fusion v3 = width 0.4 mse, saturation 2.2), its own saturation sweep (the
# frontier the issue measures against), the bins models at the issue's temperatures, and the
# previous default.  RUNS, DATA: as colour_eval_val_gpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/gpu}
DATA=${DATA:-photos512}
V2=colorplug/weights/fusion_photos_split_v2.safetensors
V3=colorplug/weights/fusion_photos_split_w04_v3.safetensors
B=$RUNS/fusion_bins/fusion_bins.safetensors
G=$RUNS/cgan_bins/cgan_bins.safetensors
C=("fusion (default, v3)=fusion" "fusion-v2-sat2=fusion?weights=$V2")
for s in 1 1.5 2 2.5 3; do C+=("fusion-v3-sat$s=fusion?weights=$V3&saturation=$s"); done
for t in 1 0.38 0.2; do C+=("fusion-w04-bins-T$t=fusion?weights=$B&temperature=$t"); done
for t in 1 0.38 0.2; do C+=("cgan-gpu-bins-T$t=cgan?weights=$G&temperature=$t"); done
python benchmarks/colour_eval.py --data "$DATA" --part test --threads 2 --out benchmarks/results/colour_test_gpu --configs "${C[@]}"
