#!/bin/bash
# The configurations of the fusion model card on photos_v1:val (val chooses).
# RUNS: where `colorplug train fusion` wrote fusion_mse/ and fusion_bins/ (docs/backends/fusion.md);
# DATA: the photos of ../shared/data/fetch_photos.sh (MAX_SIDE=512).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
DATA=${DATA:-photos512}
M=$RUNS/fusion_mse/fusion_mse.safetensors
B=$RUNS/fusion_bins/fusion_bins.safetensors
C=(); 
C+=("fusion-v1=fusion?weights=colorplug/weights/fusion_photos_w025_v1.safetensors" "fusion-v1-sat1.5=fusion?weights=colorplug/weights/fusion_photos_w025_v1.safetensors&saturation=1.5")
for s in 1 1.5 2 2.5 3; do C+=("fusion-mse-sat$s=fusion?weights=$M&saturation=$s"); done
for t in 1 0.38 0.2; do C+=("fusion-bins-T$t=fusion?weights=$B&temperature=$t"); done
for s in 1.5 2 2.5 3; do C+=("fusion-bins-T0.38-sat$s=fusion?weights=$B&temperature=0.38&saturation=$s"); done
for s in 1.5 2 2.5; do C+=("fusion-bins-T1-sat$s=fusion?weights=$B&temperature=1&saturation=$s"); done
C+=("cgan-v1=cgan" "autoencoder-v1=autoencoder")
python benchmarks/colour_eval.py --data "$DATA" --part val --select --threads 2 --out benchmarks/results/colour_val --configs "${C[@]}"
