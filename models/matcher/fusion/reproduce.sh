#!/usr/bin/env bash
# Reproduce models/matcher/fusion/fusion.json: the calibrated fusion of the embedding cosine, RootSIFT
# inliers and ALIKED inliers (spotid/identify/fusion.py), fitted on real nyala individuals that the
# evaluation never uses (the embedder's held-out individuals), and re-run that evaluation.
#
# (The previous fit used every other nyala individual; see models/matcher/README.md.)
# CPU only, 1 thread. Run it again whenever the embedder (models/embedder) or a verifier changes:
# the cosine and inlier scales belong to one set of weights and settings.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS=1
SHARED="${SHARED:-$ROOT/../shared}"
WORK="${WORK:-/tmp/spotid-fusion}"
SPOTID="${SPOTID:-spotid}"
OUT="${OUT:-models/matcher/fusion}"
# Calibration: the first 30 nyala individuals (sorted numerically) of the embedder's TRAIN split; evaluation:
# the embedder's 45 held-out nyala individuals (models/embedder/split.json 'test'), never fitted on.
mkdir -p "$WORK/nyala-cal30"
for d in $(python3 -c "import json; print(' '.join(sorted((x.split('/', 1)[1] for x in json.load(open('models/embedder/split.json'))['train'] if x.startswith('nyala-train/')), key=int)[:30]))"); do
  ln -sfn "$SHARED/data/reid/nyala-train/$d" "$WORK/nyala-cal30/$d"
done
# verify_all 0: every query goes through the shortlist (cosine top-30 + descriptor-vote top-30), as
# against a gallery of ~1,000 crops, also in these smaller galleries
printf 'verify_all: 0\n' > "$WORK/shortlist.yaml"
$SPOTID train fusion "$WORK/nyala-cal30" --encounter '^(\d+)_' --verifiers sift,aliked --weights equal \
  --limit 80 --config "$WORK/shortlist.yaml" --cache "$WORK/cache" --out "$OUT" \
  --note "nyala-train individuals of the embedder's TRAIN split (first 30 sorted numerically), 80 queries across encounters, the Matcher's shortlist pairs"
$SPOTID eval reid "$SHARED/data/reid/nyala-train" --encounter '^(\d+)_' --individuals models/embedder/split.json \
  --verifiers sift,aliked --fusion "$OUT" --no-full-verifier --config "$WORK/shortlist.yaml" --cache "$WORK/cache"
