"""Identify's founding rules: may a burst that matched nobody found a new individual?

A burst that reaches no known individual becomes a new-individual candidate only if nothing below
holds. Otherwise it is set aside as 'unusable', and the reason is kept (``set_aside_reason``). A
doubtful box (a deer, moving grass) must not found a leopard. A photo nobody could identify must not
found a second one. In the order checked:

1. every frame is below ``quality_floor`` (too small or blurred);
2. every box is below ``found_min_conf``. The default is the detector's typical threshold, which
   detect records (detect keeps boxes down to a conservative threshold, and those may still match);
3. no frame reaches the P(leopard) floor of the classifier that labelled it (``found_min_leopard_p``;
   the default is the classifier card's floor, which detect records per detector version);
4. the burst's own frames do not match each other (``found_min_self_inliers``): the coat is hidden,
   smeared or too dark in that burst.

The rule on thin clusters (too few frames of the flank, :func:`~spotid.identify.bursts.thin_clusters`)
acts after clustering and stays with the pipeline.
"""
from __future__ import annotations

import logging
from typing import Sequence

from spotid.catalog import Catalog
from spotid.catalog.tables import detections
from spotid.identify.bursts import below_leopard_floor, self_inliers
from spotid.identify.config import IdentifyConfig

log = logging.getLogger(__name__)

#: detection confidence a burst needs when neither the config nor detect gave one (MegaDetector's 0.2)
DEFAULT_FOUND_MIN_CONF = 0.2


class FoundingRules:
    """``FoundingRules(cfg, verifier)``. Call ``reset()`` once per run. Then ``leopard_floor(cat, detector)``
    for each frame's row, and ``why_not(cat, members) -> reason | None`` for each burst that matched nobody.

    ``members``: a burst's rows, with ``.quality``, ``.conf``, ``.leopard_p``, ``.leopard_floor``,
    ``.features``, ``.place`` and ``.box`` (normalised x, y, w, h).
    """

    def __init__(self, cfg: IdentifyConfig, verifier):
        self.cfg = cfg
        self.verifier = verifier
        self._floors: dict[str | None, float | None] = {}   # detector version -> its founding floor, per run
        self._min_conf: float | None = None

    def reset(self) -> None:
        """Forget what was read from the catalog: a new run may see a catalog that detect has changed since."""
        self._floors.clear()
        self._min_conf = None

    def leopard_floor(self, cat: Catalog, detector: str | None) -> float | None:
        """P(leopard) a frame labelled by ``detector`` needs to found a new individual.

        It is the configured ``found_min_leopard_p`` (0 = none). Otherwise it is the floor of the
        classifier card behind that detector version, as detect recorded it. An MD JSON import has none,
        because its probabilities are another model's."""
        if self.cfg.found_min_leopard_p is not None:
            return self.cfg.found_min_leopard_p or None
        if detector not in self._floors:
            self._floors[detector], recorded = detections.leopard_floor(cat, detector)
            if not recorded:
                log.warning("no founding floor was recorded for boxes of %s (detected by an older spotid): none "
                            "applies to them. If spotid's classifier labelled them, set found_min_leopard_p in an "
                            "identify --config to its card's cascade.found_min_leopard_p", detector)
        return self._floors[detector]

    def min_conf(self, cat: Catalog) -> float:
        """Detection confidence a burst needs to found a new individual: the configured one, else the
        detector's typical threshold recorded by detect, else :data:`DEFAULT_FOUND_MIN_CONF`."""
        if self.cfg.found_min_conf is not None:
            return float(self.cfg.found_min_conf)
        if self._min_conf is None:
            v = cat.get_setting("detect.typical_threshold")
            self._min_conf = float(v) if v else DEFAULT_FOUND_MIN_CONF
        return self._min_conf

    def why_not(self, cat: Catalog, members: Sequence) -> str | None:
        """Why the burst ``members``, which matched nobody, may not found a new individual; None if it may."""
        cfg = self.cfg
        if max(m.quality for m in members) < cfg.quality_floor:
            return "matched nobody, too small or blurred to found one"
        min_conf = self.min_conf(cat)
        if max(m.conf for m in members) < min_conf:
            return f"matched nobody, detection below {min_conf:g} to found one"
        if (below := below_leopard_floor(members)) is not None:
            return (f"matched nobody, and no frame is clearly a leopard (P(leopard) {below[0]:.3f} < {below[1]:g}) "
                    "to found one")
        if cfg.found_min_self_inliers:
            # frames that moved at least twice the verifier's static tolerance: scenery cannot pass as coat
            own = self_inliers(members, self.verifier, 2 * cfg.static_tol)
            if own is not None and own < cfg.found_min_self_inliers:
                return ("matched nobody, and its own frames do not match each other: the coat is not "
                        "identifiable in this burst")
        return None
