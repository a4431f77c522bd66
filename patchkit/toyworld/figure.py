"""Articulated pedestrian figures drawn as 2-D sprites.

:func:`render_figure` takes a :class:`FigureStyle` (skin, hair, garments, build) and a
:class:`~patchkit.toyworld.pose.BodyPose`, projects the skeleton
(:mod:`patchkit.toyworld.pose`: orthographic with a weak perspective term), sorts the body
parts by depth and paints them (tapered limbs, box torso, ellipse head) with the style's
materials. A patch image can be worn on the front of the torso; its image-pixel quad is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from patchkit.toyworld.draw import ShapeMask, Sprite
from patchkit.toyworld.pose import BodyPose, Projector, skeleton
from patchkit.toyworld.textures import HAIR_COLOURS, SKIN_TONES, Material, random_colour

if TYPE_CHECKING:
    from patchkit.toyworld.suit import TextureSuit

HAIR_STYLES = ("short", "short", "long", "bald", "cap")
LEGWEAR = ("trousers", "trousers", "trousers", "shorts", "skirt")


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
    pixels (top-left, top-right, bottom-right, bottom-left of the patch image). ``suit_alpha``,
    when a texture suit was worn, is the ``(h, w)`` float32 coverage in [0, 1] of the suit's visible
    pixels in the sprite (same grid as ``sprite.alpha``): what it shows of the shirt and trousers
    after the hands, head, shoes and any print are painted over them."""

    sprite: Sprite
    foot: tuple[float, float]
    height_px: float
    patch_quad: np.ndarray | None
    suit_alpha: np.ndarray | None = None


def patch_corners(joints: dict[str, np.ndarray], size: float = 0.8, centre_y: float | None = None,
                  aspect: float = 1.0) -> np.ndarray:
    """3-D corners (TL, TR, BR, BL as seen from the front) of a patch on the torso front.

    ``size`` is its width as a fraction of the shoulder width, ``aspect`` its height / width. Its
    centre is at ``centre_y`` (figure heights above the soles) when given; otherwise a patch no
    taller than wide is centred on the chest, and a taller one hangs from the collar (top edge 0.02
    figure heights above the shoulder line) like an apron, down over the legs."""
    if aspect <= 0:
        raise ValueError(f"patch aspect must be > 0, got {aspect}")
    sw, d = float(joints["sw"]), float(joints["depth"])
    sh = joints["shoulder"].mean(0)
    hip = joints["hip"].mean(0)
    width = size * 2 * sw
    height = width * aspect
    if centre_y is not None:
        cy = centre_y
    elif aspect > 1:
        cy = sh[1] + 0.02 - height / 2
    else:
        cy = 0.45 * sh[1] + 0.55 * hip[1] + 0.06
    z = d + 0.004
    # the patch follows the lean of the upper body: interpolate between hip and shoulder line
    t = min((cy - hip[1]) / max(sh[1] - hip[1], 1e-6), 1.0)
    zc = hip[2] + t * (sh[2] - hip[2])
    return np.array([
        [-width / 2, cy + height / 2, z + zc],
        [width / 2, cy + height / 2, z + zc],
        [width / 2, cy - height / 2, z + zc],
        [-width / 2, cy - height / 2, z + zc],
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
    pose: BodyPose,
    height_px: float,
    foot: tuple[float, float],
    perspective: float = 0.0,
    light: float = 0.0,
    patch: np.ndarray | None = None,
    patch_size: float = 0.8,
    cloth: float = 0.0,
    seed: int = 0,
    patch_aspect: float = 1.0,
    suit: "TextureSuit | None" = None,
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
        patch_size: patch width as a fraction of the shoulder width.
        cloth: cloth-fold amplitude of the patch (fraction of its size, 0-0.05).
        seed: fixes the figure's texture details.
        patch_aspect: patch height / width; above 1 it hangs from the collar like an apron
            (see :func:`patch_corners`), painted over the legs and under the arms.
        suit: a :class:`~patchkit.toyworld.suit.TextureSuit`: the figure wears a long-sleeved shirt
            and trousers of its tiled texture (one repeat = ``suit.tile_cm`` of a 170 cm person;
            offset ``suit.offset`` or drawn from ``seed``), shaded like its clothing; the render's
            ``suit_alpha`` says where the suit shows.
    """
    if suit is not None:  # a suit: long sleeves and trousers, whatever the style wore
        style = replace(style, legwear="trousers", long_sleeves=True)
    J = skeleton(pose, style.build, style.head_scale)
    proj = Projector(pose.yaw, height_px, foot, perspective)
    parts, leg_depth, arms = _limb_parts(J, proj, style)
    parts += _body_parts(J, style, pose.yaw)
    if patch is not None and np.cos(pose.yaw) > 0.05:
        _add_patch_part(parts, patch_corners(J, patch_size, aspect=patch_aspect), patch_aspect, leg_depth, arms)
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
    if suit is None:
        textures = {
            "shirt": style.shirt.render(u, v, seed),
            "pants": style.pants.render(u, v, seed + 1),
        }
        plain = worn = sprite
        layer = None
    else:
        from patchkit.toyworld.suit import suit_texture

        tex = suit_texture(suit, (h, w), (sprite.y0, sprite.x0), (foot[1] - height_px, foot[0]), height_px, seed)
        textures = {"shirt": tex, "pants": tex}
        # a second layer records where the suit shows: painted 1 by suit parts, 0 by the others
        layer = Sprite(sprite.x0, sprite.y0, np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.float32))
        plain, worn = _Tracked(sprite, layer, False), _Tracked(sprite, layer, True)
    colours = {"skin": style.skin, "hair": style.hair, "shoes": style.shoes}
    hax, hay = J["head_axes"]
    off = np.array([sprite.x0, sprite.y0], np.float64)
    quad_img = None
    for _, kind, geom, mat in parts:
        if kind == "head":
            _paint_head(plain, proj(geom) - off, hax * height_px, hay * height_px, pose.yaw, style)
        elif kind == "patch":
            quad = proj(geom) - off
            quad_img = quad + off
            _paint_patch(plain, patch, quad, cloth, pose.phase)
        else:
            m = _part_mask(kind, geom, proj, off, height_px)
            if mat in textures:
                (worn if mat in ("shirt", "pants") else plain).paint(*m, texture=textures[mat])
            else:
                plain.paint(*m, colour=colours[mat])

    # light: side gradient and a slightly darker lower body
    shade = 1.0 + light * np.clip(u / 0.25, -1.0, 1.0) - 0.08 * np.clip(0.5 - v, 0.0, 0.5)
    sprite.shade(shade.astype(np.float32))
    suit_alpha = None if layer is None else np.clip(layer.rgb[..., 0], 0.0, 1.0)
    return FigureRender(sprite, (float(foot[0]), float(foot[1])), float(height_px), quad_img, suit_alpha)


class _Tracked:
    """Paints a sprite and, in step, a coverage layer: 1 where a suit part is painted (``worn``),
    0 where anything else is painted over it (the same compositing, so ``layer.rgb[..., 0]`` is the
    suit's visible coverage)."""

    _ONE = np.ones(3, np.float32)
    _ZERO = np.zeros(3, np.float32)

    def __init__(self, sprite: Sprite, layer: Sprite, worn: bool) -> None:
        self.sprite, self.layer, self.worn = sprite, layer, worn

    @property
    def shape(self) -> tuple[int, int]:
        return self.sprite.shape

    def paint(self, mask: np.ndarray, ox: int, oy: int, colour: np.ndarray | None = None,
              texture: np.ndarray | None = None) -> None:
        self.sprite.paint(mask, ox, oy, colour=colour, texture=texture)
        self.layer.paint(mask, ox, oy, colour=self._ONE if self.worn else self._ZERO)


Part = tuple  # (painter depth, kind: capsule | hull | head | patch, geometry, material)


def _limb_parts(J: dict, proj: Projector, style: FigureStyle) -> tuple[list[Part], float, list[int]]:
    """Legs and arms -> (parts, depth of the nearest leg part, indices of the arm parts)."""
    parts: list[Part] = []
    skin_legs = style.legwear != "trousers"
    leg_depth = 0.0  # the nearest leg part (painter depth), for a print that hangs over the legs
    arms: list[int] = []
    for i in range(2):
        r = 1.0 if style.legwear != "skirt" else 0.8
        parts.append((proj.depth((J["hip"][i] + J["knee"][i]) / 2), "capsule",
                      (J["hip"][i], J["knee"][i], 0.043 * style.build * r, 0.033 * r),
                      "skin" if style.legwear == "skirt" else "pants"))
        parts.append((proj.depth((J["knee"][i] + J["ankle"][i]) / 2), "capsule",
                      (J["knee"][i], J["ankle"][i], 0.033 * r, 0.024), "skin" if skin_legs else "pants"))
        parts.append((proj.depth((J["ankle"][i] + J["toe"][i]) / 2) + 0.01, "capsule",
                      (J["ankle"][i] - [0, 0.01, 0], J["toe"][i], 0.024, 0.02), "shoes"))
        leg_depth = max(leg_depth, *(p[0] for p in parts[-3:]))
        arm_start = len(parts)
        sh, el, wr = J["shoulder"][i], J["elbow"][i], J["wrist"][i]
        arm_depth = proj.depth((sh + el + wr) / 3) + 0.002
        parts.append((arm_depth, "capsule", (sh, el, 0.032 * style.build, 0.026), "shirt"))
        parts.append((arm_depth + 1e-4, "capsule", (el, wr, 0.026, 0.02), "shirt" if style.long_sleeves else "skin"))
        hand = wr + (wr - el) / max(np.linalg.norm(wr - el), 1e-6) * 0.025
        parts.append((arm_depth + 2e-4, "capsule", (wr, hand, 0.021, 0.02), "skin"))
        arms.extend(range(arm_start, len(parts)))
    return parts, leg_depth, arms


def _body_parts(J: dict, style: FigureStyle, yaw: float) -> list[Part]:
    """Torso, pelvis, skirt, neck, hair and head."""
    sw, hw, d = float(J["sw"]), float(J["hw"]), float(J["depth"])
    hax, _ = J["head_axes"]
    sh_mid = J["shoulder"].mean(0)
    hip_mid = J["hip"].mean(0)
    torso = _box_corners(sw, hip_mid[1] + 0.02, sh_mid[1] + 0.025, d, x_bottom=hw * 1.12)
    torso[:4, 2] += sh_mid[2] - hip_mid[2]  # the top follows the lean
    parts: list[Part] = [(0.0, "hull", torso, "shirt"),
                         (-0.001, "hull", _box_corners(hw * 1.15, hip_mid[1] - 0.06, hip_mid[1] + 0.03, d * 0.95), "pants")]
    if style.legwear == "skirt":
        skirt = _box_corners(hw * 1.2, hip_mid[1] - 0.25, hip_mid[1] + 0.03, d * 1.3, x_bottom=hw * 1.2 + 0.07)
        parts.append((0.001, "hull", skirt, "pants"))
    neck = J["neck"]
    parts.append((0.0005, "capsule", (neck, neck + [0, 0.045, 0], 0.024, 0.022), "skin"))
    if style.hair_style == "long":
        back = 1.0 if np.cos(yaw) < 0 else -1.0
        parts.append((back * 0.004, "capsule", (J["head"] + [0, 0.01, -0.02], J["head"] + [0, -0.1, -0.03], hax * 1.05, hax * 0.95), "hair"))
    parts.append((0.003, "head", J["head"], "skin"))
    return parts


def _add_patch_part(parts: list[Part], corners: np.ndarray, aspect: float, leg_depth: float, arms: list[int]) -> None:
    """A chest print is painted over the torso, under the arms. An apron (taller than wide) hangs
    in front of the legs, so it is painted over them (they show below its hem); the arms stay
    outside it (its ties pass under them): an arm not swung behind the torso is painted over it."""
    depth = 0.0002
    if aspect > 1:
        depth = max(depth, leg_depth + 1e-4)
        for i in arms:
            if parts[i][0] > 0:
                parts[i] = (parts[i][0] + depth, *parts[i][1:])
    parts.append((depth, "patch", corners, "patch"))


def _part_mask(kind: str, geom, proj: Projector, off: np.ndarray, px: float):
    """The sprite mask of a capsule or hull part."""
    if kind == "capsule":
        p1, p2, r1, r2 = geom
        q = proj(np.stack([p1, p2])) - off
        return ShapeMask.capsule(q[0], q[1], r1 * px, r2 * px)
    if kind == "hull":
        return ShapeMask.polygon(_hull(proj(geom) - off))
    raise ValueError(kind)  # pragma: no cover


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
