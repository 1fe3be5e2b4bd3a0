"""GAN losses, each a pair (discriminator loss, generator loss) on logits.

- ``ns``: the paper's eqs. 1-2 (Goodfellow et al. 2014). D maximises
  ``log D(x) + log(1 - D(G(z)))``; G maximises ``log D(G(z))`` (the
  non-saturating form).  Written with ``softplus`` on logits, which is the
  numerically stable form of the same binary cross-entropy.
- ``hinge``: Lim & Ye 2017 / Miyato et al. 2018 (SN-GAN).
- ``lsgan``: Mao et al. 2017 with targets 0 (fake) and 1 (real).

Example
-------
>>> import torch
>>> real, fake = torch.zeros(4), torch.zeros(4)
>>> round(float(d_loss("ns", real, fake)), 4)   # 2 log 2
1.3863
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from smallgan.checks import check_choice

__all__ = ["LOSSES", "d_loss", "g_loss", "check_loss"]

#: Supported loss names.
LOSSES = ("ns", "hinge", "lsgan")


def check_loss(kind: str) -> None:
    """Raise ``ValueError`` unless ``kind`` is one of :data:`LOSSES`."""
    check_choice("loss", kind, LOSSES)


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss (to minimise), averaged over the batch.

    Parameters
    ----------
    kind : str
        One of :data:`LOSSES`.
    real_logits, fake_logits : torch.Tensor
        Raw discriminator outputs, any shape.
    """
    check_loss(kind)
    if kind == "ns":
        # -log sigmoid(r) - log(1 - sigmoid(f)) = softplus(-r) + softplus(f)
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    return 0.5 * ((real_logits - 1.0) ** 2).mean() + 0.5 * (fake_logits ** 2).mean()


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss (to minimise), averaged over the batch.

    Parameters
    ----------
    kind : str
        One of :data:`LOSSES`.
    fake_logits : torch.Tensor
        Discriminator outputs on generated samples.
    """
    check_loss(kind)
    if kind == "ns":
        return F.softplus(-fake_logits).mean()  # -log sigmoid(f)
    if kind == "hinge":
        return -fake_logits.mean()
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()
