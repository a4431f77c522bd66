"""Conv+BatchNorm fusion of a module tree (ultralytics-style layers), outputs unchanged.

Works on any tree whose conv blocks follow ultralytics' layout (``conv`` + ``bn`` + a
``forward_fuse`` method: ``Conv``, ``DWConv``, ``Conv2``, ``ConvTranspose``) plus the re-param
blocks ``RepConv`` and ``RepVGGDW``. Unlike ultralytics' ``BaseModel.fuse`` it never removes a
detection-head branch, so every inference mode stays available.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _fuse_one(m: nn.Module) -> bool:
    """Fuse ``m`` itself if it is a known conv block; return True when its subtree is done."""
    name = type(m).__name__
    if name == "RepVGGDW":
        if hasattr(m, "conv1"):
            m.fuse()
            m.forward = m.forward_fuse
        return True
    if name == "RepConv":
        if hasattr(m, "conv1"):
            m.fuse_convs()
            m.forward = m.forward_fuse
        return True
    bn = getattr(m, "bn", None)
    if not isinstance(bn, nn.BatchNorm2d) or not hasattr(m, "forward_fuse"):
        return False
    if name == "Conv2" and hasattr(m, "cv2"):
        m.fuse_convs()
    if isinstance(getattr(m, "conv", None), nn.Conv2d):
        m.conv = fuse_conv_bn_eval(m.conv.eval(), bn.eval())
    elif isinstance(getattr(m, "conv_transpose", None), nn.ConvTranspose2d):
        m.conv_transpose = fuse_conv_bn_eval(m.conv_transpose.eval(), bn.eval(), transpose=True)
    else:
        return False
    del m.bn
    m.forward = m.forward_fuse
    return True


def fuse_conv_bn(root: nn.Module) -> nn.Module:
    """Fold every BatchNorm into its convolution, in place; returns ``root``. Idempotent."""
    with torch.inference_mode(False), torch.no_grad():  # never create inference tensors

        def visit(m: nn.Module) -> None:
            if _fuse_one(m):
                return
            for child in m.children():
                visit(child)

        visit(root)
    return root
