"""``patchkit train`` from the command line: run folder, overrides, resume, one-line errors."""

import json

import numpy as np
import torch
from PIL import Image

from patchkit.cli.main import main


def _scene(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(images / f"im{i}.png")
        (labels / f"im{i}.txt").write_text("0 0.5 0.5 0.5 0.8\n")
    return images, labels


def _config(tmp_path, extra=""):
    images, labels = _scene(tmp_path)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"detector: {{weights: yolov8n.yaml, imgsz: 64, fuse: false, channels_last: false}}\n"
        f"scene: {{path: {images}, labels: {labels}}}\n"
        f"patch: {{size: 16}}\n"
        f"optim: {{epochs: 1, batch_size: 2}}\n"
        f"run: {{out: {tmp_path / 'run'}, progress: false, log_every: 1}}\n" + extra
    )
    return cfg


def test_train_cli_writes_the_run_folder_and_resumes(tmp_path):
    cfg = _config(tmp_path)
    assert main(["train", str(cfg), "optim.epochs=2"]) == 0
    run = tmp_path / "run"
    for name in ("patch.png", "checkpoint.pt", "log.jsonl", "config.yaml"):
        assert (run / name).is_file(), name
    assert torch.load(run / "checkpoint.pt", weights_only=True)["state"]["step"] == 2
    assert "epochs: 2" in (run / "config.yaml").read_text()
    assert main(["train", "--resume", str(run), "optim.epochs=3"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_train_cli_unknown_key_is_one_line_exit_2(tmp_path, capsys):
    cfg = _config(tmp_path, extra="optim_typo: 1\n")
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown key 'optim_typo'" in err and "did you mean 'optim'" in err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2


def test_a_run_is_never_overwritten(tmp_path, capsys):
    cfg = _config(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(cfg)]) == 0
    before = (run / "checkpoint.pt").read_bytes()
    assert main(["train", str(cfg), "patch.init=random"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(run) in err and "--resume" in err and "--out" in err and "--exist-ok" in err
    assert (run / "checkpoint.pt").read_bytes() == before
    assert main(["train", str(cfg), "--exist-ok"]) == 0
    assert main(["train", str(cfg), "--exist-ok"]) == 0
    assert (tmp_path / "run-2" / "patch.png").is_file() and (tmp_path / "run-3" / "patch.png").is_file()
    assert (run / "checkpoint.pt").read_bytes() == before


def test_resume_of_a_finished_run_says_so_and_an_interrupt_says_how_to_resume(tmp_path, capsys, monkeypatch):
    cfg = _config(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "is finished (step 1 of 1)" in capsys.readouterr().err

    from patchkit.engine.trainer import Trainer

    def stop(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_step", stop)
    assert main(["train", str(cfg), "--out", str(tmp_path / "other")]) == 130
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"patchkit train --resume {tmp_path / 'other'}" in err
    assert (tmp_path / "other" / "checkpoint.pt").is_file()
