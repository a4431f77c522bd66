"""``patchkit train CONFIG.yaml [key=value ...] [--resume RUN_DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from patchkit.cli.common import add_device_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an adversarial patch",
        description="Train a printable adversarial patch. Writes patch.png, checkpoint.pt, "
        "log.jsonl and config.yaml into the run folder (run.out).",
    )
    p.add_argument("config", nargs="?", help="training config YAML (see examples/train_pennfudan.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.epochs=10")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    p.add_argument("--out", help="run folder (same as run.out=...)")
    add_device_option(p)
    p.set_defaults(func=run, device=None)


def run(args: argparse.Namespace) -> int:
    from patchkit.config import load_config
    from patchkit.engine.config import TrainConfig
    from patchkit.engine.trainer import Trainer, resume_config
    from patchkit.errors import PatchkitError

    overrides = list(args.overrides)
    # A positional that looks like key=value is an override, not the config file.
    if args.config and "=" in args.config and not Path(args.config).exists():
        overrides.insert(0, args.config)
        args.config = None
    if args.out:
        overrides.append(f"run.out={args.out}")
    if args.device:
        overrides.append(f"run.device={args.device}")
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "checkpoint.pt").is_file():
            raise PatchkitError("no checkpoint.pt to resume from", run_dir)
        cfg = resume_config(run_dir, overrides + [f"run.out={run_dir}"])
        trainer = Trainer(cfg)
        trainer.load_checkpoint(run_dir / "checkpoint.pt")
    else:
        if not args.config:
            raise PatchkitError("a config YAML is required (or --resume RUN_DIR)")
        cfg = load_config(TrainConfig, args.config, overrides)
        trainer = Trainer(cfg)
    trainer.fit()
    print(f"patch: {trainer.run_dir / 'patch.png'}  (checkpoint, log.jsonl, config.yaml beside it)")
    return 0
