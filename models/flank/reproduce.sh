#!/usr/bin/env bash
# Reproduce models/flank and the numbers in its card (CPU only, 1 torch thread).
# Needs ../shared/data/reid/nyala-train (or NYALA=...). Two stages:
#   1. the parent flank@0d06cb73bedf (square synthetic crops + nyala, 5 epochs from scratch). Taken from
#      git history (commit e2fb08e) when available, else retrained with its recipe (weights then differ
#      in the last bits: CPU float summation order).
#   2. fine-tune on box-shaped synthetic crops (cut as `spotid identify` cuts detections: padded box,
#      aspect kept) + fresh square crops + nyala, 3 epochs at lr 1e-3; the unknown-threshold is the
#      strictest per-source one on held-out individuals (answers >= 97% right, wrong flank <= 1%).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS=1
WORK="${WORK:-/tmp/spotid-reproduce}"
NYALA="${NYALA:-$ROOT/../shared/data/reid/nyala-train}"
SPOTID="${SPOTID:-spotid}"
mkdir -p "$WORK"
PARENT="${PARENT:-$WORK/parent}"
if [ ! -f "$PARENT/card.json" ]; then
  mkdir -p "$PARENT"
  if git cat-file -e e2fb08e46719406f048ef09a28a20ac32d1a454e:models/flank/weights.pt 2>/dev/null; then
    for f in weights.pt card.json; do
      git show "e2fb08e46719406f048ef09a28a20ac32d1a454e:models/flank/$f" > "$PARENT/$f"
    done
  else
    [ -f "$WORK/syn_train/crops.csv" ] || $SPOTID synth crops "$WORK/syn_train" --individuals 150 --per-flank 6 --views all --seed 1
    $SPOTID train flank --data "$WORK/syn_train" --data "$NYALA" --epochs 5 --out "$PARENT"
  fi
fi
# training crops: seeds 101 (box) and 404 (square); evaluation uses other seeds (202 box, 303 square)
[ -f "$WORK/box_train/crops.csv" ] || $SPOTID synth crops "$WORK/box_train" --individuals 150 --per-flank 4 --views all --seed 101 --shape box
[ -f "$WORK/sq_train/crops.csv" ] || $SPOTID synth crops "$WORK/sq_train" --individuals 60 --per-flank 3 --views all --seed 404
$SPOTID train flank --data "$WORK/box_train" --data "$WORK/sq_train" --data "$NYALA" --init "$PARENT" --lr 0.001 \
  --epochs 3 --out "$WORK/flank"
# separate test sets (never trained on, threshold not chosen on them)
[ -f "$WORK/box_test/crops.csv" ] || $SPOTID synth crops "$WORK/box_test" --individuals 40 --per-flank 3 --views all --seed 202 --shape box
[ -f "$WORK/sq_test/crops.csv" ] || $SPOTID synth crops "$WORK/sq_test" --individuals 20 --per-flank 6 --views flanks --seed 303
# real Amur leopards: the hand-labelled boxes of amur-leopard-voc (models/flank/amur_leopard_voc_flanks.csv,
# all splits: this model never trained on them), cut as identify cuts detections
VOC="${VOC:-$ROOT/../shared/data/detection/amur-leopard-voc}"
[ -d "$VOC" ] && $SPOTID train cut-boxes models/flank/amur_leopard_voc_flanks.csv --images-root "$VOC" --out "$WORK/voc_flanks"
# card metrics: accuracy, unknown_rate, wrong_flank_rate (nyala: held-out individuals only)
python - "$WORK" "$NYALA" <<'PY'
import json, os, sys
from spotid.train.evaluate import evaluate_flank
work, nyala = sys.argv[1], sys.argv[2]
sets = {"box_test_seed202": f"{work}/box_test", "square_test_seed303": f"{work}/sq_test", "nyala_heldout": nyala}
if os.path.isdir(f"{work}/voc_flanks"):
    sets["amur_leopard_voc_hand_labelled"] = f"{work}/voc_flanks"
print(json.dumps({k: evaluate_flank(f"{work}/flank", [d]) for k, d in sets.items()}, indent=1))
PY

