"""create_detector(): dispatch, names, YAML resolution, no downloads, no process-wide side effects."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from patchkit.detectors import (
    Detector,
    DetectorFamily,
    DetectorInfo,
    FileView,
    RawOutput,
    create_detector,
    list_detectors,
    list_families,
    register_detector,
)
from patchkit.detectors import registry
from patchkit.detectors._isolation import preserve_process_state
from patchkit.detectors.ultralytics import UltralyticsDetector, resolve_yaml
from patchkit.errors import PatchkitError

REPO = Path(__file__).resolve().parents[2]


def test_builtin_families_are_registered():
    names = list_detectors()
    assert {"yolov5", "ultralytics"} <= set(names) and names == sorted(names)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(PatchkitError) as exc:
        create_detector("yolov9")
    msg = str(exc.value)
    assert "\n" not in msg and "yolov5" in msg and "ultralytics" in msg and "did you mean" in msg
    if "toy" not in list_detectors():
        with pytest.raises(PatchkitError, match="toy detector not available yet"):
            create_detector("toy")
    with pytest.raises(PatchkitError, match="needs a weights file"):
        create_detector("yolov5")


def test_missing_weights_never_download(tmp_path, monkeypatch):
    with preserve_process_state():
        from ultralytics.utils import downloads

    def forbidden(*args, **kwargs):
        raise AssertionError("a download was attempted")

    for name in ("attempt_download_asset", "safe_download", "download"):
        monkeypatch.setattr(downloads, name, forbidden)
    monkeypatch.chdir(tmp_path)
    for weights in ("yolov8n.pt", "yolo11n.pt", "yolov5n.pt", "weights/best.pt"):
        with pytest.raises(PatchkitError, match="not found") as exc:
            create_detector(weights)
        assert "\n" not in str(exc.value) and weights in str(exc.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name", ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml", "yolov10n.yaml", "yolov5nu.yaml", "yolo12s.yaml", "yolov9t.yaml", "yolov3-tinyu.yaml", "yolov8s-p6.yaml"]
)
def test_bare_yaml_names_resolve_from_the_installed_cfg(name):
    file, named = resolve_yaml(name)
    assert file.is_file() and "ultralytics" in str(file) and named.name == name


def test_yaml_builds_reproducible_random_weights_without_side_effects():
    from PIL import Image

    threads, image_open, save = torch.get_num_threads(), Image.open, torch.save
    rng_state = torch.random.get_rng_state()
    a = create_detector("yolov8n.yaml", imgsz=320)
    b = create_detector("ultralytics:yolov8n.yaml", imgsz=320, seed=None)  # None kwargs are dropped
    c = create_detector("yolov8n.yaml", imgsz=320, seed=1)
    assert isinstance(a, UltralyticsDetector) and a.info.family == "ultralytics" and a.info.imgsz == 320
    assert a.info.stride == 32 and len(a.names) == 80
    wa, wb, wc = (next(d.parameters()) for d in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads and Image.open is image_open and torch.save is save


def test_unsupported_yaml_heads_and_layers(tmp_path):
    bad = tmp_path / "custom.yaml"
    bad.write_text("nc: 2\nbackbone:\n  - [-1, 1, NotALayer, [16, 3, 2]]\nhead:\n  - [[0], 1, Detect, [nc]]\n")
    with pytest.raises(PatchkitError, match="NotALayer"):
        create_detector(bad)


def test_yaml_activation_is_never_evaluated(tmp_path):
    marker = tmp_path / "PWNED"
    src = resolve_yaml("yolov8n.yaml")[0].read_text()
    evil = tmp_path / "yolov8n-evil.yaml"
    evil.write_text(f"activation: __import__('os').system('touch {marker}')\n" + src)
    with pytest.raises(PatchkitError, match="unsupported activation"):
        create_detector(evil)
    assert not marker.exists()
    ok = tmp_path / "yolov8n-relu.yaml"
    ok.write_text("activation: nn.ReLU()\n" + src)
    det = create_detector(ok, imgsz=320)
    assert any(isinstance(m, torch.nn.ReLU) for m in det.modules())


class _ConstantDetector(Detector):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.info = DetectorInfo(family="constant", source=source, names={0: "thing"})

    def forward_letterboxed(self, x):
        boxes = torch.tensor([[8.0, 8.0, 24.0, 24.0]]).expand(x.shape[0], 1, 4)
        return RawOutput(boxes, (x.mean((1, 2, 3)) * self.w).view(-1, 1, 1), None)


def test_registered_factories_by_name_and_by_checkpoint_family(tmp_path, monkeypatch):
    calls = []

    def factory(weights, *, imgsz, letterbox, device, **kwargs):
        calls.append((weights, imgsz, letterbox, kwargs))
        return _ConstantDetector(str(weights)).freeze()

    monkeypatch.setitem(registry._REGISTRY, "constant", factory)
    assert register_detector("constant")(factory) is factory
    det = create_detector("constant", imgsz=64, flavour="x", unused=None)
    assert calls[-1] == (None, 64, "rect", {"flavour": "x"})
    ckpt = tmp_path / "mine.pt"
    torch.save({"family": "constant", "state_dict": {"w": torch.ones(1)}}, ckpt)
    create_detector(ckpt)
    assert calls[-1][0] == ckpt
    create_detector(f"constant:{ckpt}")
    assert calls[-1][0] == str(ckpt)
    dets = det.detect(torch.full((3, 40, 40), 0.5))
    assert len(dets) == 1 and dets[0].cls.tolist() == [0]


def test_a_family_plug_in_claims_its_own_files(tmp_path, monkeypatch):
    """A family registered from outside the registry is sniffed (by globals, by loaded object, by
    YAML) before the catch-all ultralytics family, and is a factory under its own name."""
    calls = []

    def build(kind):
        def factory(weights, *, imgsz, letterbox, device, **kwargs):
            calls.append((kind, weights))
            return _ConstantDetector(str(weights)).freeze()

        return factory

    def sniff(view: FileView) -> bool:
        if view.kind == "object":
            return isinstance(view.content, dict) and "constant_weights" in view.content
        return view.kind == "yaml" and view.path.name.startswith("constant")

    family = DetectorFamily("constantfam", sniff, build("checkpoint"), build("yaml"), example="c.pt")
    monkeypatch.setitem(registry._REGISTRY, "constantfam", family)
    monkeypatch.setitem(registry._FAMILIES, "constantfam", family)
    assert family in list_families() and list_families()[-1].name == "ultralytics"  # the catch-all is asked last
    ckpt = tmp_path / "anything.pt"
    torch.save({"constant_weights": torch.ones(1)}, ckpt)
    create_detector(ckpt)
    create_detector(tmp_path / "constant.yaml")  # claimed before any YAML is read
    create_detector(f"constantfam:{tmp_path / 'other.yaml'}")
    assert calls == [("checkpoint", ckpt), ("yaml", tmp_path / "constant.yaml"), ("yaml", str(tmp_path / "other.yaml"))]
    with pytest.raises(PatchkitError, match="'constantfam' needs a model YAML or checkpoint, e.g. c.pt"):
        create_detector("constantfam")


def test_registry_names_no_family_and_detectors_have_no_import_cycles():
    """registry.py imports no family module (they are discovered at the first create_detector /
    list_detectors); no module of patchkit.detectors imports, even lazily, one that imports it back."""
    code = "import sys, patchkit.detectors.registry; print(*(m for m in sys.modules if m.startswith('patchkit.detectors.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = {m.rsplit(".", 1)[1] for m in out.stdout.split()}
    assert "registry" in loaded and not loaded & ({f.name for f in list_families()} | {"toy"})
    folder = REPO / "patchkit" / "detectors"
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    graph = {}
    for m in modules:
        deps = set()
        for node in ast.walk(ast.parse((folder / f"{m}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("patchkit.detectors."):
                deps.add(node.module.split(".")[2])
        graph[m] = deps & modules
    for start in modules:  # depth-first search for a path back to start
        seen, stack = set(), list(graph[start])
        while stack:
            m = stack.pop()
            assert m != start, f"import cycle through patchkit.detectors.{start}"
            if m not in seen:
                seen.add(m)
                stack.extend(graph[m])


def test_bad_options_are_one_line_errors():
    with pytest.raises(PatchkitError, match="letterbox"):
        create_detector("yolov8n.yaml", letterbox="stretch")
    with pytest.raises(PatchkitError, match="imgsz"):
        create_detector("yolov8n.yaml", imgsz=0)
    with pytest.raises(PatchkitError, match="device"):
        create_detector("yolov8n.yaml", device="tpu:7")


def test_importing_patchkit_does_not_import_ultralytics():
    code = "import sys, patchkit, patchkit.detectors; patchkit.detectors.list_detectors(); print('ultralytics' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
