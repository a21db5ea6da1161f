#!/usr/bin/env bash
# Reproduce models/matcher/fusion/fusion.json: the calibrated fusion of the embedding cosine, RootSIFT
# inliers and ALIKED inliers (spotid/identify/fusion.py), fitted on real nyala individuals that the
# evaluation in models/matcher/README.md never uses, and re-run that evaluation.
#
# The calibration half: nyala-train individuals sorted numerically, every other one starting with the
# first (90 individuals), of which the first 30 (249 photos). The evaluation half: the other 90, of
# which the first 45 (332 photos); ATRW: the first 30 entities (180 crops), never fitted on.
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
mkdir -p "$WORK/nyala-cal" "$WORK/nyala-eval" "$WORK/atrw"
i=0
for d in $(ls "$SHARED/data/reid/nyala-train" | sort -n); do
  [ $((i % 2)) -eq 0 ] && half=cal || half=eval
  ln -sfn "$SHARED/data/reid/nyala-train/$d" "$WORK/nyala-$half/$d"; i=$((i + 1))
done
mkdir -p "$WORK/nyala-cal30" "$WORK/nyala-eval45" "$WORK/atrw30"
for d in $(ls "$WORK/nyala-cal" | sort -n | head -30); do ln -sfn "$(readlink "$WORK/nyala-cal/$d")" "$WORK/nyala-cal30/$d"; done
for d in $(ls "$WORK/nyala-eval" | sort -n | head -45); do ln -sfn "$(readlink "$WORK/nyala-eval/$d")" "$WORK/nyala-eval45/$d"; done
for d in $(ls "$SHARED/data/reid/atrw-train" | grep -v '\.csv$' | sort | head -30); do ln -sfn "$SHARED/data/reid/atrw-train/$d" "$WORK/atrw30/$d"; done
# verify_all 0: every query goes through the shortlist (cosine top-30 + descriptor-vote top-30), as
# against a gallery of ~1,000 crops, also in these smaller galleries
printf 'verify_all: 0\n' > "$WORK/shortlist.yaml"
$SPOTID train fusion "$WORK/nyala-cal30" --encounter '^(\d+)_' --verifiers sift,aliked --weights equal \
  --limit 80 --config "$WORK/shortlist.yaml" --cache "$WORK/cache" --out "$OUT" \
  --note "nyala-train calibration half (every other individual sorted numerically from the first; first 30 of them), 80 queries across encounters, the Matcher's shortlist pairs"
for set in nyala-eval45 atrw30; do
  enc=(--encounter '^(\d+)_'); [ "$set" = atrw30 ] && enc=()
  $SPOTID eval reid "$WORK/$set" "${enc[@]}" --verifiers sift,aliked --fusion "$OUT" --limit 80 \
    --no-full-verifier --config "$WORK/shortlist.yaml" --cache "$WORK/cache"
done
