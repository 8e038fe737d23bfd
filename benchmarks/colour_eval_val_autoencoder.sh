#!/bin/bash
# The autoencoder model card on photos_v1:$PART (default val; colour_eval_test_autoencoder.sh
# runs it with PART=test): v2 (trained on photos_v1 train only) beside v1 (trained before the
# split: its training photos include val and test). Writes
# benchmarks/results/colour_val_autoencoder (or colour_test_autoencoder).
# DATA: the photos of ../shared/data/fetch_photos.sh (MAX_SIDE=512).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-photos512}
PART=${PART:-val}
W=colorplug/weights
python benchmarks/colour_eval.py --data "$DATA" --part "$PART" --threads 2 \
  --out "benchmarks/results/colour_${PART}_autoencoder" \
  --configs "autoencoder-v2=autoencoder?weights=$W/autoencoder_photos32_split_v2.safetensors" \
            "autoencoder-v1=autoencoder?weights=$W/autoencoder_photos32_v1.safetensors"
