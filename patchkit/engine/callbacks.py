"""Training callbacks: each concern (progress, logs, snapshots, checkpoints) is its own class.

A callback implements any of ``on_train_start(trainer)``, ``on_step_end(trainer, state)``,
``on_log(trainer, record)``, ``on_train_end(trainer, state)``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm


class Callback:
    def on_train_start(self, trainer) -> None: ...
    def on_step_end(self, trainer, state) -> None: ...
    def on_log(self, trainer, record: dict) -> None: ...
    def on_train_end(self, trainer, state) -> None: ...


class ProgressBar(Callback):
    """tqdm bar over steps, showing loss and the current detection rate."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None

    def on_train_start(self, trainer) -> None:
        self.bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.state.step,
            desc="train",
            unit="step",
            disable=not self.enabled,
            dynamic_ncols=True,
        )

    def on_step_end(self, trainer, state) -> None:
        self.bar.update(1)

    def on_log(self, trainer, record: dict) -> None:
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", det_rate=f"{record['det_rate']:.2f}")

    def on_train_end(self, trainer, state) -> None:
        self.bar.close()


class JsonlLogger(Callback):
    """Appends one JSON record per logged step to ``log.jsonl`` (flushed each line) and mirrors
    it to ``log.csv``. On resume, records past the checkpoint's step are dropped first."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "log.jsonl"
        self.csv = Path(run_dir) / "log.csv"

    def on_train_start(self, trainer) -> None:
        if self.path.exists():  # resume: keep only what the checkpoint covers
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    break  # a torn last line from a crash
                if rec.get("step", 0) <= trainer.state.step:
                    keep.append(line)
            self.path.write_text("".join(f"{k}\n" for k in keep))
            self._rewrite_csv([json.loads(k) for k in keep])

    def on_log(self, trainer, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        new = not self.csv.exists()
        with self.csv.open("a", encoding="utf-8") as f:
            if new:
                f.write(",".join(record) + "\n")
            f.write(",".join(str(v) for v in record.values()) + "\n")

    def _rewrite_csv(self, records: list[dict]) -> None:
        self.csv.unlink(missing_ok=True)
        if records:
            lines = [",".join(records[0])] + [",".join(str(v) for v in r.values()) for r in records]
            self.csv.write_text("\n".join(lines) + "\n")


class Snapshotter(Callback):
    """Saves the patch as ``snapshots/step_XXXXXX.png`` every ``every`` steps (0 = never); with
    ``optim.ema`` on, that is the average and ``step_XXXXXX_iterate.png`` the last iterate."""

    def __init__(self, run_dir: Path, every: int):
        self.dir = Path(run_dir) / "snapshots"
        self.every = every

    def on_step_end(self, trainer, state) -> None:
        if self.every and state.step % self.every == 0:
            trainer.save_patch(self.dir / f"step_{state.step:06d}.png")


class Checkpointer(Callback):
    """Atomic ``checkpoint.pt`` and ``patch.png`` every ``every`` steps and at the end."""

    def __init__(self, every: int):
        self.every = every

    def on_step_end(self, trainer, state) -> None:
        if self.every and state.step % self.every == 0:
            trainer.save_checkpoint()

    def on_train_end(self, trainer, state) -> None:
        trainer.save_checkpoint()
