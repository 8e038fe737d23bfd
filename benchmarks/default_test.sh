#!/bin/bash
# photos_v1:test for issue 30 (test only reports): the shipped default, and the configuration
# the default rule picked on val (benchmarks/default_val.sh), with the gray input made from
# the photo's L* and from Rec. 601 luma (GRAY=lstar | rec601).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-photos512}
GRAY=${GRAY:-lstar}
python benchmarks/colour_eval.py --data "$DATA" --part test --gray "$GRAY" --threads 1 \
  --out "benchmarks/results/default_test_$GRAY" \
  --configs "fusion (default)=fusion" "cgan-v2-sat1.25 (the rule's pick on val)=cgan?saturation=1.25"
