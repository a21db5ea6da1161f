"""Local-feature verifier: a warped copy of a texture gives many inliers, another texture few."""
from __future__ import annotations

import numpy as np
import pytest

from spotid.identify.crops import Cropper, blur_score, padded_box, quality_score, touches_edge
from spotid.identify.verify import FeatureExtractor, Features, Verifier, vgg_available
from test_identify_helpers import coat, warp


requires_vgg = pytest.mark.skipif(not vgg_available(), reason="descriptor rootsift+vgg needs OpenCV's contrib build "
                                  "(optional; spotid installs plain opencv-python)")


@pytest.fixture(scope="module")
def fx():
    return FeatureExtractor(max_keypoints=500)


def test_warped_copy_verifies_and_other_texture_does_not(fx):
    a = coat(1)
    fa, fw, fb = fx(a), fx(warp(a, 7)), fx(coat(2))
    assert len(fa) > 100
    v = Verifier()
    same, other = v(fa, fw), v(fa, fb)
    assert same.inliers >= 40, same
    assert other.inliers <= 8, other
    assert same.inliers > 5 * max(other.inliers, 1)
    ev = same.evidence(limit=1000)
    assert len(ev["query_pts"]) == len(ev["ref_pts"]) == same.inliers
    assert len(same.evidence(limit=20)["query_pts"]) == 20  # evidence is capped for the catalog
    # inlier pairs are geometrically consistent: an affine fit maps query points near reference points
    import cv2
    q, r = np.array(ev["query_pts"], np.float32), np.array(ev["ref_pts"], np.float32)
    m, _ = cv2.estimateAffine2D(q, r)
    err = np.linalg.norm(q @ m[:, :2].T + m[:, 2] - r, axis=1)
    assert np.median(err) < 6


def test_homography_model_also_verifies(fx):
    a = coat(3)
    v = Verifier(model="homography", reproj_threshold=6.0)
    assert v(fx(a), fx(warp(a, 3))).inliers >= 30
    with pytest.raises(ValueError):
        Verifier(model="tps")


def test_infrared_grey_frame_matches_colour_frame(fx):
    a = coat(4)
    grey = np.repeat(np.asarray(warp(a, 5)).mean(2, keepdims=True), 3, axis=2) * 0.5  # dark IR frame
    assert Verifier()(fx(a), fx(grey.astype(np.uint8))).inliers >= 25


def test_features_round_trip_and_empty(fx):
    f = fx(coat(5))
    kp, de = f.to_bytes()
    back = Features.from_bytes(kp, de)
    assert np.array_equal(back.keypoints, f.keypoints) and np.array_equal(back.descriptors, f.descriptors)
    assert back.descriptors.dtype == np.float32 and back.keypoints.shape[1] == 2
    # RootSIFT rows have unit L2 norm
    assert np.allclose(np.linalg.norm(f.descriptors, axis=1), 1, atol=1e-3)
    assert len(fx(np.zeros((8, 8, 3), np.uint8))) == 0
    assert Verifier()(Features.empty(), f).inliers == 0
    with pytest.raises(ValueError):
        Features.from_bytes(kp, de[:-512])


@requires_vgg
def test_rootsift_plus_vgg_descriptors(fx):
    """RootSIFT and VGG-120 side by side: (N, 248) unit rows at the same keypoints as RootSIFT alone; they
    survive the catalog's byte round trip (D follows from the byte count), the version keeps cached
    RootSIFT features apart, and a warped copy still verifies while another coat does not."""
    both = FeatureExtractor(max_keypoints=500, descriptor="rootsift+vgg")
    a = coat(1)
    f, plain = both(a), fx(a)
    assert f.descriptors.shape == (len(plain), 248)
    assert np.array_equal(f.keypoints, plain.keypoints)
    assert np.allclose(f.descriptors[:, :128] * np.sqrt(2), plain.descriptors, atol=1e-5)  # RootSIFT part unchanged
    assert np.allclose(np.linalg.norm(f.descriptors, axis=1), 1, atol=1e-3)
    assert f.motion is not None and f.motion.descriptors.shape[1] == 248
    back = Features.from_bytes(*f.to_bytes(), False, *f.motion_bytes())
    assert np.array_equal(back.descriptors, f.descriptors) and back.motion.descriptors.shape[1] == 248
    assert both.version != fx.version and both.version.endswith("-vgg120")
    v = Verifier()
    assert v(f, both(warp(a, 7))).inliers >= 40
    assert v(f, both(coat(2))).inliers <= 8
    with pytest.raises(ValueError, match="descriptor"):
        FeatureExtractor(descriptor="orb")


def test_keypoint_cap(fx):
    assert len(FeatureExtractor(max_keypoints=50)(coat(6, 300, 400))) <= 50


def test_crop_geometry_and_quality(tmp_path):
    from PIL import Image

    assert padded_box((0.2, 0.2, 0.4, 0.2), 0.1) == pytest.approx((0.16, 0.18, 0.64, 0.42))
    assert padded_box((0.0, 0.9, 0.5, 0.1), 0.1)[3] == 1.0
    assert touches_edge((0.0, 0.5, 0.1, 0.1)) and not touches_edge((0.1, 0.1, 0.5, 0.5))
    sharp = coat(7, 300, 400)
    import cv2
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert blur_score(sharp[..., 0]) > 5 * blur_score(blurred[..., 0])
    assert quality_score(1000, 400, False) == 1.0
    assert quality_score(1000, 400, True) == pytest.approx(0.6)
    assert quality_score(1000, 100, False) == pytest.approx(0.5)
    assert quality_score(150 / 4, 400, False) == pytest.approx(0.5)
    # a crop from a real JPEG through the reduced-decode path
    frame = np.full((1200, 1600, 3), 90, np.uint8)
    frame[300:600, 400:840] = cv2.resize(sharp, (440, 300))
    p = tmp_path / "f.jpg"
    Image.fromarray(frame).save(p, quality=92)
    c = Cropper(pad=0.0, max_side=256)(p, (400 / 1600, 300 / 1200, 440 / 1600, 300 / 1200))
    assert max(c.image.size) == 256
    assert c.size_px == 300 and not c.touches_edge and c.quality > 0.8


def test_scenery_that_stays_put_in_one_camera_does_not_count(fx):
    from spotid.identify.verify import Place

    a = coat(1)
    fa, fw = fx(a), fx(a)
    h, w = np.asarray(a).shape[:2]
    here = Place("cam1", 0.1, 0.2, 0.5 / w, 0.5 / h)
    v = Verifier()
    assert v(fa, fw).inliers >= 40
    assert v(fa, fw, here, here).inliers == 0                       # same pixels, same camera: background
    assert v(fa, fw, here, Place("cam2", 0.1, 0.2, 0.5 / w, 0.5 / h)).inliers >= 40  # other camera
    moved = Place("cam1", 0.3, 0.2, 0.5 / w, 0.5 / h)               # the animal walked 0.2 of the frame
    assert v(fa, fw, here, moved).inliers >= 40
    assert Verifier(static_tol=0)(fa, fw, here, here).inliers >= 40  # filter off
    assert here.to_frame(np.array([[w, h]]))[0].tolist() == pytest.approx([0.6, 0.7])


def test_small_crops_are_upsampled_and_keypoints_stay_in_input_pixels():
    small = coat(8, 96, 128)
    plain = FeatureExtractor(max_keypoints=500, upsample_to=0)(small)
    up = FeatureExtractor(max_keypoints=500, upsample_to=512)(small)
    assert len(up) > len(plain)
    assert up.keypoints[:, 0].max() < 128 and up.keypoints[:, 1].max() < 96
    assert FeatureExtractor(upsample_to=512).version != FeatureExtractor(upsample_to=0).version


def test_roi_keeps_keypoints_inside_the_box(fx):
    f = fx(coat(9), roi=(50, 40, 200, 160))
    assert len(f) > 20
    k = f.keypoints
    assert (k[:, 0] >= 49).all() and (k[:, 0] <= 201).all() and (k[:, 1] >= 39).all() and (k[:, 1] <= 161).all()
    assert len(fx(coat(9), roi=(10, 10, 10, 10))) == 0


def test_box_inside_padded_crop_and_frame_map():
    from spotid.identify.crops import crop_geometry

    # padded box (0.16, 0.18, 0.64, 0.42) cut into 480 x 240 px: 0.001 of the frame per pixel
    roi, (x0, y0, sx, sy) = crop_geometry((0.2, 0.2, 0.4, 0.2), 0.1, (480, 240))
    assert roi == pytest.approx((40, 20, 440, 220))
    assert (x0, y0, sx, sy) == pytest.approx((0.16, 0.18, 0.001, 0.001))


def test_is_monochrome_tells_infrared_from_colour():
    from spotid.identify.verify import is_monochrome

    a = np.asarray(coat(10))
    grey = np.repeat(a.mean(2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert not is_monochrome(a)
    assert is_monochrome(grey)
    assert is_monochrome(grey[..., 0])                               # single channel
    jpeg_noise = np.clip(grey.astype(int) + np.random.default_rng(0).integers(-2, 3, grey.shape), 0, 255)
    assert is_monochrome(jpeg_noise.astype(np.uint8))                # JPEG chroma noise stays grey


def test_ir_blur_smooths_only_grey_frames_and_recovers_noisy_infrared_matches():
    a = coat(11)

    def noisy_ir(img, seed):
        g = np.asarray(img).mean(2) * 0.45                               # dark IR frame
        g = g + np.random.default_rng(seed).normal(0, 9, g.shape)        # pixel-sized sensor noise
        return np.repeat(np.clip(g, 0, 255)[..., None], 3, axis=2).astype(np.uint8)

    q, r = noisy_ir(warp(a, 4), 2), noisy_ir(warp(a, 6), 3)
    sharp, smooth = FeatureExtractor(max_keypoints=500, ir_blur=0), FeatureExtractor(max_keypoints=500, ir_blur=1.0)
    v = Verifier()
    # measured: 52 inliers sharp, 124 smoothed; another coat gets 0 either way
    assert v(smooth(q), smooth(r)).inliers > 1.5 * v(sharp(q), sharp(r)).inliers
    assert v(smooth(q), smooth(noisy_ir(coat(12), 4))).inliers <= 8
    # colour frames are untouched: same keypoints with and without the IR option
    assert np.array_equal(sharp(a).keypoints, smooth(a).keypoints)
    assert sharp.version != smooth.version                               # cached features are recomputed


def test_night_pairs_lose_their_chance_inliers():
    from dataclasses import replace

    a = coat(13)
    fx_ = FeatureExtractor(max_keypoints=500)
    fa, fw = fx_(a), fx_(warp(a, 5))
    assert not fa.infrared and not fw.infrared
    na, nw = replace(fa, infrared=True, motion=None), replace(fw, infrared=True, motion=None)  # same points, at night
    v = Verifier(ir_chance_inliers=7)
    full = v(fa, fw)
    assert full.inliers >= 40 and full.chance == 0
    assert v(replace(fa, motion=None), nw).inliers == full.inliers   # one colour frame: no correction
    night = v(na, nw)
    assert night.inliers == full.inliers - 7 and night.chance == 7
    assert len(night.evidence(1000)["query_pts"]) == full.inliers      # the review page still sees every pair
    assert night.evidence()["chance"] == 7 and "chance" not in full.evidence()
    assert Verifier(ir_chance_inliers=0)(na, nw).inliers == full.inliers
    assert v.version != Verifier(ir_chance_inliers=0).version
    # a night pair with no more than chance agreement is no evidence at all
    few = Verifier(ir_chance_inliers=full.inliers - 2)(na, nw)
    assert few.inliers == 0 and few.chance == 0
    # the flag survives the catalog's byte round trip
    kp, de = na.to_bytes()
    assert Features.from_bytes(kp, de, True).infrared and not Features.from_bytes(kp, de).infrared


def test_day_crop_is_matched_to_a_night_crop_through_its_motion_blurred_features():
    from dataclasses import replace

    from spotid.identify.verify import horizontal_blur

    a = coat(15)
    # a 1-D check of the kernel: a box 5 px long spreads one bright pixel over 5 pixels of 1/5 each
    dot = np.zeros((3, 21), np.uint8)
    dot[1, 10] = 250
    assert horizontal_blur(dot, 5)[1, 8:13].tolist() == [50] * 5 and horizontal_blur(dot, 5)[1, 7] == 0
    assert horizontal_blur(dot, 1) is dot                              # no smear: untouched

    def night(img, seed, smear):  # grey, noisy, smeared along the direction of travel
        g = horizontal_blur(np.asarray(img).mean(2).astype(np.uint8), smear).astype(np.float64) * 0.6
        g = g + np.random.default_rng(seed).normal(0, 4, g.shape)
        return np.repeat(np.clip(g, 0, 255)[..., None], 3, axis=2).astype(np.uint8)

    fx_ = FeatureExtractor(max_keypoints=500, motion_blur=0.04, night_motion_blur=0)  # 0.04 x 220 px: 9 px
    day, ir, other = fx_(a), fx_(night(warp(a, 7), 5, 10)), fx_(night(coat(16), 6, 10))
    assert day.motion is not None and len(day.motion) > 0 and ir.infrared and ir.motion is None
    assert not np.array_equal(day.motion.descriptors[:5], day.descriptors[:5])
    assert FeatureExtractor(max_keypoints=500, motion_blur=0)(a).motion is None
    assert fx_.version != FeatureExtractor(motion_blur=0).version       # cached features are recomputed
    v = Verifier(ir_chance_inliers=7)
    sharp_only = v(replace(day, motion=None), ir).inliers
    with_motion = v(day, ir)
    assert with_motion.inliers > sharp_only and with_motion.chance == 0  # measured: 167 against 34
    assert abs(v(ir, day).inliers - with_motion.inliers) <= 3            # either side may be the query
    assert v(day, other).inliers <= 8                                    # another coat stays at chance
    # the motion set is only for day/night: day/day uses the sharp features on both sides
    assert v(day, day).inliers == v(replace(day, motion=None), replace(day, motion=None)).inliers
    # and it survives the catalog's byte round trip
    back = Features.from_bytes(*day.to_bytes(), False, *day.motion_bytes())
    assert np.array_equal(back.motion.descriptors, day.motion.descriptors)
    assert Features.from_bytes(*ir.to_bytes(), True, *ir.motion_bytes()).motion is None


def test_two_night_crops_smeared_differently_are_also_tried_smeared_alike():
    from dataclasses import replace

    from spotid.identify.verify import horizontal_blur

    def night(img, seed, smear):
        g = horizontal_blur(np.asarray(img).mean(2).astype(np.uint8), smear).astype(np.float64) * 0.6
        g = g + np.random.default_rng(seed).normal(0, 3, g.shape)
        return np.repeat(np.clip(g, 0, 255)[..., None], 3, axis=2).astype(np.uint8)

    a = coat(17)
    fx_ = FeatureExtractor(max_keypoints=500, night_motion_blur=0.05)   # 0.05 x 220 px: an 11 px smear
    slow, fast = fx_(night(a, 1, 1)), fx_(night(warp(a, 4), 2, 12))  # the same coat at two speeds
    other = fx_(night(coat(18), 3, 12))
    assert slow.infrared and slow.motion is not None and slow.motion.infrared  # it is the same night crop
    v = Verifier(ir_chance_inliers=8)
    plain = v(replace(slow, motion=None), replace(fast, motion=None))
    ladder = v(slow, fast)
    assert ladder.inliers > plain.inliers and ladder.chance == 8       # measured: 118 against 39
    assert v(slow, other).inliers <= 8                                   # another coat stays near nothing
    assert FeatureExtractor(night_motion_blur=0)(night(a, 1, 1)).motion is None


def test_infrared_crop_is_recognised_from_the_stored_jpeg(tmp_path):
    from PIL import Image

    a = np.asarray(coat(14))
    Image.fromarray(a).save(tmp_path / "day.jpg", quality=90)
    Image.fromarray(np.repeat(a.mean(2, keepdims=True), 3, axis=2).astype(np.uint8)).save(tmp_path / "ir.jpg", quality=90)
    fx_ = FeatureExtractor(max_keypoints=300)
    assert not fx_(Image.open(tmp_path / "day.jpg").convert("RGB")).infrared
    assert fx_(Image.open(tmp_path / "ir.jpg").convert("RGB")).infrared


def test_unreadable_cached_crop_is_logged_not_fatal(tmp_path, caplog):
    from PIL import Image

    from spotid.identify.crops import stored_crop_size

    good = tmp_path / "good.jpg"
    Image.fromarray(np.asarray(coat(15))).save(good, quality=90)
    assert stored_crop_size(good) == Image.open(good).size
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:300])                          # truncated cache file
    assert stored_crop_size(bad) is None
    assert "delete the file and run identify again" in caplog.text
