"""PyTorch definitions of CSRNet (ECCV 2020 / TMM 2022), for training and as the reference path.

Parameter names and shapes follow the authors' released checkpoint exactly, so
``CSRNet().load_state_dict(torch.load(ckpt, weights_only=True))`` works unchanged.

The torch-free inference (:mod:`csrnet.arch`) re-implements the forward pass in numpy; nothing on
the ``enhance`` path imports this module. Each class here is named by its architecture's registry
entry (``torch_class``) and brings its training loss on pixel subsets (``subset_loss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..arch.layers import COLOUR_BINS  # the numpy twin's bin count (torch-free module)

__all__ = ["ConditionNet", "CSRNet", "CSRNetHist", "CSRNetL", "colour_statistics", "create_model", "count_parameters"]


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

    def subset_loss(self, examples: Sequence[Any], pixels: int, rng: np.random.Generator) -> torch.Tensor:
        """L1 on ``pixels`` random pixels of each example (``.size`` its (H, W), ``.take(idx)`` the (1,3,K)
        input and target at flat indices, ``.cond`` its condition copy): the base network is per-pixel,
        so a random subset of pixels is a valid mini-batch."""
        conds, xs, ys = [], [], []
        for ex in examples:
            h, w = ex.size
            x, y = ex.take(torch.from_numpy(rng.integers(0, h * w, size=pixels)).to(ex.cond.device))
            xs.append(x)
            ys.append(y)
            conds.append(self.condition(ex.cond))
        x = torch.cat(xs)[..., None]  # (B, 3, K, 1): the 1x1 convolutions see K "pixels"
        y = torch.cat(ys)[..., None]
        return F.l1_loss(self.base(x, torch.cat(conds)), y)


def colour_statistics(x: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) in [0,1] -> (N, 5*16) cumulative histograms of R, G, B, luma and chroma, bit for bit
    :func:`csrnet.arch.layers.colour_statistics` (the same float32 operations in the same order)."""
    n = x.shape[0]
    flat = x.detach().flatten(2)  # (N, 3, P): a statistic of the data, no gradient through the bins
    r, g, b = flat[:, 0], flat[:, 1], flat[:, 2]
    w = [torch.tensor(v, dtype=torch.float32) for v in (0.2126, 0.7152, 0.0722)]
    chans = torch.stack([r, g, b, r * w[0] + g * w[1] + b * w[2], flat.amax(1) - flat.amin(1)], 1)  # (N, 5, P)
    idx = torch.floor(chans.clamp(0, 1) * COLOUR_BINS).clamp(max=COLOUR_BINS - 1).long()
    counts = torch.zeros(n, 5, COLOUR_BINS, dtype=torch.int64, device=x.device).scatter_add_(2, idx, torch.ones_like(idx))
    return (counts.cumsum(2).float() / torch.tensor(float(flat.shape[2]), dtype=torch.float32)).reshape(n, -1)


class CSRNetHist(CSRNet):
    """CSRNet with a colour-statistics branch beside the condition network (``csrnet-hist``, 40,137 parameters).

    ``cond = ConditionNet(x) + cond_hist2(relu(cond_hist1(colour_statistics(x))))``; ``cond_hist2``
    starts at zero, so a trained CSRNet loaded into it (``strict=False``) is unchanged at step 0.
    """

    def __init__(self, in_nc: int = 3, out_nc: int = 3, base_nf: int = 64, cond_nf: int = 32, hidden: int = 32) -> None:
        super().__init__(in_nc, out_nc, base_nf, cond_nf)
        self.cond_hist1 = nn.Linear(5 * COLOUR_BINS, hidden)
        self.cond_hist2 = nn.Linear(hidden, cond_nf)
        nn.init.zeros_(self.cond_hist2.weight)
        nn.init.zeros_(self.cond_hist2.bias)

    def condition(self, x: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) in [0,1] -> (N,32): the convolutions' mean plus the colour-statistics branch."""
        return self.cond_net(x) + self.cond_hist2(F.relu(self.cond_hist1(colour_statistics(x))))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ---------------------------------------------------------------- CSRNet-L (local)
#: Channels modulated by the spatial maps, in order: scale1, shift1, scale2, shift2, scale3, shift3.
def _local_channels(base_nf: int, out_nc: int) -> tuple[int, ...]:
    return (base_nf, base_nf, base_nf, base_nf, out_nc, out_nc)


def coord_channels(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """(1, 2, h, w) pixel-centre coordinates (y, x) in [-1, 1] (CoordConv), so the map knows where it is."""
    ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w * 2 - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"))[None]


def luminance(x: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) RGB -> (N,1,H,W) Rec. 601 luma, the guide of the edge-aware upsampling."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def guided_coefficients(maps: torch.Tensor, guide: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast guided filter (He & Sun 2015) at map resolution: per-channel ``A, b`` with ``map ~ A*guide + b``.

    maps: (N,C,h,w); guide: (N,1,h,w) luma pooled to the same grid; 3x3 box windows
    (edge-replicated). Upsampling ``A`` and ``b`` bilinearly and evaluating ``A*L + b``
    with the full-resolution luma ``L`` makes the maps follow the photo's edges.
    """

    def box(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, 1)

    mean_i, mean_p = box(guide), box(maps)
    cov = box(guide * maps) - mean_i * mean_p
    var = box(guide * guide) - mean_i * mean_i
    a = cov / (var + eps)
    return a, mean_p - a * mean_i


class CSRNetL(nn.Module):
    """CSRNet-L: CSRNet with *spatial* feature modulation for local effects (our design; the TMM paper's
    exact CSRNet-L layers are not public).

    * Base network: CSRNet's per-pixel 3->64->64->3 MLP (1x1 convolutions), unchanged.
    * Global branch: CSRNet's condition network and its six ``Linear(32 -> C)`` GFM layers, unchanged
      (the parameter names match CSRNet, so a trained CSRNet initialises it).
    * Spatial branch (``local_net``): the condition network's stride-8 feature map, average-pooled by
      ``map_pool`` (grid stride ``8*map_pool`` px of the condition image), plus two coordinate channels
      (CoordConv: lets the map express position-bound effects such as vignetting or a graduated
      filter) -> conv 3x3 34->32 + ReLU (context) -> conv 1x1 32->262: per-cell scale/shift maps
      for the three layers. The head starts at zero, so an untrained CSRNet-L *is* CSRNet.
    * Upsampling the maps to the photo (``upsample``): ``"bilinear"``, or ``"guided"`` — a fast guided
      filter whose coefficients live on the grid and whose guide is the full-resolution luma, so the
      modulation follows edges (e.g. a sky line) instead of bleeding across them.
    * Modulation per pixel: ``h * (1 + s_global + s_local(p)) + t_global + t_local(p)``.

    54,959 parameters (1.51x CSRNet). ``forward(x, cond_input)`` has CSRNet's signature: the
    condition image (a downscaled copy of ``x``) yields the vector *and* the spatial maps, which are
    resized to ``x``'s size, so any photo size works.

    Example:
        >>> net = CSRNetL()
        >>> count_parameters(net)
        54959
        >>> net(torch.rand(1, 3, 64, 48)).shape
        torch.Size([1, 3, 64, 48])
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        base_nf: int = 64,
        cond_nf: int = 32,
        map_pool: int = 2,
        upsample: str = "guided",
        guided_eps: float = 1e-2,
        spatial: bool = True,
        zero_mean: bool = False,
    ) -> None:
        super().__init__()
        if upsample not in ("bilinear", "guided"):
            raise ValueError(f"upsample must be 'bilinear' or 'guided', got {upsample!r}")
        self.map_pool, self.upsample, self.guided_eps, self.spatial = map_pool, upsample, guided_eps, spatial
        self.zero_mean = zero_mean
        self.glob = CSRNet(in_nc, out_nc, base_nf, cond_nf)
        self.local_net = nn.ModuleDict(
            {
                "conv": nn.Conv2d(cond_nf + 2, cond_nf, 3, 1, 1),
                "head": nn.Conv2d(cond_nf, sum(_local_channels(base_nf, out_nc)), 1),
            }
        )
        nn.init.zeros_(self.local_net["head"].weight)
        nn.init.zeros_(self.local_net["head"].bias)
        self._split = _local_channels(base_nf, out_nc)

    # Expose CSRNet's parameter names at top level (cond_net.*, conv1.*, cond_scale1.* ...) so the
    # weights file is CSRNet's tensors plus local_net.*.
    def state_dict(self, *args, **kwargs):  # type: ignore[override]
        sd = super().state_dict(*args, **kwargs)
        return type(sd)((k.removeprefix("glob."), v) for k, v in sd.items())

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        renamed = {(k if k.startswith("local_net.") else f"glob.{k}"): v for k, v in state_dict.items()}
        return super().load_state_dict(renamed, strict=strict, assign=assign)

    def grid_size(self, feat_hw: tuple[int, int]) -> tuple[int, int]:
        """Grid (rows, cols) of the spatial maps for a stride-8 feature map of size ``feat_hw``."""
        return (-(-feat_hw[0] // self.map_pool), -(-feat_hw[1] // self.map_pool))

    def spatial_maps(self, cond_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition image (N,3,h,w) -> (vector (N,32), maps (N,262,gh,gw) on the coarse grid)."""
        feats = self.glob.cond_net.features(cond_input)
        vec = feats.mean(dim=(2, 3))
        grid = F.adaptive_avg_pool2d(feats, self.grid_size(feats.shape[-2:]))
        coords = coord_channels(*grid.shape[-2:], device=grid.device).expand(grid.shape[0], -1, -1, -1)
        h = F.relu(self.local_net["conv"](torch.cat([grid, coords], 1)))
        maps = self.local_net["head"](h)
        if self.zero_mean:  # the photo-wide part of the modulation is left to the global branch
            maps = maps - maps.mean(dim=(2, 3), keepdim=True)
        return vec, maps

    def upsampled_maps(self, maps: torch.Tensor, x: torch.Tensor, cond_input: torch.Tensor) -> torch.Tensor:
        """Coarse maps (N,C,gh,gw) -> (N,C,H,W) at ``x``'s size (bilinear, or guided by ``x``'s luma)."""
        size = x.shape[-2:]
        if self.upsample == "bilinear":
            return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
        guide_lr = F.adaptive_avg_pool2d(luminance(cond_input), maps.shape[-2:])
        a, b = guided_coefficients(maps, guide_lr, self.guided_eps)
        ab = F.interpolate(torch.cat([a, b], 1), size=size, mode="bilinear", align_corners=False)
        a, b = ab.chunk(2, dim=1)
        return a * luminance(x) + b

    def forward_points(self, colors: torch.Tensor, coords: torch.Tensor, cond_input: torch.Tensor) -> torch.Tensor:
        """The network at sampled pixels only (training on pixel subsets, like CSRNet's fast recipe).

        colors: (N,3,K) RGB of K pixels per image; coords: (N,K,2) their (x, y) pixel centres
        normalised to [-1, 1] (``(2*i+1)/size - 1``); cond_input: (N,3,h,w). Returns (N,3,K),
        equal to ``forward`` at those pixels: ``grid_sample`` (align_corners=False, border
        padding) is the bilinear resize evaluated at single points.
        """
        g = self.glob
        vec, maps = self.spatial_maps(cond_input)
        x = colors[..., None]  # (N,3,K,1): 1x1 convolutions see K "pixels"
        if not self.spatial:
            return g.base(x, vec)[..., 0]
        grid = coords[:, :, None, :]  # (N,K,1,2)

        def sample(t: torch.Tensor) -> torch.Tensor:
            return F.grid_sample(t, grid, mode="bilinear", padding_mode="border", align_corners=False)

        if self.upsample == "bilinear":
            up = sample(maps)
        else:
            guide_lr = F.adaptive_avg_pool2d(luminance(cond_input), maps.shape[-2:])
            a, b = guided_coefficients(maps, guide_lr, self.guided_eps)
            up = sample(a) * luminance(x) + sample(b)
        m = up.split(self._split, dim=1)

        def sfm(h: torch.Tensor, i: int, scale: nn.Linear, shift: nn.Linear) -> torch.Tensor:
            return h * (1 + scale(vec)[:, :, None, None] + m[2 * i]) + shift(vec)[:, :, None, None] + m[2 * i + 1]

        h = F.relu(sfm(g.conv1(x), 0, g.cond_scale1, g.cond_shift1))
        h = F.relu(sfm(g.conv2(h), 1, g.cond_scale2, g.cond_shift2))
        return sfm(g.conv3(h), 2, g.cond_scale3, g.cond_shift3)[..., 0]

    def subset_loss(self, examples: Sequence[Any], pixels: int, rng: np.random.Generator) -> torch.Tensor:
        """L1 on ``pixels`` random pixels of each example (as :meth:`CSRNet.subset_loss` reads them), with
        their positions (:meth:`forward_points`; coordinates are pixel centres normalised to [-1, 1],
        ``(2*i+1)/size - 1``)."""
        preds, ys = [], []
        for ex in examples:
            h, w = ex.size
            flat = rng.integers(0, h * w, size=pixels)
            row, col = np.divmod(flat, w)
            coords = np.stack([(2 * col + 1) / w - 1, (2 * row + 1) / h - 1], axis=-1).astype(np.float32)
            x, y = ex.take(torch.from_numpy(flat).to(ex.cond.device))
            preds.append(self.forward_points(x, torch.from_numpy(coords)[None].to(ex.cond.device), ex.cond))
            ys.append(y)
        return F.l1_loss(torch.cat(preds), torch.cat(ys))

    def forward(self, x: torch.Tensor, cond_input: torch.Tensor | None = None) -> torch.Tensor:
        """Enhance ``x`` (N,3,H,W, RGB in [0,1]); output unclamped, same shape (CSRNet's signature)."""
        c = x if cond_input is None else cond_input
        g = self.glob
        vec, maps = self.spatial_maps(c)
        if not self.spatial:  # ablation: global modulation only (== CSRNet)
            return g.base(x, vec)
        m = self.upsampled_maps(maps, x, c).split(self._split, dim=1)

        def sfm(h: torch.Tensor, i: int, scale: nn.Linear, shift: nn.Linear) -> torch.Tensor:
            s = scale(vec)[:, :, None, None] + m[2 * i]
            t = shift(vec)[:, :, None, None] + m[2 * i + 1]
            return h * (1 + s) + t

        h = F.relu(sfm(g.conv1(x), 0, g.cond_scale1, g.cond_shift1))
        h = F.relu(sfm(g.conv2(h), 1, g.cond_scale2, g.cond_shift2))
        return sfm(g.conv3(h), 2, g.cond_scale3, g.cond_shift3)


def create_model(arch: str = "csrnet", **kwargs: Any) -> nn.Module:
    """Build an untrained network by architecture name (the class the registry names: :mod:`csrnet.arch`)."""
    from ..arch import get_architecture
    from ..errors import ModelError

    try:
        return get_architecture(arch).torch_module()(**kwargs)
    except ModelError as e:
        raise ValueError(str(e)) from None
