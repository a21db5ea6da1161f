#!/usr/bin/env bash
# Reproduce models/detector (CPU, 1 torch thread; ~45-60 min on a shared 2-core machine).
# Run from the repository root with ../shared present. Never trains on: amur-leopard-voc/test-images,
# megadetector-test, or the held-out synthetic cards (seeds 777 and 888) that the card's metrics use.
set -euo pipefail
WORK=${WORK:-/tmp/spotid-detector-reproduce}
SHARED=${SHARED:-../shared/data}
mkdir -p "$WORK"
cd "$WORK" && pip download --no-deps zamba==2.7.2 -d "$WORK" -q && cd - >/dev/null   # never install zamba
WHL="$WORK/zamba-2.7.2-py3-none-any.whl"

# Training cards (seed 11 is the stage-1 card; 21-51 are new). Identical arguments + seed = identical card.
for s in 11 21 31 41 51; do
  [ -f "$WORK/synth/s$s/truth.json" ] || spotid synth card "$WORK/synth/s$s" --stations 6 --days 10 --individuals 8 --seed $s --workers 1
done

# Stage 1 (the previous shipped model, sha256 d99e8954...): zamba -> 4 epochs, backbone frozen, 160 synthetic frames.
spotid train detector --part detector --shared "$SHARED" --init "$WHL" --synth "$WORK/synth/s11" \
    --epochs 4 --seed 0 --threads 1 --out "$WORK/stage1"

# Stage 2 (this model): from stage 1, 5 synthetic cards (160 animal frames each), last backbone stage
# (dark5) unfrozen, amur-leopard-voc train oversampled 2x, 5 epochs; the shipped weights are the WiSE-FT
# average 0.5 * stage-2 fine-tune + 0.5 * stage 1 (the pure fine-tune lost 3 frames of MDv5a agreement).
spotid train detector --part detector --shared "$SHARED" --init "$WORK/stage1" \
    --synth "$WORK/synth/s11" --synth "$WORK/synth/s21" --synth "$WORK/synth/s31" --synth "$WORK/synth/s41" --synth "$WORK/synth/s51" \
    --epochs 5 --seed 0 --threads 1 --unfreeze dark5 --voc-repeat 2 --wise-alpha 0.5 --out "$WORK/stage2"

# Held-out evaluation cards and the metrics written into card.json (classifier: models/classifier as shipped).
spotid synth card "$WORK/heldout/syn777" --stations 4 --days 10 --individuals 6 --seed 777 --workers 1
spotid synth card "$WORK/heldout/syn888" --stations 4 --days 10 --individuals 6 --seed 888 --workers 1
cp -r models/classifier "$WORK/classifier"
spotid train detector --part eval --shared "$SHARED" --out "$WORK/stage2" --classifier-out "$WORK/classifier" \
    --synth "$WORK/heldout/syn777" --synth "$WORK/heldout/syn888" --threads 1
sha256sum "$WORK/stage2/yolox_tiny.pt"
