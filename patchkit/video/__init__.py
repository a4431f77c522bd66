"""Captured-video scoring: streaming decode, markers and pose, per-frame records, summaries.

Modules: :mod:`~patchkit.video.source` (frames), :mod:`patchkit.markers` (ArUco, solvePnP; shared with printing),
:mod:`~patchkit.video.target` (which person wears the patch), :mod:`~patchkit.video.scoring`
(batched inference, per-frame records), :mod:`~patchkit.video.sinks` (JSONL, annotated video),
:mod:`~patchkit.video.summary` (rates, bootstrap CIs, pose bins, ASR vs control),
:mod:`~patchkit.video.report` (plots, markdown), :mod:`~patchkit.video.runner` (a whole run).
Simulated captures to score live in :mod:`patchkit.capture`.
"""

from patchkit.markers import (MarkerDetector, MarkerObservation, MarkerPose, MarkerSpec, PinholeCamera,
                              estimate_pose)
from patchkit.video.runner import ScoreRunConfig, score_inputs
from patchkit.video.scoring import DEFAULT_THRESHOLDS, ScoreOptions, score_source, threshold_key
from patchkit.video.source import Frame, FrameSource, VideoInfo, open_source
from patchkit.video.summary import BootstrapConfig, asr_vs_control, block_bootstrap_means, summarize_video
from patchkit.video.target import BoxReference, EveryPersonReference, MarkerReference, TargetState, parse_box

__all__ = [
    "BootstrapConfig", "BoxReference", "DEFAULT_THRESHOLDS", "EveryPersonReference", "Frame", "FrameSource",
    "MarkerDetector", "MarkerObservation", "MarkerPose", "MarkerReference", "MarkerSpec", "PinholeCamera",
    "ScoreOptions", "ScoreRunConfig", "TargetState", "VideoInfo", "asr_vs_control", "block_bootstrap_means", "estimate_pose",
    "open_source", "parse_box", "score_inputs", "score_source", "summarize_video", "threshold_key",
]
