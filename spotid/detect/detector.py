"""One ``Detector`` interface, three backends.

A detector is a stage object: settings in ``__init__``, frames through ``__call__(paths, root)``,
which yields one :class:`spotid.types.ImageResult` per path, in order (``file`` relative to ``root``),
never raising for a bad file (the result carries ``failure``). ``version`` is the string recorded as
``model_version`` / ``detection_status.detector``.

- ``builtin``: YOLOX-tiny shipped in ``models/detector`` (+ the leopard / other / not_animal cascade
  classifier of ``models/classifier``);
- ``megadetector``: MegaDetector through the optional ``megadetector`` package and a weights file;
- ``mdjson:FILE``: an existing MegaDetector batch result, matched to frames by relative path, then by
  file name.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from spotid.detect.config import DetectConfig
from spotid.detect.mdjson import NOT_ANIMAL_KEY
from spotid.types import Detection, ImageResult
from spotid.util import VIDEO_EXTS

log = logging.getLogger(__name__)

# a backend is handed frames; a video reaching one directly (e.g. `spotid eval detect`) was not sampled
VIDEO_FAILURE = ("video: a backend takes still frames; sample the video first (`spotid ingest` and "
                 "`spotid detect FOLDER` do)")


class DetectorError(RuntimeError):
    """A detector that cannot be set up as asked (the message names the fix); ``option`` is the command-line
    option that asked for it, so a usage error points at the right one."""

    def __init__(self, message: str, option: str = "--detector"):
        super().__init__(message)
        self.option = option


class Detector(Protocol):
    version: str
    typical_threshold: float
    conservative_threshold: float
    # the P(leopard) floor for founding a new individual, from the card of the classifier that labelled the
    # boxes (None: no spotid classifier, or its card sets none: an MD JSON import carries another model's scale)
    found_min_leopard_p: float | None

    def __call__(self, paths: Iterable[str | Path], root: str | Path | None = None) -> Iterator[ImageResult]:
        ...


def _rel(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.as_posix()


class _SkipVideos:
    """Wraps a backend so videos become failures without reaching it (order preserved)."""

    def _split(self, paths, root):
        return [Path(p) for p in paths], (Path(root) if root is not None else None)

    def _run(self, inner, paths: list[Path], root: Path | None) -> Iterator[ImageResult]:
        images = [p for p in paths if p.suffix.lower() not in VIDEO_EXTS]
        it = inner(images, root) if images else iter(())
        for p in paths:
            if p.suffix.lower() in VIDEO_EXTS:
                yield ImageResult(_rel(p, root), (), VIDEO_FAILURE)
            else:
                yield next(it)


class BuiltinBackend(_SkipVideos):
    def __init__(self, cfg: DetectConfig):
        from spotid.detect.builtin import BuiltinDetector
        from spotid.modelstore import ModelError

        classifier = None
        if cfg.use_classifier:
            from spotid.detect.classifier import CropClassifier

            try:
                classifier = CropClassifier(model_dir=cfg.classifier)
            except ModelError as e:
                if cfg.classifier is not None:
                    raise DetectorError(str(e), option="--classifier") from None
                log.warning("no leopard/other classifier (%s): detections get no classifications", e)
        try:
            self.inner = BuiltinDetector(model_dir=cfg.model, input_size=cfg.input_size, batch_size=cfg.batch_size,
                                         threshold=cfg.threshold, nms_threshold=cfg.nms_threshold,
                                         decode_workers=cfg.decode_workers, classifier=classifier)
        except ModelError as e:
            raise DetectorError(str(e), option="--model") from None
        thr = self.inner.card.get("thresholds", {})
        self.typical_threshold = float(thr.get("typical", 0.25))
        self.conservative_threshold = float(thr.get("conservative", 0.1))
        # identify founds new individuals on boxes the DETECTOR is confident about: its card's threshold
        self.found_threshold = self.typical_threshold
        cascade = classifier.card.get("cascade", {}) if classifier is not None else {}
        if "typical_threshold" in cascade:
            # with the classifier vetting weak boxes, a frame holds an animal at a lower detector score
            # (the classifier card says which, measured on held-out frames)
            self.typical_threshold = float(cascade["typical_threshold"])
            self.conservative_threshold = min(self.conservative_threshold, classifier.cascade_threshold or 1.0)
        self.version = self.inner.version
        self.found_min_leopard_p = getattr(classifier, "found_min_leopard_p", None)
        self.input_size = self.inner.input_size
        self.threshold = self.inner.threshold

    def __call__(self, paths, root=None):
        paths, root = self._split(paths, root)
        return self._run(self.inner, paths, root)


class MegaDetectorBackend(_SkipVideos):
    """MegaDetector via the ``megadetector`` package (``pip install 'spotid[megadetector]'``)."""

    def __init__(self, cfg: DetectConfig):
        weights = _check_megadetector_weights(cfg)
        try:
            from megadetector.detection.run_detector import load_detector
            from megadetector.visualization.visualization_utils import load_image
        except ImportError as e:
            raise DetectorError(f"the megadetector backend needs the megadetector package ({e}): "
                                "pip install 'spotid[megadetector]'") from None
        self._load_image = load_image
        self.model = load_detector(str(weights), force_cpu=False)
        self.threshold = cfg.threshold if cfg.threshold is not None else 0.005
        self.typical_threshold, self.conservative_threshold = 0.2, 0.05
        self.version = f"megadetector:{Path(weights).name}"
        self.classifier = None
        self.found_min_leopard_p = None
        if cfg.use_classifier:
            from spotid.detect.classifier import CropClassifier
            from spotid.modelstore import ModelError

            try:
                self.classifier = CropClassifier(model_dir=cfg.classifier)
                self.version += "+" + self.classifier.version
                self.found_min_leopard_p = self.classifier.found_min_leopard_p
            except ModelError as e:
                if cfg.classifier is not None:   # asked for by name: a broken card is the user's to fix
                    raise DetectorError(str(e), option="--classifier") from None
                log.warning("no leopard/other classifier (%s)", e)

    def _one(self, paths: list[Path], root: Path | None) -> Iterator[ImageResult]:
        for p in paths:
            name = _rel(p, root)
            try:
                img = self._load_image(str(p))
            except Exception as e:  # noqa: BLE001 -- any decode error becomes a failure string
                yield ImageResult(name, (), f"image could not be decoded: {e}")
                continue
            r = self.model.generate_detections_one_image(img, name, detection_threshold=self.threshold)
            if r.get("failure"):
                yield ImageResult(name, (), str(r["failure"]))
                continue
            dets = [Detection(int(d["category"]), float(d["conf"]), tuple(float(v) for v in d["bbox"]))
                    for d in r.get("detections") or []]
            extra = {}
            if self.classifier is not None and dets:
                dets, gone = self.classifier.split(self.classifier.classify_file(p, dets))
                if gone:
                    extra[NOT_ANIMAL_KEY] = gone
            yield ImageResult(name, tuple(dets), None, max((d.conf for d in dets), default=0.0), extra)

    def __call__(self, paths, root=None):
        paths, root = self._split(paths, root)
        return self._run(self._one, paths, root)


class MDJsonBackend:
    """Import an existing MegaDetector batch result instead of running a network.

    Frames are matched by path relative to ``root``, then by path suffix, then by unique file name.
    A frame absent from the file becomes a failure ("not in <file>"), so the run still accounts for it.
    """

    def __init__(self, cfg: DetectConfig, file: str | Path):
        from spotid.detect.mdjson import MDJsonError, read_batch

        try:
            self.batch = read_batch(file)
        except MDJsonError as e:
            raise DetectorError(str(e)) from None
        self.file = Path(file)
        typical, conservative = self.batch.thresholds()
        self.typical_threshold = float(typical if typical is not None else 0.2)
        self.conservative_threshold = float(conservative if conservative is not None else 0.05)
        self.threshold = cfg.threshold if cfg.threshold is not None else 0.0
        self.version = f"mdjson:{self.batch.detector or 'unknown'}"
        self.found_min_leopard_p = None   # the file's "leopard" probabilities are another classifier's
        self._by_rel = {}
        self._by_name: dict[str, list] = {}
        for im in self.batch.images:
            key = im.file.replace("\\", "/").lstrip("./")
            self._by_rel[key] = im
            self._by_name.setdefault(key.rsplit("/", 1)[-1].lower(), []).append(im)

    def lookup(self, rel: str) -> ImageResult | None:
        rel = rel.replace("\\", "/")
        if rel in self._by_rel:
            return self._by_rel[rel]
        for key, im in self._by_rel.items():  # absolute paths in the file, or a deeper root
            if key.endswith("/" + rel) or rel.endswith("/" + key):
                return im
        cands = self._by_name.get(rel.rsplit("/", 1)[-1].lower(), [])
        return cands[0] if len(cands) == 1 else None

    def __call__(self, paths, root=None):
        root = Path(root) if root is not None else None
        for p in paths:
            p = Path(p)
            name = _rel(p, root)
            im = self.lookup(name)
            if im is None:
                yield ImageResult(name, (), f"not in {self.file.name}")
                continue
            if im.failure:
                yield ImageResult(name, (), im.failure)
                continue
            dets = tuple(d for d in im.detections if d.conf >= self.threshold)
            yield ImageResult(name, dets, None, max((d.conf for d in dets), default=0.0), dict(im.extra))


def _check_megadetector_weights(cfg: DetectConfig) -> str:
    weights = cfg.megadetector_weights
    if not weights:
        raise DetectorError("the megadetector backend needs a weights file: pass --megadetector-weights "
                            "md_v5a.0.0.pt (or a model name such as MDV5A that the megadetector package "
                            "downloads when you have the network)", option="--megadetector-weights")
    if Path(weights).suffix and not Path(weights).exists():
        raise DetectorError(f"MegaDetector weights {weights} do not exist: download them "
                            "(https://github.com/agentmorris/MegaDetector) and pass the path",
                            option="--megadetector-weights")
    return weights


def _check_named_model(kind: str, path, option: str) -> None:
    """Read the card (and check the weights' sha256) of a ``kind`` model given by path; None = the default,
    checked where it is loaded."""
    if not path:
        return
    from spotid.modelstore import ModelError, resolve

    try:
        resolve(kind, path)
    except ModelError as e:
        raise DetectorError(str(e), option=option) from None


def check_detector(cfg: DetectConfig) -> None:
    """Refuse a detector choice that cannot work, cheaply and before anything is written (no network built):
    an unknown backend name, MegaDetector without weights or package, an MD JSON file that is missing or not
    MD JSON, and a detector or classifier model folder named by path whose card or weights are not sound
    (only those the backend uses). ``spotid process`` calls it before it creates a catalog, so a typo leaves
    nothing behind."""
    name = cfg.detector
    if name == "builtin":
        _check_named_model("detector", cfg.model, "--model")
        _check_named_model("classifier", cfg.classifier if cfg.use_classifier else None, "--classifier")
        return
    if name == "megadetector":
        _check_megadetector_weights(cfg)
        import importlib.util

        if importlib.util.find_spec("megadetector") is None:
            raise DetectorError("the megadetector backend needs the megadetector package: "
                                "pip install 'spotid[megadetector]'")
        _check_named_model("classifier", cfg.classifier if cfg.use_classifier else None, "--classifier")
        return
    if name.startswith("mdjson:"):
        from spotid.detect.mdjson import MDJsonError, read_batch

        try:
            read_batch(name.split(":", 1)[1])
        except MDJsonError as e:
            raise DetectorError(str(e)) from None
        return
    raise DetectorError(f"unknown detector {name!r}: use builtin, megadetector or mdjson:FILE.json")


def make_detector(cfg: DetectConfig) -> Detector:
    """Build the backend named by ``cfg.detector`` (``builtin`` | ``megadetector`` | ``mdjson:FILE``)."""
    name = cfg.detector
    if name == "builtin":
        return BuiltinBackend(cfg)
    if name == "megadetector":
        return MegaDetectorBackend(cfg)
    if name.startswith("mdjson:"):
        return MDJsonBackend(cfg, name.split(":", 1)[1])
    raise DetectorError(f"unknown detector {name!r}: use builtin, megadetector or mdjson:FILE.json")
