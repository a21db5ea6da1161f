#!/usr/bin/env bash
# Reproduce models/flank and the numbers in its card (CPU only, 1 torch thread).
# Needs ../shared/data/reid/nyala-train (or NYALA=...); renders the synthetic crops (all views).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS=1
WORK="${WORK:-/tmp/spotid-reproduce}"
NYALA="${NYALA:-$ROOT/../shared/data/reid/nyala-train}"
SPOTID="${SPOTID:-spotid}"
mkdir -p "$WORK"
[ -f "$WORK/syn_train/crops.csv" ] || $SPOTID synth crops "$WORK/syn_train" --individuals 150 --per-flank 6 --views all --seed 1
# held-out individuals (30%, split_seed 0); threshold calibrated on them for >= 97% accuracy when answered
$SPOTID train flank --data "$WORK/syn_train" --data "$NYALA" --epochs 5 --out "$WORK/flank"
