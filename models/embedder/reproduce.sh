#!/usr/bin/env bash
# Reproduce models/embedder and the numbers in its card (CPU only, 1 torch thread).
#
#   models/embedder/reproduce.sh            # writes $WORK/embedder; copy it over models/embedder to ship
#
# Needs the real re-ID set at ../shared/data/reid/nyala-train (or NYALA=...). The synthetic crops
# are rendered here (seed 1 for training, seed 2 = other coats for the separate test set).
# Timing on the shared 2-core machine: ~10 min rendering, ~25 min training.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS=1
WORK="${WORK:-/tmp/spotid-reproduce}"
NYALA="${NYALA:-$ROOT/../shared/data/reid/nyala-train}"
SPOTID="${SPOTID:-spotid}"
PY="${PY:-python}"
mkdir -p "$WORK"

# 1. synthetic training crops (150 individuals, 6 encounters per flank and view) and a test set of
#    30 individuals with coats never trained on
[ -f "$WORK/syn_train/crops.csv" ] || $SPOTID synth crops "$WORK/syn_train" --individuals 150 --per-flank 6 --views all --seed 1
[ -f "$WORK/syn_test/crops.csv" ] || $SPOTID synth crops "$WORK/syn_test" --individuals 30 --per-flank 4 --seed 2 --first-id 501

# 2. train from scratch: 30% of the individuals of each data set are held out (fixed split_seed 0)
#    stage 1: 9 epochs from scratch (lr 3e-4); stage 2: 8 more epochs fine-tuning stage 1
#    (--lr 1e-3 x finetune_lr_scale 0.3 = 3e-4, fresh cosine schedule), which prints before/after
$SPOTID train embedder --data "$WORK/syn_train" --data "$NYALA" --from-scratch --epochs 9 --out "$WORK/stage1/embedder"
$SPOTID train embedder --model "$WORK/stage1/embedder" --lr 1e-3 --data "$WORK/syn_train" --data "$NYALA" --epochs 8 --out "$WORK/embedder"

# 3. evaluation: latency, and embedding-only re-ID on held-out individuals / the separate test coats
$PY benchmarks/embedder.py --model "$WORK/embedder" --data "$NYALA"
$PY benchmarks/embedder.py --model "$WORK/embedder" --data "$WORK/syn_test" --skip-latency
