"""The RT-DETR family (ultralytics' ``RTDETRDetectionModel``): model YAMLs and checkpoints.

Its ``sniff`` claims model YAMLs whose last layer is an ``RTDETRDecoder`` and checkpoints that
pickle one (before the ultralytics family, the catch-all for ultralytics files, is asked).

The forward pass runs ultralytics' own layers and decoder modules; the query selection between
encoder and decoder (``RTDETRDecoder._get_decoder_input``) is redone here with anchors cached per
feature shape as plain tensors, so ``raw()`` is differentiable and never touches the decoder's
class-level ``anchors`` / ``valid_mask`` cache (which ultralytics' predict() may fill with
inference tensors).

Pre- and post-processing follow ultralytics' ``RTDETRPredictor`` (8.4): the input is stretched to
``imgsz x imgsz`` (``LetterBox(auto=False, scale_fill=True)``: no padding, aspect ratio not kept),
and the final detections are the top ``num_queries`` (query, class) pairs of the decoder's
sigmoid scores, kept when ``> conf``, without NMS; boxes are ``xywh`` normalised -> ``xyxy``
input pixels, not clipped to the image (as predict()).

A square canvas of ``imgsz x imgsz`` (the trainer's letterboxed scenes) goes through untouched.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from patchkit.detectors._isolation import import_ultralytics_tasks
from patchkit.detectors._ultralytics_build import (
    build_seeded, check_layers, checkpoint_model, head_inputs, last_layer_type, load_model_dict,
    names_dict, peek_model_yaml, run_layers, upsample_compat, yaml_extra,
)
from patchkit.detectors.base import Detector, DetectorInfo, RawOutput
from patchkit.detectors.letterbox import LetterboxParams, check_imgsz
from patchkit.detectors.registry import DetectorFamily, FileView, register_family
from patchkit.detectors.safe_load import file_sha256, safe_torch_load
from patchkit.errors import PatchkitError

HEAD = "RTDETRDecoder"


def is_rtdetr_model_dict(d: dict) -> bool:
    """True when a model dict's last layer row is an ``RTDETRDecoder``."""
    return last_layer_type(d) == HEAD


def is_rtdetr_model(model: Any) -> bool:
    """True for an ultralytics model object whose head is an ``RTDETRDecoder``."""
    layers = getattr(model, "model", None)
    return isinstance(layers, nn.Sequential) and len(layers) > 0 and type(layers[-1]).__name__ == HEAD


def stretch_params(height: int, width: int, imgsz: int) -> LetterboxParams:
    """Geometry of RT-DETR's preprocessing: a plain resize of ``height x width`` to ``imgsz x imgsz``."""
    if height < 1 or width < 1:
        raise PatchkitError(f"cannot resize an image of size {width}x{height}")
    return LetterboxParams(
        in_hw=(height, width),
        out_hw=(imgsz, imgsz),
        new_wh=(imgsz, imgsz),
        scale=min(imgsz / height, imgsz / width),
        pad_x=0,
        pad_y=0,
    )


class RTDETRDetector(Detector):
    """A frozen ultralytics ``RTDETRDetectionModel`` behind patchkit's :class:`Detector` interface.

    ``raw()`` gives one candidate per decoder query: boxes ``(B, Q, 4)`` xyxy input pixels,
    sigmoid class scores ``(B, Q, C)``, objectness ``None`` (``Q = num_queries``, 300 by default).
    ``detect()`` keeps the top ``num_queries`` (query, class) pairs without NMS (:attr:`topk`) and
    does not clip boxes to the image (:attr:`clip_boxes`), exactly like ultralytics' predict().

    Args:
        model: the ultralytics ``RTDETRDetectionModel`` (eval, frozen by the factory).
        info: metadata (``letterbox`` is ``"square"``; the resize is a stretch, see ``extra``).
    """

    clip_boxes = False  # RTDETRPredictor does not clip

    def __init__(self, model: nn.Module, info: DetectorInfo) -> None:
        super().__init__()
        if not is_rtdetr_model(model):
            raise PatchkitError(f"{info.source}: not an RT-DETR model (the last layer is not {HEAD})")
        head = model.model[-1]
        self.model = model
        self.info = info
        self._n_layers = len(model.model) - 1
        self._head_from = head_inputs(head.f, self._n_layers)
        self._save = frozenset(model.save) | frozenset(self._head_from)
        self._anchors: dict[tuple, tuple[Tensor, Tensor]] = {}
        # RTDETRPredictor's post-processing: top-k over all (query, class) pairs, no NMS
        self.topk = int(head.num_queries)

    def letterbox_params(self, height: int, width: int) -> LetterboxParams:
        """RT-DETR stretches every input to ``imgsz x imgsz`` (identity for square canvases of that size)."""
        return stretch_params(height, width, self.info.imgsz)

    def _anchor_grid(self, shapes: list[list[int]], feats: Tensor) -> tuple[Tensor, Tensor]:
        """Anchors ``(1, N, 4)`` (logit space, ``inf`` where invalid) and valid mask ``(1, N, 1)``,
        by ultralytics' ``_generate_anchors``; cached per shape as plain (never inference) tensors."""
        key = (tuple(tuple(s) for s in shapes), feats.device, feats.dtype)
        hit = self._anchors.get(key)
        if hit is None:
            with torch.inference_mode(False), torch.no_grad():
                probe = torch.empty(0, device=feats.device, dtype=feats.dtype)
                hit = self.model.model[-1]._generate_anchors(shapes, probe)
            self._anchors[key] = hit
        return hit

    def _decoder_input(self, feats: Tensor, shapes: list[list[int]]) -> tuple[Tensor, Tensor]:
        """Query selection (``RTDETRDecoder._get_decoder_input`` in eval, without denoising):
        ``(embeddings (B, k, D), reference boxes (B, k, 4) in logit space)``."""
        head = self.model.model[-1]
        anchors, valid = self._anchor_grid(shapes, feats)
        features = head.enc_output(valid * feats)  # (B, N, D)
        enc_scores = head.enc_score_head(features)  # (B, N, C)
        k = min(head.num_queries, enc_scores.shape[1])
        index = enc_scores.amax(-1).topk(k, dim=1).indices  # (B, k)
        top_features = features.gather(1, index[..., None].expand(-1, -1, features.shape[-1]))
        refer = head.enc_bbox_head(top_features) + anchors[0][index]
        if head.learnt_init_query:
            embed = head.tgt_embed.weight[:k].unsqueeze(0).expand(feats.shape[0], -1, -1)
        else:
            embed = top_features
        return embed, refer

    def forward_letterboxed(self, x: Tensor) -> RawOutput:
        """Raw per-query predictions of ``x (B, 3, H, W)`` in [0, 1] already at ``imgsz x imgsz``;
        boxes xyxy in pixels of ``x``."""
        x = self.prepare_input(x)
        head = self.model.model[-1]
        maps = run_layers(islice(self.model.model, self._n_layers), self._save, x, self._head_from)
        feats, shapes = head._get_encoder_input(maps)
        embed, refer = self._decoder_input(feats, shapes)
        boxes, logits = head.decoder(
            embed, refer, feats, shapes, head.dec_bbox_head, head.dec_score_head, head.query_pos_head
        )
        xy, wh = boxes[-1].split(2, -1)  # normalised centre and size, (B, Q, 2) each
        size = x.new_tensor([x.shape[-1], x.shape[-2]])
        xyxy = torch.cat((xy - wh / 2, xy + wh / 2), -1) * size.repeat(2)
        return RawOutput(xyxy, logits[-1].sigmoid(), None)

    def fuse(self) -> "RTDETRDetector":
        """Conv+BN fusion of the backbone / neck plus the decoder's ``input_proj`` (Conv2d, BN) pairs."""
        super().fuse()
        head = self.model.model[-1]
        with torch.inference_mode(False), torch.no_grad():
            for i, proj in enumerate(head.input_proj):
                if len(proj) == 2 and isinstance(proj[0], nn.Conv2d) and isinstance(proj[1], nn.BatchNorm2d):
                    head.input_proj[i] = nn.Sequential(fuse_conv_bn_eval(proj[0].eval(), proj[1].eval()))
        return self.freeze()


def _rtdetr_info(model: nn.Module, source: str, extra: dict, imgsz: int, sha256: str | None) -> DetectorInfo:
    head = model.model[-1]
    stride = int(torch.as_tensor(getattr(model, "stride", [32])).max())
    return DetectorInfo(
        family="rtdetr",
        source=source,
        names=names_dict(getattr(model, "names", None), int(head.nc)),
        stride=stride,
        imgsz=check_imgsz(imgsz, stride),
        letterbox="square",
        sha256=sha256,
        extra={"head": HEAD, "nc": int(head.nc), "num_queries": int(head.num_queries), "resize": "stretch", **extra},
    )


def _check_end2end(end2end: bool | None, source: str) -> None:
    if end2end is False:
        raise PatchkitError(f"{source}: RT-DETR is end-to-end only (no NMS branch); leave end2end unset")


def load_rtdetr_yaml(
    cfg: str | Path, imgsz: int = 640, letterbox: str = "square", device: str | torch.device = "cpu",
    nc: int | None = None, seed: int = 0, end2end: bool | None = None,
) -> RTDETRDetector:
    """An RT-DETR detector with random weights from a YAML (``rtdetr-l.yaml``, a local file...);
    ``seed`` fixes the weights without touching the global RNG. ``letterbox`` is accepted for the
    common signature and ignored: RT-DETR always stretches."""
    source = str(cfg)
    _check_end2end(end2end, source)
    tasks = import_ultralytics_tasks()
    d = load_model_dict(cfg, tasks)
    if not is_rtdetr_model_dict(d):
        raise PatchkitError(f"{source}: not an RT-DETR model YAML (the last layer is not {HEAD})")
    check_layers(d, tasks, source)
    model = build_seeded(tasks.RTDETRDetectionModel, d, tasks, source, nc, seed)
    info = _rtdetr_info(model, source, yaml_extra(d, seed), imgsz, None)
    return RTDETRDetector(model.float(), info).to(torch.device(device)).freeze()


def load_rtdetr_checkpoint(
    weights: str | Path, imgsz: int = 640, letterbox: str = "square", device: str | torch.device = "cpu",
    end2end: bool | None = None, ckpt: Any = None,
) -> RTDETRDetector:
    """A frozen RT-DETR detector from an ultralytics checkpoint (``rtdetr-l.pt``-style dict),
    loaded through :func:`patchkit.detectors.safe_load.safe_torch_load`; ``ckpt`` may pass the
    already loaded checkpoint. ``letterbox`` is ignored (RT-DETR always stretches)."""
    path = Path(weights)
    _check_end2end(end2end, str(path))
    if ckpt is None:
        ckpt = safe_torch_load(path)
    model = checkpoint_model(ckpt)
    if not is_rtdetr_model(model):
        raise PatchkitError("is not an RT-DETR checkpoint (no RTDETRDecoder model under 'model'/'ema')", path)
    model = upsample_compat(model.float())
    info = _rtdetr_info(model, str(path), {"format": "ultralytics-checkpoint"}, imgsz, file_sha256(path))
    return RTDETRDetector(model, info).to(torch.device(device)).freeze()


def sniff_rtdetr(view: FileView) -> bool:
    """A model YAML whose last layer is an ``RTDETRDecoder``, or a checkpoint holding one."""
    if view.kind == "yaml":
        return is_rtdetr_model_dict(peek_model_yaml(view.path))
    if view.kind == "globals":
        return any(n.startswith("ultralytics.") and n.rpartition(".")[2] == HEAD for n in view.content)
    if view.kind == "object":
        return isinstance(view.content, dict) and is_rtdetr_model(checkpoint_model(view.content))
    return False


FAMILY = register_family(
    DetectorFamily(
        name="rtdetr",
        sniff=sniff_rtdetr,
        from_checkpoint=load_rtdetr_checkpoint,
        from_yaml=load_rtdetr_yaml,
        example="rtdetr-l.yaml",
    )
)
load_rtdetr = FAMILY  # the registry entry under its former name
