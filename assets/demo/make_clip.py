"""Write the built-in demo dance clip: an articulated figure dancing a looping choreography.

    python assets/demo/make_clip.py [--out assets/demo/dance.mp4] [--size 256] [--fps 24] [--seconds 10]

No randomness: the figure is a stick body with thick limbs (head, torso, arms, legs) posed by joint
angles; key poses land on the beat (120 bpm) and are eased in between, with a bounce on every beat
and the feet kept on the floor. The choreography loops, so the clip loops seamlessly. Frames are
drawn with OpenCV and piped to FFmpeg by breakgan's VideoWriter (H.264, yuv420p).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

from breakgan.media import VideoWriter

BPM = 120.0
# Limb lengths in units of figure height (standing height ~1.0 with head).
TORSO, NECK, HEAD_R = 0.32, 0.04, 0.085
UPPER_ARM, FOREARM = 0.20, 0.18
THIGH, SHIN = 0.25, 0.24

# Colours (RGB).
WALL, FLOOR = (34, 40, 58), (58, 52, 64)
SKIN, SHIRT, TROUSERS, SHOES, HAIR = (236, 188, 150), (222, 64, 72), (40, 86, 160), (30, 30, 36), (50, 36, 30)

# A pose: angles in degrees. Limb angles are absolute: 0 = hanging straight down, +90 = pointing to the
# image's right, -90 = to the left, +-180 = up. "l" is the limb on the image's left. torso: lean from
# upright (+ = top leans right). head: tilt. sway: pelvis x offset (figure heights). lift: jump height.
KEYS = ("torso", "head", "l_up", "l_fo", "r_up", "r_fo", "l_th", "l_sh", "r_th", "r_sh", "sway", "lift")
POSES = {
    "stand":     (0, 0, -15, -8, 15, 8, -6, -3, 6, 3, 0.0, 0.0),
    "v_up":      (0, 0, -145, -160, 145, 160, -18, -12, 18, 12, 0.0, 0.0),
    "disco_r":   (8, 10, 30, 55, 140, 150, -4, -4, 28, 8, 0.05, 0.0),
    "disco_l":   (-8, -10, -140, -150, -30, -55, -28, -8, 4, 4, -0.05, 0.0),
    "squat":     (0, 0, -80, -95, 80, 95, -62, -8, 62, 8, 0.0, 0.0),
    "kick_r":    (-10, -6, -100, -75, 95, 120, -4, -2, 75, 85, -0.04, 0.0),
    "kick_l":    (10, 6, -95, -120, 100, 75, -75, -85, 4, 2, 0.04, 0.0),
    "hips":      (10, 8, -45, 40, 45, -40, -10, -4, 20, 10, 0.06, 0.0),
    "robot":     (0, 0, -90, -180, 90, 180, -14, -10, 14, 10, 0.0, 0.0),
    "robot_dn":  (0, 0, -90, 0, 90, 0, -20, -30, 20, 30, 0.0, 0.0),
    "star":      (0, 0, -125, -135, 125, 135, -32, -36, 32, 36, 0.0, 0.12),
    "lean_l":    (-18, -12, -120, -135, -60, -100, -20, -10, 10, 30, -0.08, 0.0),
    "lean_r":    (18, 12, 60, 100, 120, 135, -10, -30, 20, 10, 0.08, 0.0),
    "knee_l":    (4, 4, -60, -150, 40, 10, -85, 0, 6, 3, 0.03, 0.0),
    "knee_r":    (-4, -4, -40, -10, 60, 150, -6, -3, 85, 0, -0.03, 0.0),
    "point_up":  (-6, -14, -20, -5, 160, 172, -10, -4, 12, 6, -0.02, 0.0),
}
# One pose per beat; 20 beats = 10 s at 120 bpm; the last beat eases back into the first pose.
CHOREOGRAPHY = ("stand", "v_up", "disco_r", "disco_l", "disco_r", "squat", "kick_r", "kick_l",
                "hips", "robot", "robot_dn", "robot", "star", "squat", "lean_l", "lean_r",
                "knee_l", "knee_r", "point_up", "star")


def smoothstep(t: float) -> float:
    return t * t * (3.0 - 2.0 * t)


def pose_at(beat: float) -> dict[str, float]:
    """Joint angles at a time in beats: hold a little on each beat, ease to the next pose."""
    n = len(CHOREOGRAPHY)
    i = int(math.floor(beat)) % n
    frac = beat - math.floor(beat)
    t = smoothstep(min(1.0, max(0.0, (frac - 0.15) / 0.7)))
    a, b = POSES[CHOREOGRAPHY[i]], POSES[CHOREOGRAPHY[(i + 1) % n]]
    return {k: (1 - t) * x + t * y for k, x, y in zip(KEYS, a, b)}


def _dir_down(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([math.sin(a), math.cos(a)])  # image coordinates, y down


def skeleton(p: dict[str, float], beat: float) -> dict[str, np.ndarray]:
    """Joint positions in figure units (y down), feet on the floor at y = 0, pelvis near x = 0."""
    pelvis = np.array([p["sway"], 0.0])
    hip_w = 0.055
    t = math.radians(p["torso"])
    up = np.array([math.sin(t), -math.cos(t)])  # from the pelvis to the neck
    side = np.array([math.cos(t), math.sin(t)])  # across the body, towards the image's right
    j = {"pelvis": pelvis}
    j["l_hip"], j["r_hip"] = pelvis - side * hip_w, pelvis + side * hip_w
    j["neck"] = pelvis + up * TORSO
    j["l_sho"], j["r_sho"] = j["neck"] - side * 0.09 - up * 0.02, j["neck"] + side * 0.09 - up * 0.02
    h = math.radians(p["torso"] + p["head"])
    head_up = np.array([math.sin(h), -math.cos(h)])
    j["head"] = j["neck"] + head_up * (NECK + HEAD_R)
    for s in ("l", "r"):
        j[f"{s}_elb"] = j[f"{s}_sho"] + _dir_down(p[f"{s}_up"]) * UPPER_ARM
        j[f"{s}_hand"] = j[f"{s}_elb"] + _dir_down(p[f"{s}_fo"]) * FOREARM
        j[f"{s}_knee"] = j[f"{s}_hip"] + _dir_down(p[f"{s}_th"]) * THIGH
        j[f"{s}_foot"] = j[f"{s}_knee"] + _dir_down(p[f"{s}_sh"]) * SHIN
    # Put the lower foot on the floor, then add the jump and a small dip on every beat.
    floor_shift = -max(j["l_foot"][1], j["r_foot"][1])
    bounce = 0.025 * (1 + math.cos(2 * math.pi * beat)) / 2  # knees give on every beat
    shift = np.array([0.0, floor_shift - p["lift"] * math.sin(math.pi * (beat % 1.0)) + bounce])
    return {k: v + shift for k, v in j.items()}


def draw_frame(beat: float, size: int) -> np.ndarray:
    """One RGB frame (size x size) of the dance at a time in beats."""
    ss = 2  # draw at twice the size and downsample: smoother edges than LINE_AA alone
    s = size * ss
    img = np.empty((s, s, 3), np.uint8)
    floor_y = int(s * 0.90)
    img[:floor_y] = WALL
    img[floor_y:] = FLOOR
    p = pose_at(beat)
    j = skeleton(p, beat)
    scale = s * 0.78
    origin = np.array([s * 0.5, floor_y + s * 0.02])

    def px(name: str) -> tuple[int, int]:
        x, y = origin + j[name] * scale
        return int(round(x)), int(round(y))

    def limb(a: str, b: str, colour, width: float) -> None:
        cv2.line(img, px(a), px(b), colour, max(1, int(width * scale)), cv2.LINE_AA)

    # Shadow under the feet, squashed when in the air.
    fx = int((px("l_foot")[0] + px("r_foot")[0]) / 2)
    cv2.ellipse(img, (fx, int(origin[1])), (int(0.16 * scale), int(0.025 * scale)), 0, 0, 360,
                (26, 24, 32), -1, cv2.LINE_AA)
    for s_ in ("l", "r"):
        limb(f"{s_}_hip", f"{s_}_knee", TROUSERS, 0.075)
        limb(f"{s_}_knee", f"{s_}_foot", TROUSERS, 0.065)
        fxy = px(f"{s_}_foot")
        toe = (fxy[0] + int((-1 if s_ == "l" else 1) * 0.05 * scale), fxy[1])
        cv2.line(img, fxy, toe, SHOES, int(0.05 * scale), cv2.LINE_AA)
    torso = np.array([px("l_sho"), px("r_sho"), px("r_hip"), px("l_hip")], np.int32)
    cv2.fillPoly(img, [torso], SHIRT, cv2.LINE_AA)
    cv2.polylines(img, [torso], True, SHIRT, int(0.05 * scale), cv2.LINE_AA)
    limb("l_hip", "r_hip", TROUSERS, 0.08)
    limb("neck", "head", SKIN, 0.05)
    for s_ in ("l", "r"):
        limb(f"{s_}_sho", f"{s_}_elb", SHIRT, 0.065)
        limb(f"{s_}_elb", f"{s_}_hand", SKIN, 0.05)
        cv2.circle(img, px(f"{s_}_hand"), int(0.033 * scale), SKIN, -1, cv2.LINE_AA)
    hx, hy = px("head")
    r = int(HEAD_R * scale)
    cv2.circle(img, (hx, hy), r, SKIN, -1, cv2.LINE_AA)
    cv2.ellipse(img, (hx, hy), (r, r), int(p["torso"] + p["head"]), 180, 360, HAIR, -1, cv2.LINE_AA)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def write_clip(out: Path, *, size: int = 256, fps: int = 24, seconds: float = 10.0) -> Path:
    frames = int(round(seconds * fps))
    with VideoWriter(out, size, size, fps, crf=20, preset="slow") as vw:
        for i in range(frames):
            vw.write(draw_frame(i / fps * BPM / 60.0, size))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("dance.mp4"))
    ap.add_argument("--size", type=int, default=256, help="frame width and height in pixels")
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (10 s = one loop at 120 bpm)")
    a = ap.parse_args()
    print(write_clip(a.out, size=a.size, fps=a.fps, seconds=a.seconds))


if __name__ == "__main__":
    main()
