"""PyTorch definitions of CSRNet (ECCV 2020 / TMM 2022), for training and as the reference path.

Parameter names and shapes follow the authors' released checkpoint exactly, so
``CSRNet().load_state_dict(torch.load(ckpt, weights_only=True))`` works unchanged.

The inference engine (:mod:`csrnet.engine`) re-implements the forward pass in
numpy; nothing on the ``enhance`` path imports this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConditionNet", "CSRNet", "MODELS", "create_model", "count_parameters"]


class ConditionNet(nn.Module):
    """Three strided convolutions and a global mean: image -> 32-d condition vector.

    Each convolution is preceded by a 1-pixel zero pad and has no padding of its own,
    as in the released code.
    """

    def __init__(self, in_nc: int = 3, nf: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_nc, nf, 7, 2, 0)
        self.conv2 = nn.Conv2d(nf, nf, 3, 2, 0)
        self.conv3 = nn.Conv2d(nf, nf, 3, 2, 0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) in [0,1] -> (N,32,h,w) stride-8 feature map (before pooling)."""
        x = F.relu(self.conv1(F.pad(x, (1, 1, 1, 1))))
        x = F.relu(self.conv2(F.pad(x, (1, 1, 1, 1))))
        return F.relu(self.conv3(F.pad(x, (1, 1, 1, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) in [0,1] -> (N,32) condition vector."""
        return self.features(x).mean(dim=(2, 3))


class CSRNet(nn.Module):
    """Conditional Sequential Retouching Network, global version (36,489 parameters).

    Base network: three 1x1 convolutions 3->64->64->3, each followed by global
    feature modulation ``x * (1 + scale) + shift``, ReLU after the first two, no
    output activation. Scales and shifts come from six ``Linear(32 -> C)`` layers
    fed by the condition vector.

    Example:
        >>> net = CSRNet()
        >>> count_parameters(net)
        36489
        >>> net(torch.rand(1, 3, 64, 48)).shape
        torch.Size([1, 3, 64, 48])
    """

    def __init__(self, in_nc: int = 3, out_nc: int = 3, base_nf: int = 64, cond_nf: int = 32) -> None:
        super().__init__()
        self.cond_net = ConditionNet(in_nc, cond_nf)
        self.cond_scale1 = nn.Linear(cond_nf, base_nf)
        self.cond_scale2 = nn.Linear(cond_nf, base_nf)
        self.cond_scale3 = nn.Linear(cond_nf, out_nc)
        self.cond_shift1 = nn.Linear(cond_nf, base_nf)
        self.cond_shift2 = nn.Linear(cond_nf, base_nf)
        self.cond_shift3 = nn.Linear(cond_nf, out_nc)
        self.conv1 = nn.Conv2d(in_nc, base_nf, 1, 1)
        self.conv2 = nn.Conv2d(base_nf, base_nf, 1, 1)
        self.conv3 = nn.Conv2d(base_nf, out_nc, 1, 1)

    def condition(self, x: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) in [0,1] -> (N,32) condition vector."""
        return self.cond_net(x)

    def base(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Per-pixel base network modulated by ``cond`` (N,32). x: (N,3,H,W) -> (N,3,H,W)."""

        def gfm(h: torch.Tensor, scale: nn.Linear, shift: nn.Linear) -> torch.Tensor:
            return h * (1 + scale(cond)[:, :, None, None]) + shift(cond)[:, :, None, None]

        h = F.relu(gfm(self.conv1(x), self.cond_scale1, self.cond_shift1))
        h = F.relu(gfm(self.conv2(h), self.cond_scale2, self.cond_shift2))
        return gfm(self.conv3(h), self.cond_scale3, self.cond_shift3)

    def forward(self, x: torch.Tensor, cond_input: torch.Tensor | None = None) -> torch.Tensor:
        """Enhance ``x`` (N,3,H,W, RGB in [0,1]); output unclamped, same shape.

        ``cond_input`` is the image the condition network sees (default: ``x`` itself,
        the released code's behaviour); pass a downscaled copy for the fast protocol.
        """
        return self.base(x, self.condition(x if cond_input is None else cond_input))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


#: Architecture name (as stored in a weights file's card) -> torch module class.
MODELS: dict[str, type[nn.Module]] = {"csrnet": CSRNet}


def create_model(arch: str = "csrnet", **kwargs: int) -> nn.Module:
    """Build an untrained network by architecture name (timm-style registry)."""
    try:
        return MODELS[arch](**kwargs)
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(sorted(MODELS))})") from None
