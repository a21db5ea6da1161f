"""Settings of ``spotid identify``: :class:`IdentifyConfig` (defaults mirrored in ``configs/identify.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class CropSettings:
    """What :class:`~spotid.identify.cropstore.CropStore` needs: how crops are cut and batched."""

    pad: float
    box_only: bool
    batch_size: int


@dataclass(frozen=True)
class FeatureSettings:
    """What :meth:`FeatureExtractor.from_config <spotid.identify.verify.FeatureExtractor.from_config>` needs."""

    max_keypoints: int
    descriptor: str
    clahe: bool
    upsample_to: int
    ir_blur: float
    motion_blur: float
    night_motion_blur: float
    foreground: bool
    foreground_model: str
    foreground_threshold: float | None
    foreground_dilate: float | None


@dataclass(frozen=True)
class VerifierSettings:
    """What :meth:`Verifier.from_config <spotid.identify.verify.Verifier.from_config>` and the local
    matchers' builders (:mod:`spotid.identify.local`) need."""

    ratio: float
    mutual: bool
    geometric_model: str
    reproj_threshold: float
    static_tol: float
    ir_chance_inliers: int


@dataclass(frozen=True)
class WriterSettings:
    """What :class:`~spotid.identify.writer.SightingWriter` needs: when a match is accepted, how many
    candidates are kept."""

    auto_accept: bool
    auto_accept_threshold: float
    top_k: int


@dataclass(frozen=True)
class IdentifyConfig:
    """Settings of ``spotid identify`` (mirrored in ``configs/identify.yaml``)."""

    yaml_name = "identify"

    # crops
    pad: float = 0.1                    # padding around the box, fraction of its size per side
    crop_max_side: int = 512            # long side of the stored crop JPEG (px)
    blur_ref: float = 150.0             # Laplacian variance at which sharpness counts as full
    size_ref: int = 200                 # box short side (original px) at which size counts as full
    edge_penalty: float = 0.6           # quality factor for boxes touching the frame edge
    quality_floor: float = 0.25         # below: kept and matched, but never founds a new individual
    found_min_conf: float | None = None  # detection conf a burst needs to found one (None = detector's typical)
    found_min_leopard_p: float | None = None  # P(leopard) a burst's best frame needs to found one (None = classifier card's; 0 = off)
    found_min_self_inliers: int = 1     # inliers two frames of a burst must share to found one (0 = off)
    found_min_frames: int = 2           # leopard frames a new-individual cluster needs, when its bursts had them (1 = off)
    found_burst_s: float | None = 10.0  # a frame's burst for found_min_frames: its sequence's frames this close (s; None = all)
    pass_gap_s: float | None = None     # identify's bursts: a sequence is cut where frames are more than this apart (None = whole)
    # local features / verifier
    max_keypoints: int = 600
    descriptor: str = "rootsift"        # rootsift | rootsift+vgg (RootSIFT and VGG-120 at each keypoint; opencv-contrib)
    clahe: bool = True
    upsample_to: int = 512              # crops with a smaller long side are upscaled before SIFT (0 = never)
    ir_blur: float = 1.0                # Gaussian sigma (crop px) smoothing infrared crops before SIFT (0 = off)
    motion_blur: float = 0.02           # horizontal blur (x box width) of colour crops' second set, matched against night crops (0 = off)
    night_motion_blur: float = 0.03     # the same for infrared crops, tried against other night crops (0 = off)
    box_only: bool = True               # keypoints only inside the detection box (the padding is background)
    foreground: bool = True             # ... and only where the foreground model sees the animal
    foreground_model: str = ""          # foreground model folder ("" = the catalog's active one, else models/foreground)
    foreground_threshold: float | None = None  # probability cut (None = the model card's)
    foreground_dilate: float | None = None     # grow the mask by this fraction of the crop's long side (None = card's)
    ratio: float = 0.8
    mutual: bool = True
    geometric_model: str = "affine"
    reproj_threshold: float = 12.0
    static_tol: float = 0.01            # same camera: matches that do not move in the frame are scenery
    ir_chance_inliers: int = 8          # inliers two different animals share by chance in a night/night pair
    # matcher
    scorer: str = "fusion"              # fusion (embedding, RootSIFT, ALIKED: models/matcher/fusion) | calibration (cosine + RootSIFT, models/matcher)
    fusion: str | None = None           # fusion folder or file (None = models/matcher/fusion)
    verify_all: int = 300               # galleries up to this size are verified whole
    shortlist: int = 30                 # else: this many by cosine + this many by descriptor votes
    top_k: int = 5                      # candidates stored per sighting
    threshold: float = 0.5              # P(right individual) to propose a known one; below = new candidate
    auto_accept: bool = False
    auto_accept_threshold: float = 0.95
    new_cluster_threshold: float = 0.5  # P(same individual) between two new-candidate groups to join them
    new_cluster_min_inliers: int = 12   # ... and at least these inliers between them (0 = off)
    new_cluster_min_pair_prob: float | None = None  # ... or a fused pair P(same) at least this (None = off)
    cluster_linkage: str = "decision"   # decision (greedy, competitors re-evaluated) | single | average | complete
    pair_seconds: float | None = 10.0   # paired-station co-occurrence window joining new clusters (None = off)
    burst_flank_vote: bool = True       # left/right frames outvoted by their burst take its flank
    reflank_new_bursts: bool = True     # a new burst whose coat matches the other flank's new bursts takes that flank
    match_unknown_flank: bool = True    # frames without a left/right flank may join a known individual (never found one)
    unknown_flank_min_inliers: int = 10  # ... and only on more inliers than different animals reach (p99 6-8)
    batch_size: int = 32
    # models (None = the active/shipped ones)
    embedder_model: str | None = None
    flank_model: str | None = None
    flank_threshold: float | None = None  # below: flank 'unknown' (unusable); None = the model card's
    calibration: str | None = None

    def part(self, cls):
        """The sub-config ``cls`` (a frozen dataclass whose fields are some of these) with this config's
        values: each collaborator gets the settings it reads, not the whole bag (the YAML stays flat)."""
        return cls(**{f.name: getattr(self, f.name) for f in fields(cls)})

    @property
    def crops(self) -> CropSettings:
        return self.part(CropSettings)

    @property
    def features(self) -> FeatureSettings:
        return self.part(FeatureSettings)

    @property
    def verifier(self) -> VerifierSettings:
        return self.part(VerifierSettings)

    @property
    def writer(self) -> WriterSettings:
        return self.part(WriterSettings)

    def __post_init__(self):
        for name in ("threshold", "auto_accept_threshold", "new_cluster_threshold", "quality_floor"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}={v} must be a probability in [0, 1]")
        if self.geometric_model not in ("affine", "homography"):
            raise ValueError(f"geometric_model={self.geometric_model!r}: use affine or homography")
        if self.new_cluster_min_pair_prob is not None and not 0.0 < self.new_cluster_min_pair_prob <= 1.0:
            raise ValueError(f"new_cluster_min_pair_prob={self.new_cluster_min_pair_prob}: use a probability in (0, 1] "
                             "or null (off)")
        if self.new_cluster_min_inliers < 0:
            raise ValueError(f"new_cluster_min_inliers={self.new_cluster_min_inliers}: use 0 (off) or more")
        from spotid.identify.verify import DESCRIPTORS

        if self.descriptor not in DESCRIPTORS:
            raise ValueError(f"descriptor={self.descriptor!r}: use {' or '.join(DESCRIPTORS)}")
        if self.found_min_leopard_p is not None and not 0.0 <= self.found_min_leopard_p <= 1.0:
            raise ValueError(f"found_min_leopard_p={self.found_min_leopard_p}: use a probability in [0, 1] (0 = off), "
                             "or null for the classifier card's floor")
        if self.found_min_frames < 1:
            raise ValueError(f"found_min_frames={self.found_min_frames}: use 1 (off) or more")
        if self.pass_gap_s is not None and self.pass_gap_s <= 0:
            raise ValueError(f"pass_gap_s={self.pass_gap_s}: use seconds > 0, or null to keep whole sequences as bursts")
        if self.found_burst_s is not None and self.found_burst_s < 0:
            raise ValueError(f"found_burst_s={self.found_burst_s}: use seconds >= 0, or null for the whole sequence")
        if self.scorer not in ("calibration", "fusion"):
            raise ValueError(f"scorer={self.scorer!r}: use calibration or fusion")
        if self.cluster_linkage not in ("decision", "single", "average", "complete"):
            raise ValueError(f"cluster_linkage={self.cluster_linkage!r}: use decision, single, average or complete")
