#!/bin/bash
# How much of each test photo gets confident colour (issue 15's principle), for the shipped
# defaults of the automatic backends: cgan's bins v2 (1 - the entropy of the bins) and
# exemplar without a reference (the best match's similarity; its networks are v1, trained
# before the split: optimistic, marked †); fusion's default regresses
# a*b* and has no confidence (its row shows none).  DATA: the photos (fetch_photos.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-photos512}
python benchmarks/colour_eval.py --data "$DATA" --part test --threads 2 --confidence \
  --out benchmarks/results/colour_test_confidence \
  --configs "fusion (default)=fusion" "cgan (default)=cgan" "exemplar-auto-v1 (default)=exemplar"
