"""The offline demo: train, evaluate, print, film and score a patch on the toy world.

``patchkit demo [--out DIR]`` or, from Python::

    from patchkit.demo import DemoConfig, run_demo
    summary = run_demo(DemoConfig(out="runs/demo"))
    summary["video"]  # {"control": ..., "patch": ...}

Modules: :mod:`~patchkit.demo.config` (the schema), :mod:`~patchkit.demo.pipeline` (the steps),
:mod:`~patchkit.demo.report` (``summary.json``, ``report.md``, plots). Printing and filming in
simulation is :mod:`patchkit.capture.film`.
"""

from patchkit.demo.config import QUICK, AttackConfig, DemoConfig, FilmConfig, TextureDemoConfig, WorldConfig
from patchkit.demo.pipeline import run_demo

__all__ = ["QUICK", "AttackConfig", "DemoConfig", "FilmConfig", "TextureDemoConfig", "WorldConfig", "run_demo"]
