"""MEG's objectives (Kumar et al. 2019) and a :class:`~smallgan.training.trainer.Trainer` for them.

The trainer's "discriminator" is MEG's energy net E and its generator is G;
a third network, the statistics net T(x, z), is trained together with G.

- E minimises ``mean E(real) - mean E(G(z)) + 100 * penalty`` where
  ``penalty`` (:func:`score_penalty`) is the squared input gradient of E at
  the real batch, normalised as the reference code does: the 2-norm over the
  channel axis, squared, then the mean over batch, height and width, i.e.
  ``mean_i ||grad_x E(x_i)||^2 / (H * W)`` for one-channel images (784 on
  MNIST: an effective weight near 0.128 on ``||grad E||^2``).
- G (and T) minimise ``mean E(G(z)) + BCE``, where BCE is the binary cross
  entropy of T's logits on the pairs ``(G(z), z)`` (label 1) and
  ``(G(z), z[perm])`` (label 0), averaged over the ``2b`` pairs, as in the
  reference code.  The JSD (Deep InfoMax) MI estimate is
  ``jsd_mi = E_joint[-softplus(-T)] - E_marginal[softplus(T)] = -2 * BCE``
  (:func:`jsd_mi`), so G's loss is ``mean E(G(z)) - jsd_mi / 2``: G raises the
  entropy of its samples through the MI between ``x = G(z)`` and ``z``.
  The permutation is drawn from torch's global RNG (checkpointed, so a
  resumed run draws the same ones).

T's optimizer uses G's settings (Adam, ``lr_g``, ``betas_g``); T's weights
and optimizer state are checkpointed with the trainer's (``statnet``,
``opt_t``).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from smallgan.training.trainer import Trainer

__all__ = ["score_penalty", "jsd_mi", "mi_bce", "MEGTrainer", "PENALTY_WEIGHT"]

#: The reference code's weight on :func:`score_penalty`.
PENALTY_WEIGHT = 100.0


def score_penalty(energy: nn.Module, x: torch.Tensor, *, create_graph: bool = True) -> torch.Tensor:
    """Squared input gradient of ``energy`` at ``x``, the reference code's normalisation.

    ``(grad.norm(2, dim=1) ** 2).mean()`` with ``grad = d sum(E(x)) / dx``:
    the norm over the channel axis, the mean over batch and pixels.

    Parameters
    ----------
    energy : module mapping ``(b, c, H, W)`` to ``(b,)`` (or ``(b, 1)``)
    x : tensor of shape (b, c, H, W)
        Not modified; a detached copy requires grad.
    create_graph : bool
        Keep the graph so the penalty can be backpropagated into ``energy``.
    """
    x = x.detach().requires_grad_(True)
    e = energy(x)
    (grad,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
    return (grad.norm(2, dim=1) ** 2).mean()


def jsd_mi(t_joint: torch.Tensor, t_marginal: torch.Tensor) -> torch.Tensor:
    """The JSD (Deep InfoMax) MI estimate from T's logits on joint and shuffled pairs.

    ``mean(-softplus(-t_joint)) - mean(softplus(t_marginal))``; larger when
    T tells dependent pairs from independent ones.  Equals ``-2 * mi_bce`` for
    batches of equal size.
    """
    return (-F.softplus(-t_joint)).mean() - F.softplus(t_marginal).mean()


def mi_bce(t_joint: torch.Tensor, t_marginal: torch.Tensor) -> torch.Tensor:
    """The reference code's loss: BCE of joint logits -> 1 and marginal logits -> 0 over all pairs."""
    logits = torch.cat([t_joint.reshape(-1), t_marginal.reshape(-1)])
    labels = torch.cat([torch.ones_like(t_joint.reshape(-1)), torch.zeros_like(t_marginal.reshape(-1))])
    return F.binary_cross_entropy_with_logits(logits, labels)


class MEGTrainer(Trainer):
    """The shared :class:`Trainer` with MEG's E and G updates and the statistics net.

    Parameters
    ----------
    *args, **kwargs
        As :class:`Trainer` (``discriminator`` is the energy net E).
    statnet : torch.nn.Module
        T(x, z) -> ``(b,)`` logits.
    penalty_weight : float
        Weight of :func:`score_penalty` (reference: 100).

    Attributes
    ----------
    history : list of dict
        Every evaluation's metrics (with ``step``), in order; checkpointed.

    Thread safety
    -------------
    As :class:`Trainer`.
    """

    def __init__(self, *args: Any, statnet: nn.Module, penalty_weight: float = PENALTY_WEIGHT,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        self.statnet = statnet.to(self.device)
        self.opt_t = torch.optim.Adam(self.statnet.parameters(), lr=c.lr_g, betas=c.betas_g)
        self.penalty_weight = float(penalty_weight)
        self.history: list = []

    def discriminator_step(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fake = self.generator(z)
        self.opt_d.zero_grad(set_to_none=True)
        e = self.discriminator
        loss = e(real).mean() - e(fake).mean() + self.penalty_weight * score_penalty(e, real)
        loss.backward()
        self.opt_d.step()
        return loss.detach()

    def generator_step(self, z: torch.Tensor) -> torch.Tensor:
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_t.zero_grad(set_to_none=True)
        for p in self.discriminator.parameters():  # E is not updated here
            p.requires_grad_(False)
        try:
            fake = self.generator(z)
            z_bar = z[torch.randperm(z.shape[0], device=z.device)]
            t = self.statnet(torch.cat([fake, fake]), torch.cat([z, z_bar]))
            b = z.shape[0]
            loss = self.discriminator(fake).mean() + mi_bce(t[:b], t[b:])
            loss.backward()
            self.opt_g.step()
            self.opt_t.step()
        finally:
            for p in self.discriminator.parameters():
                p.requires_grad_(True)
        return loss.detach()

    def _evaluate(self, logger: Any) -> None:
        super()._evaluate(logger)
        if self.eval_fn is not None:
            self.history.append({"step": self.step, **self.metrics})

    def _state(self) -> Dict[str, Any]:
        state = super()._state()
        state["statnet"] = self.statnet.state_dict()
        state["opt_t"] = self.opt_t.state_dict()
        state["meg_history"] = [dict(h) for h in self.history]
        return state

    def _load(self, state: Mapping[str, Any]) -> None:
        super()._load(state)
        self.statnet.load_state_dict(state["statnet"])
        self.opt_t.load_state_dict(state["opt_t"])
        self.history = [dict(h) for h in state.get("meg_history", [])]
