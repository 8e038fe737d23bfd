#!/bin/bash
# The configurations of the fusion model card on photos_v1:test (test only reports).
# RUNS: where `colorplug train fusion` wrote fusion_mse/ and fusion_bins/ (docs/backends/fusion.md);
# DATA: the photos of ../shared/data/fetch_photos.sh (MAX_SIDE=512).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
DATA=${DATA:-photos512}
V1=colorplug/weights/fusion_photos_w025_v1.safetensors
M=$RUNS/fusion_mse/fusion_mse.safetensors
B=$RUNS/fusion_bins/fusion_bins.safetensors
C=("fusion (default)=fusion" "fusion-v1=fusion?weights=$V1" "fusion-v1-sat1.5=fusion?weights=$V1&saturation=1.5")
for s in 1 1.5 2 2.5 3; do C+=("fusion-mse-sat$s=fusion?weights=$M&saturation=$s"); done
for t in 1 0.38 0.2; do C+=("fusion-bins-T$t=fusion?weights=$B&temperature=$t"); done
C+=("fusion-bins-T1-sat2.5=fusion?weights=$B&temperature=1&saturation=2.5")
C+=("cgan-v1=cgan" "autoencoder-v1=autoencoder")
python benchmarks/colour_eval.py --data "$DATA" --part test --threads 2 --out benchmarks/results/colour_test --configs "${C[@]}"
