#!/bin/bash
# Issue 30's rule for the default on photos_v1:val (val chooses; benchmarks/default_test.sh reports).
# Every automatic configuration (no reference, no hints) of the shipped weights; the rule,
# fixed before measuring: the highest colourfulness among those with val PSNR >= gray - 0.5 dB
# and CIEDE2000 <= gray + 2.5. Weights trained before the split existed saw val: ineligible.
# GRAY: how the input is made from the photo (lstar, rec601, rec709); the rule reads lstar.
# DATA: the photos of ../shared/data/fetch_photos.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-photos512}
GRAY=${GRAY:-lstar}
W=colorplug/weights
C=()
for s in 1 1.25 1.5 1.75 2.2; do C+=("fusion-v3-sat$s=fusion?saturation=$s"); done
for s in 1 1.5 2; do C+=("fusion-v2-sat$s=fusion?weights=$W/fusion_photos_split_v2.safetensors&saturation=$s"); done
for s in 1 1.25 1.5; do C+=("cgan-v2-sat$s=cgan?saturation=$s"); done
for g in 1 1.25 1.5; do C+=("autoencoder-v2-gain$g=autoencoder?gain=$g"); done
for g in 1 1.5 2; do C+=("guided-v1-nohints-gain$g=guided?gain=$g"); done
C+=("exemplar-auto=exemplar")
SELECT=(); [ "$GRAY" = lstar ] && SELECT=(--select --rule default)
python benchmarks/colour_eval.py --data "$DATA" --part val "${SELECT[@]}" --gray "$GRAY" \
  --threads 2 --ineligible exemplar-auto --out "benchmarks/results/default_val_$GRAY" --configs "${C[@]}"
