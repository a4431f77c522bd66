"""The toy world: a procedural, seeded street scene generator with articulated pedestrians.

Offline and deterministic (the same seed gives the same bytes). It writes YOLO-format datasets
(:func:`generate_dataset`) on which patchkit trains its own small detector (registered as
``toy``), and renders walking-figure videos with a worn patch (:func:`render_walk`) for the demo
and video-scoring tests. Modules, bottom up: ``draw`` (anti-aliased sprites), ``textures``
(clothing), ``pose`` and ``figure`` (articulated pedestrians), ``objects`` (distractors), ``background``
(sky, facades, ground), ``photometric`` (light and camera), ``compose`` (one labelled image),
``dataset`` (YOLO folders), ``video`` (walk sequences), ``offline`` and ``detector_training``
(training the toy detector with ultralytics, offline).
"""

from patchkit.toyworld.compose import ToyImage, render_scene
from patchkit.toyworld.config import ToyWorldConfig, class_names
from patchkit.toyworld.dataset import DatasetInfo, generate_dataset, render_split, split_rng
from patchkit.toyworld.figure import FigureRender, FigureStyle, render_figure
from patchkit.toyworld.pose import BodyPose, Projector, skeleton
from patchkit.toyworld.video import WalkSequence, render_walk

__all__ = [
    "DatasetInfo",
    "FigureRender",
    "FigureStyle",
    "BodyPose",
    "Projector",
    "ToyImage",
    "ToyWorldConfig",
    "WalkSequence",
    "class_names",
    "generate_dataset",
    "render_figure",
    "render_scene",
    "render_split",
    "render_walk",
    "skeleton",
    "split_rng",
]
