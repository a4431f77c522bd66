"""The demo's texture steps (``patchkit demo --texture``): adversarial clothing on the toy world.

1. ``texture/``: the texture training scene (:func:`patchkit.toyworld.texture_scene.build_texture_scene`:
   the world's training images, pedestrians in a gray suit, one suit mask per person box) and its
   unseen counterpart (the world's test images).
2. ``texture/train/``: a tile trained against the detector by patchkit's trainer with
   ``patch.kind: texture`` (the scene's masks say where the cloth is).
3. digital: the detection rate on the unseen images with the suits re-textured (clean = the gray
   suits as rendered, random noise, gray, the trained tile;
   :func:`patchkit.evaluation.textures.texture_detection_rate`).
4. ``texture/film/``: the tile printed at its physical repeat and worn as a suit by walking
   figures, and a control in a random-texture suit of the same coverage
   (:func:`patchkit.capture.film_texture.film_texture`).
5. ``texture/score/``: both sets of videos scored like the patch's.

The summary's ``texture`` key: ``detection_rate`` (digital), ``video`` (``control``, ``texture``,
``ratio`` = texture / control) and the details.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from patchkit.capture.film_texture import film_texture
from patchkit.config import from_dict, to_dict
from patchkit.demo.config import DemoConfig
from patchkit.demo.report import film_rows
from patchkit.eot.config import EOTConfig
from patchkit.evaluation.textures import gray_texture, random_texture, texture_detection_rate
from patchkit.io import atomic_write_text, save_image
from patchkit.scenes.scene import Scene
from patchkit.toyworld.config import ToyWorldConfig
from patchkit.toyworld.texture_scene import build_texture_scene

DIGITAL = ("clean", "random", "gray", "texture", "printed")
VIDEO = (("control", "control"), ("texture", "test"))  # summary key, scoring role
RANDOM_SEED = 15  # seeds the control tile (and the digital random condition)


def world_config(cfg: DemoConfig) -> ToyWorldConfig:
    """The generator settings of the demo's world (:func:`patchkit.demo.pipeline.make_world`'s)."""
    return ToyWorldConfig(persons=list(cfg.world.persons), person_height=list(cfg.world.person_height))


def texture_scenes(cfg: DemoConfig) -> tuple[Scene, Scene]:
    """The training scene (world seed, ``train`` split) and the unseen one (``test`` split), both
    with the pedestrians in gray suits and their suit masks, letterboxed to ``cfg.imgsz``."""
    t = cfg.texture
    world = world_config(cfg)
    train = build_texture_scene(t.n_train or cfg.world.n_train, cfg.world.seed, cfg.imgsz, world, "train",
                                t.tile_cm, name="toyworld-suit-train")
    test = build_texture_scene(t.n_test or cfg.world.n_test, cfg.world.seed, cfg.imgsz, world, "test",
                               t.tile_cm, name="toyworld-suit-test")
    return train, test


def texture_train_config(cfg: DemoConfig, profile: Path, out: Path):
    """The texture-training config (``patch.kind: texture``); ``texture/train/config.yaml`` records it.
    ``scene.path`` is only a record: the trainer gets the in-memory scene."""
    from patchkit.engine.config import TrainConfig

    t = cfg.texture
    eot = EOTConfig() if cfg.attack.eot else EOTConfig.all_disabled()
    return from_dict(TrainConfig, {
        "detector": {"weights": cfg.detector, "imgsz": cfg.imgsz},
        "scene": {"path": str(out / "world"), "split": "train", "labels": "official"},
        "eot": to_dict(eot),
        "patch": {"kind": "texture", "size": t.tile_px, "init": "gray", "parameterization": t.parameterization,
                  "lowres_factor": t.lowres_factor, "texture": {"tile_cm": t.tile_cm}},
        "optim": {"epochs": t.epochs, "batch_size": t.batch_size, "lr": t.lr},
        "run": {"out": str(out / "texture" / "train"), "seed": 0, "device": cfg.device, "log_every": 5,
                "checkpoint_every": 50, "progress": cfg.progress},
        "printer": str(profile),
    }, source="demo config (texture)")


def train_texture(cfg: DemoConfig, scene: Scene, detector, profile: Path, out: Path,
                  echo: Callable[[str], None] = print) -> torch.Tensor:
    """Train (or reuse / resume, as the patch demo does) the tile; returns it ``(3, T, T)`` on the CPU."""
    from patchkit.demo.pipeline import _resumable
    from patchkit.engine.trainer import Trainer

    tcfg = texture_train_config(cfg, profile, out)
    trainer = Trainer(tcfg, detector=detector, scene=scene)
    checkpoint = trainer.run_dir / "checkpoint.pt"
    if _resumable(checkpoint, tcfg):
        trainer.load_checkpoint(checkpoint)
        echo(f"      continuing {checkpoint} from step {trainer.state.step}/{trainer.total_steps}")
    return trainer.fit().detach().cpu().float()


def printed_colours(tile: torch.Tensor, profile) -> torch.Tensor:
    """``tile`` ``(3, T, T)`` as the calibrated printer ``profile`` predicts it captured (the training
    EOT's printer colour): the print's contrast loss, which the film shows and the bare tile hides."""
    if profile is None:
        return tile
    out = profile.predict(tile.detach().cpu().float().permute(1, 2, 0).reshape(-1, 3))
    return torch.as_tensor(out).float().reshape(tile.shape[1], tile.shape[2], 3).permute(2, 0, 1).clamp(0.0, 1.0)


def digital_rates(detector, scene: Scene, tiles: dict[str, torch.Tensor], tile_cm: float, conf: float) -> dict:
    """Detection rate (and AP50) on ``scene`` per condition: ``clean`` (the suits as rendered) and
    each tile of ``tiles`` rendered on the suit masks (same per-person offsets for every tile)."""
    masks = [m.float() / 255.0 for m in scene.masks]
    out = {}
    for name, tile in (("clean", None), *tiles.items()):
        if tile is None:  # no texture: empty masks leave the images as rendered
            r = texture_detection_rate(detector, scene.images, scene.boxes, [torch.zeros_like(m) for m in masks],
                                       gray_texture(8), tile_cm, conf=conf)
        else:
            r = texture_detection_rate(detector, scene.images, scene.boxes, masks, tile, tile_cm, seed=0, conf=conf)
        out[name] = r
    return out


def texture_steps(cfg: DemoConfig, steps, detector, device, profile_dir: Path, profile, out: Path,
                  echo: Callable[[str], None] = print) -> dict:
    """Run the texture steps (see the module docstring) with the demo's step printer ``steps``;
    returns the summary's ``texture`` entry."""
    from patchkit.video.parallel import DetectorSpec
    from patchkit.video.runner import ScoreRunConfig, score_inputs
    from patchkit.video.scoring import DEFAULT_THRESHOLDS, ScoreOptions
    from patchkit.video.target import ReferenceFactory

    t = cfg.texture
    root = out / "texture"
    root.mkdir(parents=True, exist_ok=True)
    steps.start("texture_scene", f"texture scene: {t.n_train or cfg.world.n_train} training + "
                                 f"{t.n_test or cfg.world.n_test} unseen images, pedestrians in gray suits")
    train_scene, test_scene = texture_scenes(cfg)

    steps.start("texture_train", f"train a {t.tile_px} px texture tile ({t.tile_cm:g} cm repeat) against "
                                 f"'{cfg.detector}' on {len(train_scene)} images ({train_scene.n_boxes} suits)")
    tile = train_texture(cfg, train_scene, detector, profile_dir, out, echo)
    save_image(root / "texture.png", tile)
    tiled = tile.repeat(1, 3, 3)
    save_image(root / "texture_tiled.png", tiled)

    steps.start("texture_eval", f"digital evaluation on {len(test_scene)} unseen images: clean / random / gray / texture")
    control_tile = random_texture(t.tile_px, RANDOM_SEED)
    tiles = {"random": control_tile, "gray": gray_texture(t.tile_px), "texture": tile,
             "printed": printed_colours(tile, profile)}
    digital = digital_rates(detector, test_scene, tiles, t.tile_cm, cfg.conf)

    walks, frames = t.walks or cfg.film.walks, t.frames or cfg.film.frames
    steps.start("texture_film", f"print the tile ({t.tile_cm:g} cm repeat, {cfg.printer}) and film {walks} walk(s) x "
                                f"{frames} frames in a suit of it, and a random-texture control suit")
    filmed = {name: film_texture(tl, name, t.tile_cm, cfg.printer, profile, root / "film", walks, frames, cfg.film.dpi)
              for name, tl in (("texture", tile), ("control", control_tile))}

    steps.start("texture_score", "score the suit videos (detected = a person box with IoU >= 0.5 on the walker)")
    scorer = DetectorSpec(cfg.detector, cfg.imgsz, device=str(device)).build()
    options = ScoreOptions(conf=cfg.conf, thresholds=tuple(sorted(set(DEFAULT_THRESHOLDS) | {cfg.conf})),
                           target_class=0, batch=8)
    video = score_inputs(
        [str(v) for v in filmed["texture"]], scorer, options, ReferenceFactory("boxes"),
        control=[str(v) for v in filmed["control"]],
        config=ScoreRunConfig(out_dir=root / "score", progress=cfg.progress),
        meta={"detector": cfg.detector, "reference": "boxes", "imgsz": cfg.imgsz},
    )
    steps.stop()
    return texture_summary(cfg, digital, video, root, out)


def texture_summary(cfg: DemoConfig, digital: dict, video: dict, root: Path, out: Path) -> dict:
    """The summary's ``texture`` entry (rates at ``cfg.conf``)."""
    from patchkit.evaluation.digital import tkey
    from patchkit.video.summary import touching_rates

    key = tkey(cfg.conf)
    pooled = video.get("pooled", {})
    rate = {name: pooled[role]["detection_rate"][key] for name, role in VIDEO}
    ratio = rate["texture"] / rate["control"] if rate["control"] else None
    t = cfg.texture
    s = {
        "detection_rate": {c: digital[c]["detection_rate"] for c in DIGITAL if c in digital},
        "video": {**rate, "ratio": None if ratio is None else round(ratio, 4)},
        "ap50": {c: digital[c]["ap50"] for c in DIGITAL if c in digital},
        "digital": {"reference": "the toy world's true person boxes, IoU 0.5", "images": digital["clean"]["n_images"],
                    "boxes": digital["clean"]["n_boxes"], "coverage": digital["texture"]["coverage"]},
        "video_ci95": {name: pooled[role]["detection_rate_ci95"][key] for name, role in VIDEO},
        "video_frames": {name: pooled[role]["frames_with_target"] for name, role in VIDEO},
        "video_mean_conf": {name: pooled[role]["mean_conf"] for name, role in VIDEO},
        "tile_px": t.tile_px,
        "tile_cm": t.tile_cm,
    }
    frames = Path(video.get("frames_jsonl", ""))
    if frames.is_file():
        by_role = touching_rates(frames, cfg.conf)
        s["video_touching"] = {name: by_role.get(role, 0.0) for name, role in VIDEO}
    rel = root.relative_to(out)
    s["files"] = {
        "texture": f"{rel}/texture.png", "texture_tiled": f"{rel}/texture_tiled.png",
        "print_pdf": f"{rel}/film/texture.pdf", "control_pdf": f"{rel}/film/control.pdf",
        "videos": sorted(str(p.relative_to(out)) for p in (root / "film").glob("walk*.mp4")),
        "video_metrics": f"{rel}/score/summary.json", "training_log": f"{rel}/train/log.jsonl",
    }
    atomic_write_text(root / "report.md", texture_markdown(s, cfg.conf))
    return s


def texture_table(s: dict, conf: float) -> str:
    """The texture's markdown table (the CLI prints it after the patch's)."""
    d, a = s["detection_rate"], s["ap50"]
    v = s["video"]
    lines = [
        f"| texture suit, digital, {s['digital']['images']} unseen images | clean (gray suit) | random texture | "
        "gray texture | trained texture | trained, printer colours |",
        "|---|---|---|---|---|---|",
        f"| person detection rate @{conf:g} | " + " | ".join(f"{d[c]:.3f}" if c in d else "-" for c in DIGITAL) + " |",
        "| person AP50 | " + " | ".join(f"{a[c]:.3f}" if c in a else "-" for c in DIGITAL) + " |",
        "",
        *film_rows(s, v, conf, "texture", f"| suit printed and filmed ({s['tile_cm']:g} cm repeat) | "
                                          "control: random-texture suit | trained-texture suit |"),
    ]
    if v["ratio"] is not None:
        lines += ["", f"Trained suit / control detection rate: {v['ratio']:.2f}."]
    return "\n".join(lines)


def texture_markdown(s: dict, conf: float) -> str:
    f = s["files"]
    return "\n".join([
        "# patchkit demo: texture suit", "",
        texture_table(s, conf), "",
        "![texture, 3 x 3 repeats](texture_tiled.png)", "",
        f"- `{f['texture']}`: the tile; `{f['print_pdf']}`: one repeat, print-ready ({s['tile_cm']:g} cm); "
        f"`{f['control_pdf']}`: the control's.",
        "- `film/`: the filmed walks (MP4) with the walker's true box per frame (JSON beside each).",
        "- `score/`: per-frame records, annotated videos, `summary.json`; `train/`: the training run.",
        "",
    ])
