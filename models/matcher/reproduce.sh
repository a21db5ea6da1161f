#!/usr/bin/env bash
# Reproduce models/matcher/calibration.json (CPU only, 1 thread, ~15 min).
#   pairwise P(same):        every verified pair of the folder sets calA (square crops with scene) and
#                            calB (padded boxes), flank from the folder;
#   decision P(right animal): the leave-one-out queries of calA/calB (open-set splits) plus synthetic
#                            cards run the way `spotid identify` runs them (shipped detector boxes,
#                            box-only keypoints, static-scenery filter, bursts pooled).
# Seeds are disjoint from everything evaluated: benchmarks/reid.py (4242+i, ids 90000+i) and
# `spotid demo` (seed 0..3, the demo's own card settings).
# DESCRIPTOR=rootsift+vgg reproduces models/matcher/rootsift+vgg/calibration.json instead (~35 min: VGG
# descriptors make the features about 6x slower).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS=1
WORK="${WORK:-/tmp/spotid-matcher}"
SPOTID="${SPOTID:-spotid}"
OUT="${OUT:-$WORK/out}"   # compare $OUT/calibration.json with models/matcher/calibration.json (the README there is hand-written)
mkdir -p "$WORK"
if [ ! -d "$WORK/calA" ]; then
  for i in 0 4 8 12 16 20; do
    $SPOTID synth crops "$WORK/calA" --individuals 4 --per-flank 6 --seed $((7100 + i)) --first-id $((81000 + i))
  done
fi
if [ ! -d "$WORK/calB" ]; then
  for i in 0 4 8 12; do
    $SPOTID synth crops "$WORK/calB" --individuals 4 --per-flank 5 --shape box --size 384 --seed $((7200 + i)) --first-id $((82000 + i))
  done
fi
CARDS=()
for s in 301 302 303 304 305 306; do
  [ -f "$WORK/c$s/truth.json" ] || $SPOTID synth card "$WORK/c$s" --stations 6 --days 12 --individuals 10 --seed $s --empty-fraction 0.4
  CARDS+=(--card "$WORK/c$s")
done
$SPOTID train matcher ${DESCRIPTOR:+--descriptor "$DESCRIPTOR"} "$WORK/calA" "$WORK/calB" --encounter '^(e\d+)_' --encounter '^(e\d+)_' \
  --flank-from-path '/(left|right)/' "${CARDS[@]}" --decisions-from all \
  --other-floor 2 --other-floor 3 --other-floor 4 --other-floor 5 --other-floor 6 \
  --cache "$WORK/cache" --card-work "$WORK/cards" --out "$OUT" \
  --note "models/matcher/reproduce.sh: calA/calB folders fit the pairwise model; their leave-one-out queries plus synthetic cards c301-c306 (6 stations, 12 days, 10 leopards, empty 0.4, run through ingest + the shipped detector + identify's own matching) fit the decision model"
