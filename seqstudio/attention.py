"""Graves' soft attention window over a sequence condition (Graves 2013, "Generating sequences with recurrent
neural networks", section 5.1, eq. 46-52): how a model writes *this* text rather than text in general.

At every step the first recurrent layer's output ``h`` sets K Gaussian windows over the character positions
u = 1..U: importance ``alpha``, width ``beta`` and position ``kappa``, which only moves forward
(``kappa_t = kappa_{t-1} + exp(kappa_hat)``). The window vector ``w_t = sum_u phi(t, u) c_u`` mixes the
characters' one-hot (or embedded) vectors by ``phi(t, u) = sum_k alpha_k exp(-beta_k (kappa_k - u)^2)`` and is
fed to the next step's first layer, to the other layers and to the heads.

Nothing here knows about handwriting: the condition is any sequence of symbols from a vocabulary, so a backend
that takes a sequence condition uses this module whatever the domain. Because ``w_{t-1}`` is an input of the
first layer at step t, that layer must run step by step; everything after it (the other layers, the heads) can
take the stacked outputs in one call.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class AttentionWindow(nn.Module):
    """K Gaussian windows over a symbol sequence; ``step`` advances them one time step."""

    def __init__(self, hidden_size: int, symbol_size: int, mixtures: int = 10, kappa_scale: float = 1.0):
        super().__init__()
        self.mixtures = mixtures
        self.symbol_size = symbol_size
        self.kappa_scale = kappa_scale  # exp(kappa_hat) is multiplied by it: symbols advanced per unit step
        self.params = nn.Linear(hidden_size, 3 * mixtures)

    def initial(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(kappa, w)`` before the first step: windows at position 0 and an empty window vector."""
        return (torch.zeros(batch, self.mixtures, device=device),
                torch.zeros(batch, self.symbol_size, device=device))

    def step(self, h: torch.Tensor, kappa: torch.Tensor, symbols: torch.Tensor,
             mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step. ``h`` [B, H], ``kappa`` [B, K] (previous positions), ``symbols`` [B, U, S] (one-hot or
        embedded), ``mask`` [B, U] (1 on real symbols). Returns ``(w [B, S], kappa [B, K], phi [B, U + 1])``;
        ``phi``'s last column is the weight one past the last symbol (``finished`` reads it)."""
        alpha_hat, beta_hat, kappa_hat = self.params(h).chunk(3, dim=-1)
        alpha, beta = alpha_hat.exp(), beta_hat.exp()
        kappa = kappa + self.kappa_scale * kappa_hat.exp()
        lengths = mask.sum(1)  # [B]
        positions = torch.arange(symbols.shape[1] + 1, device=h.device, dtype=h.dtype)  # u - 1 = 0..U
        # the position one past each sequence's own last symbol goes in the last column
        positions = positions.unsqueeze(0).expand(h.shape[0], -1).clone()
        positions[:, -1] = lengths.to(h.dtype)
        distance = kappa.unsqueeze(-1) - positions.unsqueeze(1)  # [B, K, U + 1]
        phi = (alpha.unsqueeze(-1) * torch.exp(-beta.unsqueeze(-1) * distance.square())).sum(1)  # [B, U + 1]
        inside = phi[:, :-1] * mask.to(phi.dtype)
        w = torch.bmm(inside.unsqueeze(1), symbols.to(phi.dtype)).squeeze(1)
        end = phi[:, -1:]
        return w, kappa, torch.cat([inside, end], dim=1)

    @staticmethod
    def finished(phi: torch.Tensor) -> torch.Tensor:
        """Graves' stopping rule: the window has passed the last symbol when the weight one past it exceeds the
        weight of every symbol (``phi(t, U + 1) > phi(t, u)`` for all u). Returns a bool [B]."""
        return phi[:, -1] > phi[:, :-1].amax(dim=1)
