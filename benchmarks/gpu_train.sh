#!/bin/bash
# Issue 15's GPU training (one NVIDIA H200 lent for 15 minutes, all calls together), as run.
#
# Data: the train and val photos of split photos_v1 only (test photos never leave this
# machine), at MAX_SIDE=384 so they travel (45 MB), with labels.csv = file,package:
#   MAX_SIDE=384 bash ../shared/data/fetch_photos.sh /work/photos384
#   python benchmarks/gpu_data.py --data /work/photos384 --out .gpu
# Calls (device tool, carry .gpu and .whl; .whl = platformdirs and pooch wheels, the only
# dependencies the GPU image lacks):
#   bash benchmarks/gpu_train.sh smoke     # NVRTC/CuPy tests + benchmarks/nnf.py on CUDA,
#                                          # 40 steps of each run to time them (75 s)
#   FE=30 FS=100 CE=34 CS=100 TL=6.2 bash benchmarks/gpu_train.sh main     # 3 runs side by side
#   bash benchmarks/gpu_train.sh exemplar  # similarity then colour network, ~2 min each
# Weights come back through $OUT as a tar split in 15 MB parts.
set -u
MODE=$1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl >/dev/null 2>&1
  export PYTHONPATH=$PWD:/tmp/site
fi
DEV=${DEV:-cuda}
R=${RUNS:-/tmp/runs}; mkdir -p "$R"
W=${WORKERS:-4}
common="--data .gpu/photos --split photos_v1 --device $DEV --workers $W --half --quiet"
if [ "$MODE" = exemplar ]; then
  c="--data .gpu/photos --split photos_v1 --device $DEV --workers 8 --half --quiet --crop 128 --batch-size 32 --steps-per-epoch 50 --epochs 60 --warmup 100"
  timeout 160 python3 -m colorplug train exemplar --stage similarity $c --time-limit 2.1 \
    --out "$R/sim/exemplar_similarity.safetensors" > "$OUT/ex_sim.log" 2>&1
  timeout 150 python3 -m colorplug train exemplar --stage color $c --alpha 0.5 --time-limit 2.0 \
    --similarity "$R/sim/exemplar_similarity.safetensors" \
    --out "$R/col/exemplar_color.safetensors" > "$OUT/ex_col.log" 2>&1
  (cd "$R" && tar cf - sim/*.safetensors col/*.safetensors | split -b 15M - "$OUT/ex.tar.part_")
  exit 0
fi
if [ "$MODE" = smoke ]; then
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
    python3 -c "import cupy; print('cupy', cupy.__version__)"; } > "$OUT/env.txt" 2>&1
  if [ "$DEV" = cuda ]; then
    timeout 120 python3 -m pytest -q -rs tests/test_nnf_cupy.py > "$OUT/nnf_cupy_pytest.txt" 2>&1
    timeout 120 python3 benchmarks/nnf.py --device cuda --no-emulation --out "$OUT/nnf_cuda.json" > "$OUT/nnf_cuda.txt" 2>&1
  fi
  FE=1; FS=${FS:-40}; CE=1; CS=${CS:-40}; TL=5
fi
python3 -m colorplug train fusion $common --labels .gpu/labels.csv --colour-loss mse --width 0.4 \
  --crop 224 --batch-size 64 --lr 1e-3 --warmup 300 --epochs $FE --steps-per-epoch $FS \
  --time-limit $TL --out "$R/fusion_mse/fusion_mse.safetensors" > "$R/fusion_mse.log" 2>&1 &
python3 -m colorplug train fusion $common --labels .gpu/labels.csv --colour-loss bins --width 0.4 \
  --crop 224 --batch-size 64 --lr 1e-3 --warmup 300 --epochs $FE --steps-per-epoch $FS \
  --time-limit $TL --out "$R/fusion_bins/fusion_bins.safetensors" > "$R/fusion_bins.log" 2>&1 &
python3 -m colorplug train cgan $common --generator resnet --arch resnet18 --crop 128 \
  --batch-size 32 --colour-loss bins --epochs $CE --steps-per-epoch $CS --decay-epochs $(( CE / 2 )) \
  --time-limit $TL --out "$R/cgan_bins/cgan_bins.safetensors" > "$R/cgan_bins.log" 2>&1 &
wait
for j in fusion_mse fusion_bins cgan_bins; do cp "$R/$j.log" "$OUT/$j.log"; done
if [ "$MODE" = main ]; then
  (cd "$R" && tar cf - fusion_mse/fusion_mse.safetensors fusion_bins/fusion_bins.safetensors \
     cgan_bins/cgan_bins.safetensors | split -b 15M - "$OUT/weights.tar.part_")
fi
