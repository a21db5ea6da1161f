"""Identify's founding rules, one burst at a time (hand-made rows, no images)."""
from __future__ import annotations

from dataclasses import dataclass

from spotid.catalog import Catalog
from spotid.catalog.tables.detections import record_leopard_floor
from spotid.identify.config import IdentifyConfig
from spotid.identify.founding import DEFAULT_FOUND_MIN_CONF, FoundingRules


@dataclass
class R:
    quality: float = 0.9
    conf: float = 0.8
    leopard_p: float = 0.99
    leopard_floor: float | None = 0.95
    features: int = 0
    place: None = None
    box: tuple = (0.1, 0.4, 0.3, 0.2)


class Inliers:
    """A verifier whose every pair shares ``n`` inliers."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, a, b, pa, pb):
        return type("V", (), {"inliers": self.n})()


def walked(**kw) -> list[R]:
    """Two frames of one burst whose boxes moved 0.1 of the frame apart (so the self-match is checked)."""
    return [R(**kw), R(**kw, box=(0.2, 0.4, 0.3, 0.2))]


def test_each_rule_names_its_reason_in_order(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    rules = FoundingRules(IdentifyConfig(found_min_conf=0.3, found_min_self_inliers=5), Inliers(9))
    assert rules.why_not(cat, walked()) is None
    # the first rule that holds is the reason given: quality before confidence before P(leopard)
    assert "too small or blurred" in rules.why_not(cat, walked(quality=0.1, conf=0.1, leopard_p=0.5))
    assert rules.why_not(cat, walked(conf=0.29, leopard_p=0.5)) == "matched nobody, detection below 0.3 to found one"
    assert rules.why_not(cat, walked(leopard_p=0.9)) == ("matched nobody, and no frame is clearly a leopard "
                                                         "(P(leopard) 0.900 < 0.95) to found one")
    # one clear frame is enough, and a frame without a floor (an MD JSON import) is not held to one
    assert rules.why_not(cat, [R(leopard_p=0.5), R(leopard_p=0.96, box=(0.2, 0.4, 0.3, 0.2))]) is None
    assert rules.why_not(cat, walked(leopard_p=0.5, leopard_floor=None)) is None
    # frames that do not match each other; a burst that did not move cannot be checked
    few = FoundingRules(IdentifyConfig(found_min_conf=0.3, found_min_self_inliers=5), Inliers(4))
    assert "do not match each other" in few.why_not(cat, walked())
    assert few.why_not(cat, [R(), R()]) is None
    off = FoundingRules(IdentifyConfig(found_min_conf=0.3, found_min_self_inliers=0), Inliers(0))
    assert off.why_not(cat, walked()) is None
    cat.close()


def test_min_conf_and_floor_come_from_config_else_what_detect_recorded(tmp_path):
    cat = Catalog(tmp_path / "c.db")
    rules = FoundingRules(IdentifyConfig(found_min_conf=None, found_min_leopard_p=None), Inliers(9))
    assert rules.min_conf(cat) == DEFAULT_FOUND_MIN_CONF        # nothing recorded: MegaDetector's 0.2
    cat.set_setting("detect.typical_threshold", "0.35")
    assert rules.min_conf(cat) == DEFAULT_FOUND_MIN_CONF        # read once per run ...
    rules.reset()
    assert rules.min_conf(cat) == 0.35                          # ... and again after reset
    record_leopard_floor(cat, "yolox@1+cascade@2", 0.95)
    record_leopard_floor(cat, "mdjson:MDV5A", None)
    assert rules.leopard_floor(cat, "yolox@1+cascade@2") == 0.95
    assert rules.leopard_floor(cat, "mdjson:MDV5A") is None
    assert rules.leopard_floor(cat, "never-recorded") is None
    # the config overrides both; a floor of 0 is off
    fixed = FoundingRules(IdentifyConfig(found_min_conf=0.5, found_min_leopard_p=0.8), Inliers(9))
    assert fixed.min_conf(cat) == 0.5 and fixed.leopard_floor(cat, "mdjson:MDV5A") == 0.8
    assert FoundingRules(IdentifyConfig(found_min_leopard_p=0), Inliers(9)).leopard_floor(cat, "yolox@1+cascade@2") is None
    cat.close()
