"""``patchkit train CONFIG.yaml [key=value ...] [--resume RUN_DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from patchkit.cli.common import add_device_option, add_json_option, add_quiet_option, claim_output, write_json_option


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
    p.add_argument("-o", "--out", help="run folder (same as run.out=...)")
    p.add_argument("--exist-ok", action="store_true",
                   help="when the run folder already holds a run, write to the next free NAME-2, NAME-3, ... "
                        "(default: refuse; a run is never overwritten)")
    add_json_option(p, "the run's summary (folder, steps, last log record)")
    add_quiet_option(p)
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
    if args.quiet:
        overrides.append("run.progress=false")
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "checkpoint.pt").is_file():
            raise PatchkitError("no checkpoint.pt to resume from", run_dir)
        cfg = resume_config(run_dir, overrides + [f"run.out={run_dir}"])
        trainer = Trainer(cfg)
        trainer.load_checkpoint(run_dir / "checkpoint.pt")
        if trainer.state.step >= trainer.total_steps:
            print(f"patchkit train: {run_dir} is finished (step {trainer.state.step} of {trainer.total_steps}); "
                  "nothing to do (raise optim.epochs to train further)", file=sys.stderr)
            return 0
    else:
        if not args.config:
            raise PatchkitError("a config YAML is required (or --resume RUN_DIR)")
        cfg = load_config(TrainConfig, args.config, overrides)
        cfg.run.out = str(claim_output(cfg.run.out, args.exist_ok, f"continue it with --resume {cfg.run.out}, "))
        trainer = Trainer(cfg)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        print(f"patchkit train: interrupted at step {trainer.state.step} of {trainer.total_steps}; the checkpoint "
              f"is saved. Continue with: patchkit train --resume {trainer.run_dir}", file=sys.stderr)
        return 130
    print(f"patch: {trainer.run_dir / 'patch.png'}  (checkpoint, log.jsonl, config.yaml beside it)")
    write_json_option(args, _summary(trainer))
    return 0


def _summary(trainer) -> dict:
    from patchkit.video.sinks import read_jsonl

    log = trainer.run_dir / "log.jsonl"
    records = list(read_jsonl(log)) if log.is_file() else []
    return {"run": str(trainer.run_dir), "patch": str(trainer.run_dir / "patch.png"), "step": trainer.state.step,
            "total_steps": trainer.total_steps, "last_log": records[-1] if records else None}

