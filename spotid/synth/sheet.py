"""Contact sheets of a synthetic card: sample frames with their truth boxes drawn."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

COLOURS = {1: (255, 60, 60), 2: (60, 200, 255), 3: (255, 200, 0), 4: (200, 100, 255), 5: (255, 128, 0), 6: (0, 255, 0)}


def contact_sheet(card: str | Path, n: int = 12, cols: int = 4, thumb_w: int = 480, select: str = "leopard",
                  boxes: bool = True) -> np.ndarray:
    """A (rows*th, cols*thumb_w, 3) uint8 RGB sheet of ``n`` frames of the card at ``card``.

    ``select``: 'leopard' (frames with a leopard box, alternating day and night), 'all' (evenly
    spaced frames) or a species name.
    """
    card = Path(card)
    truth = json.loads((card / "truth.json").read_text())
    cats = {c["name"]: c["id"] for c in truth["categories"]}
    anns: dict[str, list] = {}
    for a in truth["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    images = truth["images"]
    if select == "all":
        pick = images[:: max(1, len(images) // n)][:n]
    else:
        cid = cats[select]
        cand = [im for im in images if any(a["category_id"] == cid for a in anns.get(im["id"], []))]
        day = [im for im in cand if im["day_night"] == "day"]
        night = [im for im in cand if im["day_night"] == "night"]
        pick = []
        for k in range(n):
            src = day if k % 2 == 0 and day else night if night else day
            if not src:
                break
            pick.append(src[(k // 2 * max(1, len(src) // max(1, n // 2))) % len(src)])
    tiles = []
    for im in pick:
        img = cv2.cvtColor(cv2.imread(str(card / im["file_name"])), cv2.COLOR_BGR2RGB)
        sc = thumb_w / img.shape[1]
        if boxes:
            for a in anns.get(im["id"], []):
                if "bbox" not in a:
                    continue
                x, y, w, h = a["bbox"]
                cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), COLOURS.get(a["category_id"], (255, 255, 255)),
                              max(2, int(2 / sc)))
                label = a.get("individual_id", "") + (" " + a["flank"] if a.get("flank") else "")
                cv2.putText(img, label, (int(x), max(20, int(y) - 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 / sc * 0.5,
                            (255, 255, 0), max(1, int(1.5 / sc * 0.5)), cv2.LINE_AA)
        tiles.append(cv2.resize(img, (thumb_w, int(img.shape[0] * sc)), interpolation=cv2.INTER_AREA))
    if not tiles:
        raise ValueError(f"no frames with {select} in {card}")
    th = tiles[0].shape[0]
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + cols], 1) for i in range(0, len(tiles), cols)]
    return np.concatenate(rows, 0)[: th * len(rows)]
