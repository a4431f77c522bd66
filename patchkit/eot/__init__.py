"""Expectation over transformation (EOT): how a printed patch looks when worn and filmed.

``EOTPipeline(cfg, printer=None)`` transforms and pastes a patch on every target box of a batch in
one vectorised call; ``EOTConfig`` holds one dataclass per operation; ``EOTParams`` records a draw
for exact replay. See ``pipeline.py`` for the data flow, and ``base.py`` for the kinds of op and
how to add one (a config class and an op class, found through the registry ``base.OPS``).
"""

from patchkit.eot.config import EOTConfig
from patchkit.eot.params import EOTParams
from patchkit.eot.pipeline import OP_ORDER, EOTPipeline

__all__ = ["EOTConfig", "EOTParams", "EOTPipeline", "OP_ORDER"]
