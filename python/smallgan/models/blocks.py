"""Building blocks shared by the image GANs: spectrally normalised layers,
residual up/down blocks and self-attention.

Spectral norm is applied with :func:`torch.nn.utils.parametrizations.spectral_norm`
(the parametrization API), not the older hook-based
``torch.nn.utils.spectral_norm``: the hook version updates its ``u`` vector
buffers in place from a forward pre-hook, which ``torch.compile`` cannot trace.

References
----------
Miyato et al., "Spectral Normalization for Generative Adversarial Networks",
ICLR 2018 (ResNet blocks, Appendix B).
Zhang et al., "Self-Attention Generative Adversarial Networks", ICML 2019.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "sn_conv2d",
    "sn_linear",
    "conv2d",
    "linear",
    "ResBlockUp",
    "ResBlockDown",
    "SelfAttention",
    "count_parameters",
    "activation_bytes",
    "parameter_bytes",
]


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _init(layer: nn.Module) -> nn.Module:
    """Xavier-uniform weight, zero bias: the initialisation of the reference
    SN-GAN code. Done before spectral norm is attached, so that the
    parametrization's power-iteration vectors start from the final weight."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def sn_conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int = 0, bias: bool = True) -> nn.Module:
    """A ``Conv2d`` whose weight is divided by its largest singular value.

    The weight is viewed as an ``(out_channels, in_channels * k * k)`` matrix;
    one power-iteration step per training-mode forward keeps the estimate of
    its spectral norm current (Miyato et al. 2018, Algorithm 1).
    """
    return conv2d(in_channels, out_channels, kernel_size, stride, padding, bias, sn=True)


def sn_linear(in_features: int, out_features: int, bias: bool = True) -> nn.Module:
    """A ``Linear`` layer with spectral normalisation (see :func:`sn_conv2d`)."""
    return linear(in_features, out_features, bias, sn=True)


def conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
           padding: int = 0, bias: bool = True, sn: bool = False) -> nn.Module:
    """Xavier-initialised ``Conv2d``, spectrally normalised when ``sn`` is true."""
    layer = _init(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias))
    return spectral_norm(layer) if sn else layer


def linear(in_features: int, out_features: int, bias: bool = True, sn: bool = False) -> nn.Module:
    """Xavier-initialised ``Linear``, spectrally normalised when ``sn`` is true."""
    layer = _init(nn.Linear(in_features, out_features, bias=bias))
    return spectral_norm(layer) if sn else layer


class ResBlockUp(nn.Module):
    """Generator residual block: BN-ReLU-up-conv3-BN-ReLU-conv3 plus an
    upsampled 1x1 shortcut (Miyato et al. 2018, Fig. 8a).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out; the hidden width equals ``out_channels``.
    upsample : bool
        Double the spatial size (nearest neighbour) when true.
    sn : bool
        Spectral norm on the convolutions (SAGAN uses it in G, SN-GAN does not).

    Shapes: ``(b, in, h, w) -> (b, out, 2h, 2w)`` (or ``(h, w)`` without upsampling).
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: bool = True,
                 sn: bool = False) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("out_channels", out_channels)
        self.upsample = upsample
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv2d(in_channels, out_channels, 3, padding=1, sn=sn)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv2d(out_channels, out_channels, 3, padding=1, sn=sn)
        # A learnable shortcut only where the identity would not fit.
        self.shortcut = (conv2d(in_channels, out_channels, 1, sn=sn)
                         if in_channels != out_channels or upsample else None)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self._up(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        s = self._up(x)
        if self.shortcut is not None:
            s = self.shortcut(s)
        return h + s


class ResBlockDown(nn.Module):
    """Discriminator residual block (Miyato et al. 2018, Fig. 8b).

    With ``first=True`` it is the "optimized" input block: no ReLU before the
    first convolution (the input is an image, not an activation) and the
    shortcut pools before its 1x1 convolution, which is cheaper and equal up
    to the order of two linear maps.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out; the hidden width equals ``out_channels``.
    downsample : bool
        Halve the spatial size (2x2 average pooling) when true.
    first : bool
        The optimized first block described above.
    sn : bool
        Spectral norm on the convolutions (true in every discriminator here).

    Shapes: ``(b, in, h, w) -> (b, out, h/2, w/2)`` (or ``(h, w)``).
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = True,
                 first: bool = False, sn: bool = True) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("out_channels", out_channels)
        self.downsample = downsample
        self.first = first
        self.conv1 = conv2d(in_channels, out_channels, 3, padding=1, sn=sn)
        self.conv2 = conv2d(out_channels, out_channels, 3, padding=1, sn=sn)
        self.shortcut = (conv2d(in_channels, out_channels, 1, sn=sn)
                         if in_channels != out_channels or downsample or first else None)

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        h = self._down(h)
        if self.shortcut is None:
            s = x
        elif self.first:
            s = self.shortcut(self._down(x))
        else:
            s = self._down(self.shortcut(x))
        return h + s


class SelfAttention(nn.Module):
    """Self-attention over spatial positions (Zhang et al. 2019, Sec. 4).

    Query and key use ``channels // 8`` channels, the value ``channels // 2``;
    keys and values are 2x2 max-pooled, which cuts the attention matrix by 4
    at a negligible quality cost (as in the authors' released model). The
    output is ``x + gamma * o`` with ``gamma`` starting at 0, so the block
    begins as the identity and the network learns how much to attend.

    Shapes: ``(b, c, h, w) -> (b, c, h, w)``; ``h`` and ``w`` must be even.
    """

    def __init__(self, channels: int, sn: bool = True) -> None:
        super().__init__()
        _check_positive("channels", channels)
        if channels < 8:
            raise ValueError(f"channels must be at least 8 for self-attention, got {channels}")
        self.channels = channels
        self.query = conv2d(channels, channels // 8, 1, bias=False, sn=sn)
        self.key = conv2d(channels, channels // 8, 1, bias=False, sn=sn)
        self.value = conv2d(channels, channels // 2, 1, bias=False, sn=sn)
        self.out = conv2d(channels // 2, channels, 1, bias=False, sn=sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)                        # (b, c/8, hw)
        k = F.max_pool2d(self.key(x), 2).flatten(2)         # (b, c/8, hw/4)
        v = F.max_pool2d(self.value(x), 2).flatten(2)       # (b, c/2, hw/4)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (b, hw, hw/4)
        o = (v @ attn.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.gamma * self.out(o)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars (spectral norm's ``u``/``v`` are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def parameter_bytes(module: nn.Module) -> int:
    """Bytes held by the parameters (at their dtype); buffers such as BatchNorm
    statistics and spectral norm vectors are not included."""
    return sum(p.numel() * p.element_size() for p in module.parameters())


def activation_bytes(model: nn.Module, input_shape: Tuple[int, ...], batch: int) -> int:
    """Bytes of every leaf module's output in one forward pass (no grad).

    An approximation of what autograd keeps for the backward pass; it counts
    the input of the next layer once, ignores allocator rounding.
    """
    total = 0

    def hook(_module, _inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if not any(True for _ in m.children())]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(batch, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return total
