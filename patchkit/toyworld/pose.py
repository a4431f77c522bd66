"""Pedestrian poses: a 3-D stick skeleton (walk cycle, arm gestures, lean) and its projection.

The body lives in figure units (height 1, ``y`` up from the soles, ``x`` to the figure's side,
``z`` forward). A :class:`BodyPose` sets the walk phase, stride, arm angles, lean and the yaw
(0 = facing the camera, pi/2 = side view, pi = back view); :func:`skeleton` gives the joints and
:class:`Projector` maps them to image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Body measures in figure heights.
_PELVIS_Y = 0.53
_THIGH, _SHIN = 0.245, 0.245
_SHOULDER_Y = 0.815
_UPPER_ARM, _FOREARM = 0.165, 0.15


@dataclass
class BodyPose:
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
    def sample(cls, rng: np.random.Generator) -> "BodyPose":
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


def skeleton(pose: BodyPose, build: float = 1.0, head_scale: float = 1.0) -> dict[str, np.ndarray]:
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
