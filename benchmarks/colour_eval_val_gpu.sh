#!/bin/bash
# The GPU-trained candidates of issue 15 on photos_v1:val (val chooses): fusion width 0.4
# (mse, bins) and the cgan bins generator, trained on one H200 for ~5 min each
# (docs/backends/fusion.md, cgan.md), beside the shipped default.
# RUNS: where the device run wrote fusion_mse/, fusion_bins/, cgan_bins/;
# DATA: the photos of ../shared/data/fetch_photos.sh (MAX_SIDE=512).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/gpu}
DATA=${DATA:-photos512}
M=$RUNS/fusion_mse/fusion_mse.safetensors
B=$RUNS/fusion_bins/fusion_bins.safetensors
G=$RUNS/cgan_bins/cgan_bins.safetensors
C=("fusion-v2-default=fusion")
for s in 1 1.5 2 2.1 2.2 2.3 2.5 3; do C+=("fusion-w04-mse-sat$s=fusion?weights=$M&saturation=$s"); done
for t in 1 0.38 0.2; do C+=("fusion-w04-bins-T$t=fusion?weights=$B&temperature=$t"); done
for s in 1.5 2; do C+=("fusion-w04-bins-T1-sat$s=fusion?weights=$B&temperature=1&saturation=$s"); done
for s in 1.5 2; do C+=("fusion-w04-bins-T0.38-sat$s=fusion?weights=$B&temperature=0.38&saturation=$s"); done
for t in 1 0.38 0.2; do C+=("cgan-gpu-bins-T$t=cgan?weights=$G&temperature=$t"); done
for s in 1.5 2; do C+=("cgan-gpu-bins-T1-sat$s=cgan?weights=$G&temperature=1&saturation=$s"); done
python benchmarks/colour_eval.py --data "$DATA" --part val --select --threads 2 --out benchmarks/results/colour_val_gpu --configs "${C[@]}"
