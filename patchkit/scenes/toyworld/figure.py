"""Articulated pedestrian figures: a 3-D stick skeleton posed, turned and drawn as a 2-D sprite.

The body lives in figure units (height 1, ``y`` up from the soles, ``x`` to the figure's side,
``z`` forward). A :class:`Pose` sets the walk phase, stride, arm angles, lean and the yaw
(0 = facing the camera, pi/2 = side view, pi = back view); :func:`skeleton` gives the joints and
:func:`render_figure` projects them (orthographic with a weak perspective term), sorts the body
parts by depth and paints them (tapered limbs, box torso, ellipse head) with the style's
materials. A patch image can be worn on the front of the torso; its image-pixel quad is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from patchkit.scenes.toyworld.draw import ShapeMask, Sprite
from patchkit.scenes.toyworld.textures import HAIR_COLOURS, SKIN_TONES, Material, random_colour

HAIR_STYLES = ("short", "short", "long", "bald", "cap")
LEGWEAR = ("trousers", "trousers", "trousers", "shorts", "skirt")

# Body measures in figure heights.
_PELVIS_Y = 0.53
_THIGH, _SHIN = 0.245, 0.245
_SHOULDER_Y = 0.815
_UPPER_ARM, _FOREARM = 0.165, 0.15


@dataclass
class FigureStyle:
    """What a figure looks like (colours sRGB in [0, 1])."""

    skin: np.ndarray
    hair: np.ndarray
    hair_style: str
    hat: np.ndarray
    shirt: Material
    pants: Material
    shoes: np.ndarray
    legwear: str = "trousers"
    long_sleeves: bool = True
    build: float = 1.0  # body width factor (0.85-1.25)
    head_scale: float = 1.0  # >1 for children

    @classmethod
    def sample(cls, rng: np.random.Generator, child: bool = False) -> "FigureStyle":
        return cls(
            skin=random_colour(rng, SKIN_TONES, 0.04),
            hair=random_colour(rng, HAIR_COLOURS, 0.04),
            hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
            hat=random_colour(rng),
            shirt=Material.sample(rng),
            pants=Material.sample(rng, patterned=0.15),
            shoes=random_colour(rng, jitter=0.05) * 0.5,
            legwear=LEGWEAR[rng.integers(len(LEGWEAR))],
            long_sleeves=bool(rng.random() < 0.6),
            build=float(rng.uniform(0.85, 1.25)),
            head_scale=float(rng.uniform(1.2, 1.35) if child else rng.uniform(0.92, 1.08)),
        )


@dataclass
class Pose:
    """Body pose; angles in radians.

    Attributes:
        yaw: turn about the vertical axis, 0 = facing the camera, pi = back to the camera.
        phase: walk-cycle phase (one stride per 2 pi).
        stride: 0 (standing) to 1 (full walking stride).
        arm_swing: arm swing amplitude while walking.
        abduct: ``(2,)`` arm abduction (outwards) for the left and right arm.
        raise_: ``(2,)`` extra forward raise of each upper arm (2.5 = arm up).
        elbow: ``(2,)`` elbow flexion.
        lean: forward lean of the upper body.
        stance: sideways spread of the legs (0-1).
    """

    yaw: float = 0.0
    phase: float = 0.0
    stride: float = 0.0
    arm_swing: float = 0.3
    abduct: np.ndarray = field(default_factory=lambda: np.array([0.08, 0.08]))
    raise_: np.ndarray = field(default_factory=lambda: np.zeros(2))
    elbow: np.ndarray = field(default_factory=lambda: np.array([0.15, 0.15]))
    lean: float = 0.0
    stance: float = 0.2

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Pose":
        """A random everyday pose: walking (most), standing, or gesturing."""
        walking = rng.random() < 0.65
        raise_ = np.zeros(2)
        elbow = rng.uniform(0.05, 0.5, 2)
        if rng.random() < 0.25:  # one arm busy: phone, waving, carrying
            k = int(rng.integers(2))
            raise_[k] = rng.choice([rng.uniform(0.6, 1.4), rng.uniform(2.2, 2.9)])
            elbow[k] = rng.uniform(0.2, 1.6)
        return cls(
            yaw=float(rng.uniform(-np.pi, np.pi)),
            phase=float(rng.uniform(0, 2 * np.pi)),
            stride=float(rng.uniform(0.5, 1.0) if walking else rng.uniform(0.0, 0.15)),
            arm_swing=float(rng.uniform(0.15, 0.45)),
            abduct=rng.uniform(0.03, 0.3, 2),
            raise_=raise_,
            elbow=elbow,
            lean=float(rng.uniform(-0.05, 0.12)),
            stance=float(rng.uniform(0.0, 0.8 if not walking else 0.3)),
        )


def skeleton(pose: Pose, build: float = 1.0, head_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Joint positions in figure units: ``hip, knee, ankle, toe, shoulder, elbow, wrist`` are
    ``(2, 3)`` (left, right), ``neck`` / ``head`` ``(3,)``; plus ``sw, hw, depth`` (torso half
    width at the shoulders and hips, half depth) and ``head_axes``. Soles touch ``y = 0``."""
    sides = np.array([-1.0, 1.0])
    ph = pose.phase + np.array([np.pi, 0.0])
    sw, hw, d = 0.1 * build, 0.066 * build, 0.052 * build
    a = pose.stride * 0.42 * np.sin(ph)  # thigh forward angle
    b = 0.05 + pose.stride * 0.55 * np.clip(np.cos(ph), 0, None)  # knee flexion
    abd = pose.stance * 0.09
    hip = np.stack([sides * hw, np.full(2, _PELVIS_Y), np.zeros(2)], 1)
    knee = hip + _THIGH * np.stack([sides * np.sin(abd), -np.cos(a), np.sin(a)], 1)
    ankle = knee + _SHIN * np.stack([sides * np.sin(abd) * 0.5, -np.cos(a - b), np.sin(a - b)], 1)
    toe = ankle + np.array([0.0, -0.012, 0.07])

    g = -pose.arm_swing * pose.stride * np.sin(ph) + pose.raise_
    ab = pose.abduct
    shoulder = np.stack([sides * sw, np.full(2, _SHOULDER_Y), np.zeros(2)], 1)
    elbow = shoulder + _UPPER_ARM * np.stack([sides * np.sin(ab), -np.cos(ab) * np.cos(g), np.cos(ab) * np.sin(g)], 1)
    ge = g + pose.elbow
    wrist = elbow + _FOREARM * np.stack([sides * np.sin(ab) * 0.6, -np.cos(ge), np.sin(ge)], 1)
    hs = head_scale
    neck = np.array([0.0, 0.86, 0.0])
    head = np.array([0.0, 1.0 - 0.065 * hs, 0.01])

    # lean the upper body about the pelvis (rotation about the x axis)
    c, s = np.cos(pose.lean), np.sin(pose.lean)
    pivot = np.array([0.0, _PELVIS_Y, 0.0])

    def lean(p: np.ndarray) -> np.ndarray:
        q = p - pivot
        return np.stack([q[..., 0], q[..., 1] * c - q[..., 2] * s, q[..., 1] * s + q[..., 2] * c], -1) + pivot

    joints = {
        "hip": hip, "knee": knee, "ankle": ankle, "toe": toe,
        "shoulder": lean(shoulder), "elbow": lean(elbow), "wrist": lean(wrist),
        "neck": lean(neck), "head": lean(head),
    }
    sole = min(joints["ankle"][:, 1].min(), joints["toe"][:, 1].min()) - 0.035
    # scale so that the standing height stays 1 whatever the head size
    for k in joints:
        joints[k] = joints[k] - np.array([0.0, sole, 0.0])
    joints["sw"], joints["hw"], joints["depth"] = np.array(sw), np.array(hw), np.array(d)
    joints["head_axes"] = np.array([0.05 * hs, 0.065 * hs])
    return joints


class Projector:
    """Figure units -> image pixels: yaw about the vertical axis, orthographic projection with a
    weak perspective term, scaled to ``height_px`` with the soles' centre at ``foot`` (x, y px).

    ``perspective`` (0-0.5): parts nearer the camera by ``dz`` figure heights are magnified by
    ``1 / (1 - perspective * dz)`` about the figure's mid-height.
    """

    def __init__(self, yaw: float, height_px: float, foot: tuple[float, float], perspective: float = 0.0) -> None:
        self.c, self.s = float(np.cos(yaw)), float(np.sin(yaw))
        self.h = float(height_px)
        self.fx, self.fy = float(foot[0]), float(foot[1])
        self.k = float(perspective)

    def depth(self, p: np.ndarray) -> np.ndarray:
        """Distance towards the camera (figure units) of points ``(..., 3)``."""
        return p[..., 2] * self.c - p[..., 0] * self.s

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, np.float64)
        x = p[..., 0] * self.c + p[..., 2] * self.s
        m = 1.0 / (1.0 - self.k * self.depth(p))
        u = self.fx + self.h * x * m
        v = self.fy - self.h * (0.5 + (p[..., 1] - 0.5) * m)
        return np.stack([u, v], -1)


def _box_corners(x: float, y0: float, y1: float, d: float, x_bottom: float | None = None) -> np.ndarray:
    """8 corners of a (possibly tapered) box: half width ``x`` at ``y1`` (top), ``x_bottom`` at
    ``y0``, half depth ``d``."""
    xb = x if x_bottom is None else x_bottom
    pts = []
    for y, hx in ((y1, x), (y0, xb)):
        for sx in (-1, 1):
            for sz in (-1, 1):
                pts.append([sx * hx, y, sz * d])
    return np.array(pts)


def _hull(points2d: np.ndarray) -> np.ndarray:
    return cv2.convexHull(points2d.astype(np.float32)).reshape(-1, 2).astype(np.float64)


@dataclass
class FigureRender:
    """A rendered figure: its sprite (image-pixel anchored), the sole centre (px), its height
    (px) and, when a patch was worn and faces the camera, the patch corners ``(4, 2)`` in image
    pixels (top-left, top-right, bottom-right, bottom-left of the patch image)."""

    sprite: Sprite
    foot: tuple[float, float]
    height_px: float
    patch_quad: np.ndarray | None


def patch_corners(joints: dict[str, np.ndarray], size: float = 0.8, centre_y: float | None = None) -> np.ndarray:
    """3-D corners (TL, TR, BR, BL as seen from the front) of a square patch on the torso front;
    ``size`` is its side as a fraction of the shoulder width."""
    sw, d = float(joints["sw"]), float(joints["depth"])
    sh = joints["shoulder"].mean(0)
    hip = joints["hip"].mean(0)
    side = size * 2 * sw
    cy = centre_y if centre_y is not None else 0.45 * sh[1] + 0.55 * hip[1] + 0.06
    z = d + 0.004
    # the patch follows the lean of the upper body: interpolate between hip and shoulder line
    t = (cy - hip[1]) / max(sh[1] - hip[1], 1e-6)
    zc = hip[2] + t * (sh[2] - hip[2])
    return np.array([
        [-side / 2, cy + side / 2, z + zc],
        [side / 2, cy + side / 2, z + zc],
        [side / 2, cy - side / 2, z + zc],
        [-side / 2, cy - side / 2, z + zc],
    ])


def _cloth_warp(image: np.ndarray, amplitude: float, phase: float) -> np.ndarray:
    """A slight smooth fold of a worn patch: sinusoidal displacement of ``amplitude`` x its size."""
    if amplitude <= 0:
        return image
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = amplitude * w * np.sin(2 * np.pi * (yy / h * 0.8 + phase / (2 * np.pi)))
    dy = amplitude * h * 0.6 * np.sin(2 * np.pi * (xx / w * 0.7 + 0.3 + phase / (2 * np.pi)))
    return cv2.remap(image, xx + dx.astype(np.float32), yy + dy.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def render_figure(
    style: FigureStyle,
    pose: Pose,
    height_px: float,
    foot: tuple[float, float],
    perspective: float = 0.0,
    light: float = 0.0,
    patch: np.ndarray | None = None,
    patch_size: float = 0.8,
    cloth: float = 0.0,
    seed: int = 0,
) -> FigureRender:
    """Draw one figure.

    Args:
        style, pose: appearance and pose.
        height_px: standing height in pixels.
        foot: image position (x, y px) of the soles' centre.
        perspective: weak-perspective strength (see :class:`Projector`).
        light: side-light gradient across the body (-0.4..0.4; + = lit from the right).
        patch: optional ``(h, w, 3)`` float32 image in [0, 1] worn on the torso front (drawn only
            when the front faces the camera).
        patch_size: patch side as a fraction of the shoulder width.
        cloth: cloth-fold amplitude of the patch (fraction of its size, 0-0.05).
        seed: fixes the figure's texture details.
    """
    J = skeleton(pose, style.build, style.head_scale)
    proj = Projector(pose.yaw, height_px, foot, perspective)
    sw, hw, d = float(J["sw"]), float(J["hw"]), float(J["depth"])
    hax, hay = J["head_axes"]

    parts: list[tuple[float, str, object, str]] = []  # (depth, kind, geometry, material)
    skin_legs = style.legwear != "trousers"
    for i in range(2):
        r = 1.0 if style.legwear != "skirt" else 0.8
        parts.append((proj.depth((J["hip"][i] + J["knee"][i]) / 2), "capsule",
                      (J["hip"][i], J["knee"][i], 0.043 * style.build * r, 0.033 * r),
                      "skin" if style.legwear == "skirt" else "pants"))
        parts.append((proj.depth((J["knee"][i] + J["ankle"][i]) / 2), "capsule",
                      (J["knee"][i], J["ankle"][i], 0.033 * r, 0.024), "skin" if skin_legs else "pants"))
        parts.append((proj.depth((J["ankle"][i] + J["toe"][i]) / 2) + 0.01, "capsule",
                      (J["ankle"][i] - [0, 0.01, 0], J["toe"][i], 0.024, 0.02), "shoes"))
        sh, el, wr = J["shoulder"][i], J["elbow"][i], J["wrist"][i]
        arm_depth = proj.depth((sh + el + wr) / 3) + 0.002
        parts.append((arm_depth, "capsule", (sh, el, 0.032 * style.build, 0.026), "shirt"))
        parts.append((arm_depth + 1e-4, "capsule", (el, wr, 0.026, 0.02), "shirt" if style.long_sleeves else "skin"))
        hand = wr + (wr - el) / max(np.linalg.norm(wr - el), 1e-6) * 0.025
        parts.append((arm_depth + 2e-4, "capsule", (wr, hand, 0.021, 0.02), "skin"))

    sh_mid = J["shoulder"].mean(0)
    hip_mid = J["hip"].mean(0)
    lean_dz = sh_mid[2] - hip_mid[2]
    torso = _box_corners(sw, hip_mid[1] + 0.02, sh_mid[1] + 0.025, d, x_bottom=hw * 1.12)
    torso[:4, 2] += lean_dz  # the top follows the lean
    parts.append((0.0, "hull", torso, "shirt"))
    pelvis = _box_corners(hw * 1.15, hip_mid[1] - 0.06, hip_mid[1] + 0.03, d * 0.95)
    parts.append((-0.001, "hull", pelvis, "pants"))
    if style.legwear == "skirt":
        skirt = _box_corners(hw * 1.2, hip_mid[1] - 0.25, hip_mid[1] + 0.03, d * 1.3, x_bottom=hw * 1.2 + 0.07)
        parts.append((0.001, "hull", skirt, "pants"))
    neck = J["neck"]
    parts.append((0.0005, "capsule", (neck, neck + [0, 0.045, 0], 0.024, 0.022), "skin"))
    head_depth = 0.003
    if style.hair_style == "long":
        back = 1.0 if np.cos(pose.yaw) < 0 else -1.0
        parts.append((back * 0.004, "capsule", (J["head"] + [0, 0.01, -0.02], J["head"] + [0, -0.1, -0.03], hax * 1.05, hax * 0.95), "hair"))
    parts.append((head_depth, "head", J["head"], "skin"))
    if patch is not None and np.cos(pose.yaw) > 0.05:
        parts.append((0.0002, "patch", patch_corners(J, patch_size), "patch"))
    parts.sort(key=lambda p: p[0])

    # sprite extent from all projected points plus the largest radii
    pts2d = proj(np.concatenate([J[k].reshape(-1, 3) for k in ("hip", "knee", "ankle", "toe", "shoulder", "elbow", "wrist", "neck", "head")]))
    pad = height_px * 0.12 + 2
    lo, hi = pts2d.min(0) - pad, pts2d.max(0) + pad
    sprite = Sprite.empty(lo[0], lo[1], hi[0], hi[1])
    h, w = sprite.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx + sprite.x0 - foot[0]) / height_px
    v = (foot[1] - (yy + sprite.y0)) / height_px
    textures = {
        "shirt": style.shirt.render(u, v, seed),
        "pants": style.pants.render(u, v, seed + 1),
    }
    colours = {"skin": style.skin, "hair": style.hair, "shoes": style.shoes}
    off = np.array([sprite.x0, sprite.y0], np.float64)
    px = height_px
    quad_img = None
    for depth, kind, geom, mat in parts:
        if kind == "capsule":
            p1, p2, r1, r2 = geom
            q = proj(np.stack([p1, p2])) - off
            m = ShapeMask.capsule(q[0], q[1], r1 * px, r2 * px)
        elif kind == "hull":
            m = ShapeMask.polygon(_hull(proj(geom) - off))
        elif kind == "head":
            _paint_head(sprite, proj(geom) - off, hax * px, hay * px, pose.yaw, style)
            continue
        elif kind == "patch":
            quad = proj(geom) - off
            quad_img = quad + off
            _paint_patch(sprite, patch, quad, cloth, pose.phase)
            continue
        else:  # pragma: no cover
            raise ValueError(kind)
        if mat in textures:
            sprite.paint(*m, texture=textures[mat])
        else:
            sprite.paint(*m, colour=colours[mat])

    # light: side gradient and a slightly darker lower body
    shade = 1.0 + light * np.clip(u / 0.25, -1.0, 1.0) - 0.08 * np.clip(0.5 - v, 0.0, 0.5)
    sprite.shade(shade.astype(np.float32))
    return FigureRender(sprite, (float(foot[0]), float(foot[1])), float(height_px), quad_img)


def _paint_head(sprite: Sprite, c: np.ndarray, ax: float, ay: float, yaw: float, style: FigureStyle) -> None:
    cy = float(np.cos(yaw))
    sy = float(np.sin(yaw))
    centre = (float(c[0]), float(c[1]))
    if cy < -0.3 and style.hair_style != "bald":  # back of the head
        sprite.paint(*ShapeMask.ellipse(centre, (ax * 1.04, ay * 1.02)), colour=style.hair)
    else:
        sprite.paint(*ShapeMask.ellipse(centre, (ax, ay)), colour=style.skin)
        if style.hair_style in ("short", "long"):
            # hair covers the top and the back of the head
            shift = -sy * ax * 0.35
            sprite.paint(*ShapeMask.ellipse((centre[0] + shift, centre[1] - ay * 0.12), (ax * 1.06, ay * 0.95), 0.0, (180.0, 360.0)),
                         colour=style.hair)
    if style.hair_style == "cap":
        sprite.paint(*ShapeMask.ellipse((centre[0], centre[1] - ay * 0.2), (ax * 1.08, ay * 0.9), 0.0, (180.0, 360.0)),
                     colour=style.hat)
        brim = (centre[0] + sy * ax * 0.9, centre[1] - ay * 0.22)
        sprite.paint(*ShapeMask.ellipse(brim, (ax * (0.5 + 0.6 * abs(sy)), ay * 0.16)), colour=style.hat * 0.8)


def _paint_patch(sprite: Sprite, patch: np.ndarray, quad: np.ndarray, cloth: float, phase: float) -> None:
    """Warp the worn patch onto ``quad`` (layer px) with a slight cloth fold."""
    side = float(max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[3] - quad[0]), 2.0))
    n = int(np.clip(np.ceil(side * 2), 4, max(patch.shape[:2])))
    img = cv2.resize(np.ascontiguousarray(patch, dtype=np.float32), (n, n), interpolation=cv2.INTER_AREA)
    img = _cloth_warp(img, cloth, phase)
    src = np.array([[-0.5, -0.5], [n - 0.5, -0.5], [n - 0.5, n - 0.5], [-0.5, n - 0.5]], np.float32)
    M = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    h, w = sprite.shape
    tex = cv2.warpPerspective(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cover = cv2.warpPerspective(np.ones((n, n), np.float32), M, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    sprite.paint(np.clip(cover, 0.0, 1.0), 0, 0, texture=tex)
