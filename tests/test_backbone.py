"""The pretrained backbone: key mapping, builder contract, and the ImageNet head on a real leopard."""
from __future__ import annotations

import csv
import socket

import numpy as np
import pytest
import torch

from spotid.backbone import (IMAGENET_BIG_CATS, BackboneError, build_backbone, imagenet_weights_file,
                             map_lite0_keys, normalise)


def test_key_mapping_by_hand():
    t = torch.zeros(1)
    state = {"_conv_stem.weight": t, "_bn0.running_mean": t, "_blocks.0._depthwise_conv.weight": t,
             "_blocks.0._project_conv.weight": t, "_blocks.1._expand_conv.weight": t,
             "_blocks.1._bn0.weight": t, "_blocks.2._project_conv.weight": t, "_blocks.3._bn2.bias": t,
             "_blocks.15._bn1.weight": t, "_conv_head.weight": t, "_bn1.bias": t, "_fc.weight": t}
    assert set(map_lite0_keys(state)) == {
        "conv_stem.weight", "bn1.running_mean", "blocks.0.0.conv_dw.weight", "blocks.0.0.conv_pw.weight",
        "blocks.1.0.conv_pw.weight", "blocks.1.0.bn1.weight", "blocks.1.1.conv_pwl.weight",
        "blocks.2.0.bn3.bias", "blocks.6.0.bn2.weight", "conv_head.weight", "bn2.bias", "classifier.weight"}
    with pytest.raises(BackboneError):
        map_lite0_keys({"_blocks.16._bn0.weight": t})


def test_builder_shapes_without_weights():
    net = build_backbone(weights=None, num_classes=0)
    x = torch.rand(2, 3, 96, 128)
    with torch.inference_mode():
        fmap = net.forward_features(normalise(x))
        pooled = net(normalise(x))
    assert fmap.shape == (2, 1280, 3, 4)
    assert pooled.shape == (2, 1280)


def test_bad_weights_path_names_the_fix(tmp_path):
    with pytest.raises(BackboneError, match="weights='imagenet'"):
        build_backbone(weights=tmp_path / "missing.pth")


def test_imagenet_weights_every_key_maps_and_no_network(monkeypatch):
    def refuse(*a, **k):
        raise OSError("network is off in this test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    path = imagenet_weights_file()
    assert path.is_file()
    state = map_lite0_keys(torch.load(path, map_location="cpu", weights_only=True))
    net = build_backbone(weights="imagenet")           # strict check inside: nothing missing or extra
    assert set(state) == set(net.state_dict())


@pytest.mark.shared
def test_imagenet_head_ranks_a_big_cat_first_on_real_leopards(shared):
    from PIL import Image

    root = shared / "data" / "detection" / "amur-leopard-voc"
    rows = list(csv.DictReader(open(root / "csv" / "test_labels.csv")))[:8]
    crops = []
    for r in rows:
        img = Image.open(root / "test-images" / r["filename"]).convert("RGB")
        box = [int(float(r[k])) for k in ("xmin", "ymin", "xmax", "ymax")]
        if box[2] - box[0] < 16 or box[3] - box[1] < 16:
            continue
        crops.append(np.asarray(img.crop(box).resize((224, 224))))
    assert len(crops) >= 5
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    net = build_backbone(weights="imagenet")
    with torch.inference_mode():
        top = net(normalise(x)).argmax(1).tolist()
    assert all(t in IMAGENET_BIG_CATS for t in top), top
    # and the mapping matters: the same crops through a random network are not big cats. Its argmax says
    # little (an untrained network gives nearly every input the same class, now and then a big cat), so
    # compare the probability put on the big-cat classes: most of it for the mapped weights, a sliver for
    # random ones (its largest softmax output is ~0.03-0.1)
    cats = list(IMAGENET_BIG_CATS)
    torch.manual_seed(0)
    rnd = build_backbone(weights=None)
    with torch.inference_mode():
        p_mapped = net(normalise(x)).softmax(1)[:, cats].sum(1)
        p_random = rnd(normalise(x)).softmax(1)[:, cats].sum(1)
    assert (p_mapped > 0.5).all(), p_mapped
    assert (p_random < 0.5).all(), p_random
