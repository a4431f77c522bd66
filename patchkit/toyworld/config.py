"""The toy world's generator settings (``scenes/toyworld/*.yaml`` mirror these defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from patchkit.config import from_dict, read_yaml

DISTRACTOR_KINDS = ("car", "pole", "sign", "bag", "bin", "tree", "bicycle")
OCCLUDER_KINDS = ("car", "bin", "bag", "sign", "bicycle")
# Class ids written for distractors when ``label_distractors`` is on (person is always 0).
DISTRACTOR_CLASSES = {"car": 1, "bicycle": 2, "sign": 3, "bag": 4}


def class_names(label_distractors: bool) -> dict[int, str]:
    """Class id -> name of the datasets written with this setting."""
    names = {0: "person"}
    if label_distractors:
        names.update({v: k for k, v in DISTRACTOR_CLASSES.items()})
    return names


@dataclass
class ToyWorldConfig:
    """How toy-world images are drawn. Ranges are ``[low, high]`` (inclusive for counts).

    Attributes:
        width, height: image size range in pixels (sampled in steps of 32).
        persons: number of pedestrians per image.
        empty_prob: chance of an image without pedestrians (negatives).
        distractors: number of distractor objects (cars, poles, signs, bags...) per image.
        distractor_kinds: which distractors may appear (see :data:`DISTRACTOR_KINDS`).
        occluder_prob: chance that an object stands right in front of a pedestrian.
        child_prob: chance that a pedestrian is a child (smaller, bigger head).
        person_height: pedestrian height range in pixels (log-uniform); the upper end may exceed
            the image (legs or head cut off).
        min_visible: a pedestrian is labelled only when at least this fraction of it is visible
            (not occluded and inside the image) and its visible box is at least 5 x 12 px.
        themes: background themes to draw from (street, plaza, park, indoor).
        light: global brightness gain range.
        blur: Gaussian blur sigma range in pixels (0 = sharp).
        motion_blur_prob: chance of a short linear motion blur.
        noise: sensor noise standard deviation range (fraction of full scale).
        jpeg_quality: JPEG quality range of the written images.
        label_distractors: also write boxes for cars (1), bicycles (2), signs (3) and bags (4).
    """

    width: list[int] = field(default_factory=lambda: [320, 416])
    height: list[int] = field(default_factory=lambda: [320, 416])
    persons: list[int] = field(default_factory=lambda: [1, 6])
    empty_prob: float = 0.08
    distractors: list[int] = field(default_factory=lambda: [1, 7])
    distractor_kinds: list[str] = field(default_factory=lambda: list(DISTRACTOR_KINDS))
    occluder_prob: float = 0.2
    child_prob: float = 0.1
    person_height: list[float] = field(default_factory=lambda: [24.0, 360.0])
    min_visible: float = 0.4
    themes: list[str] = field(default_factory=lambda: ["street", "plaza", "park", "indoor"])
    light: list[float] = field(default_factory=lambda: [0.6, 1.25])
    blur: list[float] = field(default_factory=lambda: [0.0, 1.0])
    motion_blur_prob: float = 0.1
    noise: list[float] = field(default_factory=lambda: [0.0, 0.03])
    jpeg_quality: list[int] = field(default_factory=lambda: [75, 95])
    label_distractors: bool = False

    def validate(self) -> None:
        for key in ("width", "height", "persons", "distractors", "person_height", "light", "blur", "noise", "jpeg_quality"):
            lo_hi = getattr(self, key)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1] or lo_hi[0] < 0:
                raise ValueError(f"{key} must be a [low, high] range with 0 <= low <= high, got {lo_hi}")
        if self.width[0] < 32 or self.height[0] < 32:
            raise ValueError("width and height must be at least 32 px")
        for key in ("empty_prob", "occluder_prob", "child_prob", "min_visible", "motion_blur_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} must be in [0, 1]")
        for kind in self.distractor_kinds:
            if kind not in DISTRACTOR_KINDS:
                raise ValueError(f"distractor_kinds: unknown kind {kind!r} (known: {', '.join(DISTRACTOR_KINDS)})")
        for theme in self.themes:
            if theme not in ("street", "plaza", "park", "indoor"):
                raise ValueError(f"themes: unknown theme {theme!r} (known: street, plaza, park, indoor)")
        if not self.themes:
            raise ValueError("themes must name at least one theme")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError("jpeg_quality must be within [1, 100]")

    @classmethod
    def load(cls, path: str | Path) -> "ToyWorldConfig":
        """Read a generator YAML (keys as the attributes; unknown keys are one-line errors)."""
        data = read_yaml(path)
        return from_dict(cls, data.get("generator", data), source=str(path))
