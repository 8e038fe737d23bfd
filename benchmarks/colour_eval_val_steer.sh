#!/bin/bash
# Confidence steering (issue 15's principle) on photos_v1:val (val chooses): the GPU-trained
# bins models decoded with their saturation moved towards confident pixels (1 - bin
# entropy), `steering` 1 and 2, beside the same saturation without steering.
# RUNS, DATA: as colour_eval_val_gpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs/gpu}
DATA=${DATA:-photos512}
B=$RUNS/fusion_bins/fusion_bins.safetensors
G=$RUNS/cgan_bins/cgan_bins.safetensors
C=()
for t in 1 0.38; do for s in 1 1.25 1.5; do for k in 0 1 2; do
  C+=("fusion-w04-bins-T$t-sat$s-steer$k=fusion?weights=$B&temperature=$t&saturation=$s&steering=$k")
done; done; done
for s in 1 1.25 1.5; do for k in 0 1 2; do
  C+=("cgan-gpu-bins-T1-sat$s-steer$k=cgan?weights=$G&temperature=1&saturation=$s&steering=$k")
done; done
python benchmarks/colour_eval.py --data "$DATA" --part val --select --threads 2 --out benchmarks/results/colour_val_steer --configs "${C[@]}"
