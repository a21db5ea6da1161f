"""spotid.synth: a synthetic camera-trap world with known leopards, for training, tests and demos.

Python API::

    from spotid.synth import SynthConfig, World, CardWriter, CropConfig, CropWriter
    summary = CardWriter(SynthConfig(stations=6, days=20, individuals=10, seed=7))("card/")
    crops = CropWriter(CropConfig(individuals=20, per_flank=8, seed=1))("crops/")
    world = World.from_config(SynthConfig(seed=7)); world.visits(); world.triggers()
"""
from spotid.synth.config import SynthConfig
from spotid.synth.world import CATEGORIES, Individual, Station, Trigger, Visit, World


def __getattr__(name):   # the renderers import cv2; keep ``import spotid.synth`` light
    if name in ("CardWriter", "CardSummary"):
        from spotid.synth import card
        return getattr(card, name)
    if name in ("CropWriter", "CropConfig", "CropSummary"):
        from spotid.synth import crops
        return getattr(crops, name)
    raise AttributeError(name)


__all__ = ["SynthConfig", "World", "Individual", "Station", "Trigger", "Visit", "CATEGORIES", "CardWriter",
           "CardSummary", "CropWriter", "CropConfig", "CropSummary"]
