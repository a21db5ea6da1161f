"""Rendering speed of the synthetic card, against the floor of only encoding frames, in one run.

    python benchmarks/synth.py [--frames 300] [--width 1920 --height 1080] [--out /tmp/spotid-bench-synth]

Renders the first ``--frames`` frames of the issue's done-when world (6 stations, 20 days, 10
leopards, seed 7) single-threaded, each written as a JPEG with EXIF, and prints frames/s (wall and
CPU) for: all frames, empty frames, frames with an animal; plus the baseline of encoding and
writing the cached station background alone (what a renderer that drew nothing would cost), and
the ratio. Scenes are built before timing (they are cached per camera in a real run).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spotid.synth.card import encode_jpeg, exif_bytes  # noqa: E402
from spotid.synth.config import SynthConfig  # noqa: E402
from spotid.synth.render import FrameRenderer  # noqa: E402
from spotid.synth.scene import station_habitat, station_scene  # noqa: E402
from spotid.synth.world import SUNRISE, SUNSET, World  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--out", default="/tmp/spotid-bench-synth")
    a = ap.parse_args()
    cfg = SynthConfig(stations=6, days=20, individuals=10, seed=7, width=a.width, height=a.height)
    world = World.from_config(cfg)
    trig = world.triggers()
    # interleave: take triggers in time order across cameras, like the mix on a card
    trig = sorted(trig, key=lambda t: (t.start, t.deployment))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    scenes = {d: station_scene(cfg.seed, d, cfg.width, cfg.height, None, station_habitat(cfg.seed, s.id))
              for d, s in world.deployments}
    ren = FrameRenderer(cfg.seed)
    stats = {"empty": [0, 0.0, 0.0], "animal": [0, 0.0, 0.0]}
    n = 0
    for t in trig:
        for f in range(cfg.burst):
            if n >= a.frames:
                break
            when = t.start + timedelta(seconds=f)
            hour = when.hour + when.minute / 60
            w0, c0 = time.perf_counter(), time.process_time()
            fr = ren(scenes[t.deployment], species=t.species, individual=t.individual, view=t.view, distance=t.distance,
                     event=t.event, deployment=t.deployment, frame_num=f, hour=hour,
                     night=hour < SUNRISE or hour >= SUNSET, stamp=("RECONYX", when.isoformat(), t.deployment),
                     temperature_c=0)
            data = encode_jpeg(fr.image, cfg.jpeg_quality, exif_bytes("RECONYX", "HF2", "X", when.strftime("%Y:%m:%d %H:%M:%S"), "+10:00"))
            (out / f"{n:05d}.JPG").write_bytes(data)
            k = "empty" if t.species == "empty" else "animal"
            stats[k][0] += 1
            stats[k][1] += time.perf_counter() - w0
            stats[k][2] += time.process_time() - c0
            n += 1
    # baseline: encode + write the cached background only
    w0, c0 = time.perf_counter(), time.process_time()
    bg = list(scenes.values())
    for i in range(min(100, a.frames)):
        data = encode_jpeg(bg[i % len(bg)].full, cfg.jpeg_quality, exif_bytes("RECONYX", "HF2", "X", "2025:10:20 12:00:00", "+10:00"))
        (out / f"base{i:05d}.JPG").write_bytes(data)
    nb = min(100, a.frames)
    base_wall, base_cpu = (time.perf_counter() - w0) / nb, (time.process_time() - c0) / nb
    tot_n = sum(v[0] for v in stats.values())
    tot_w = sum(v[1] for v in stats.values())
    tot_c = sum(v[2] for v in stats.values())
    res = {
        "frames": tot_n, "size": [cfg.width, cfg.height],
        "frames_per_s_wall": round(tot_n / tot_w, 2), "frames_per_s_cpu": round(tot_n / tot_c, 2),
        "by_kind": {k: {"frames": v[0], "ms_per_frame_wall": round(1000 * v[1] / max(v[0], 1), 1),
                        "ms_per_frame_cpu": round(1000 * v[2] / max(v[0], 1), 1)} for k, v in stats.items()},
        "baseline_encode_only_ms_cpu": round(1000 * base_cpu, 1), "baseline_encode_only_ms_wall": round(1000 * base_wall, 1),
        "ratio_cpu_vs_encode_only": round((tot_c / tot_n) / base_cpu, 2),
    }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
