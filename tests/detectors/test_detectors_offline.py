"""patchkit keeps ultralytics offline by itself: with YOLO_OFFLINE unset, ``detect`` and ``train``
open no network socket and make no DNS look-up (each attempt is recorded and refused)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]

GUARD = textwrap.dedent("""
    import json, socket, sys
    attempts = []
    def refuse(kind):
        def f(*args, **kwargs):
            attempts.append([kind, repr(args[:2])])
            raise OSError(f"network blocked by the test ({kind})")
        return f
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.gethostbyname = refuse("gethostbyname")
    socket.create_connection = refuse("create_connection")
    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    from patchkit.cli.main import main
    try:
        code = main(sys.argv[2:])
    finally:
        open(sys.argv[1], "w").write(json.dumps(attempts))
    sys.exit(code)
""")


def _run(tmp_path: Path, args: list[str]) -> list:
    env = {k: v for k, v in os.environ.items() if k != "YOLO_OFFLINE"}
    env["YOLO_CONFIG_DIR"] = str(tmp_path / "ultralytics_cfg")  # a fresh settings file, as on a new machine
    log = tmp_path / "attempts.json"
    proc = subprocess.run([sys.executable, "-c", GUARD, str(log), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(log.read_text())


def test_detect_and_train_open_no_socket_without_yolo_offline(tmp_path):
    images = tmp_path / "images"
    labels = tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for i in range(2):
        Image.new("RGB", (96, 64), (40 * i, 120, 60)).save(images / f"im{i}.png")
        (labels / f"im{i}.txt").write_text("0 0.5 0.5 0.4 0.8\n")
    assert _run(tmp_path, ["detect", str(images), "--detector", "yolov8n.yaml", "--imgsz", "64",
                           "--json", str(tmp_path / "dets.json")]) == []
    assert json.loads((tmp_path / "dets.json").read_text())["images"]
    cfg = tmp_path / "train.yaml"
    cfg.write_text(textwrap.dedent(f"""
        detector: {{weights: yolov8n.yaml, imgsz: 64}}
        scene: {{path: {images}, labels: {labels}, min_size: 1}}
        patch: {{size: 16}}
        optim: {{epochs: 1, batch_size: 2}}
        run: {{out: {tmp_path / 'run'}, progress: false}}
    """))
    assert _run(tmp_path, ["train", str(cfg)]) == []
    assert (tmp_path / "run" / "patch.png").is_file()
