"""Exponential moving average of a model's weights (generator EMA).

Keeps a frozen copy of the model whose parameters follow
``shadow = decay * shadow + (1 - decay) * param`` after every update; buffers
(e.g. BatchNorm statistics) are copied as they are.  Before ``start`` updates
the shadow simply tracks the model, as in BigGAN, so an early-training average
does not drag in the random initialisation.

Example
-------
>>> import torch
>>> net = torch.nn.Linear(2, 2)
>>> ema = EMA(net, decay=0.999)
>>> ema.update(net)
>>> ema.module(torch.zeros(1, 2)).shape
torch.Size([1, 2])
"""
from __future__ import annotations

import copy
from typing import Any, Dict

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """An exponential moving average of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The model to follow; copied once (deep copy), never modified.
    decay : float
        In ``[0, 1)``.
    start : int
        Number of updates before averaging starts (>= 0).

    Thread safety
    -------------
    Not thread safe; call from the training loop only.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, start: int = 0) -> None:
        if not (isinstance(decay, (int, float)) and 0.0 <= decay < 1.0):
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be a non-negative integer, got {start!r}")
        self.decay = float(decay)
        self.start = start
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        self.num_updates += 1
        decay = self.decay if self.num_updates > self.start else 0.0
        for s, p in zip(self.module.parameters(), model.parameters()):
            s.lerp_(p.detach(), 1.0 - decay)
        for s, b in zip(self.module.buffers(), model.buffers()):
            s.copy_(b)

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to resume the average exactly."""
        return {"module": self.module.state_dict(), "num_updates": self.num_updates,
                "decay": self.decay, "start": self.start}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
