"""A test-only backend written against the Backend contract alone: a GRU language model.

It proves the contract: the tests register it through an entry point (as a third-party package would) and run it
through the whole backend x codec matrix. It is also the worked example of docs/writing-plugins.md.
"""

import dataclasses

import torch
import torch.nn as nn

from seqstudio.backends.autoregressive import AutoregressiveBackend, likelihood_stats, shift_right
from seqstudio.heads import build_head


@dataclasses.dataclass
class GRUConfig:
    hidden_size: int = 128
    mixtures: int = 20  # components per real-valued part (the heads' option)


class GRULanguageModel(AutoregressiveBackend):
    name = "gru"
    description = "GRU language model (a test plugin)"
    Config = GRUConfig

    def __init__(self, spec, config):
        super().__init__(spec, config)
        self.gru = nn.GRU(spec.feature_width, config.hidden_size, batch_first=True)
        self.head = build_head(spec, config.hidden_size, config.mixtures)

    @classmethod
    def tiny_config(cls):
        return cls.Config(hidden_size=8, mixtures=2)

    def loss(self, batch, step=None):
        x, mask = batch["x"], batch["mask"]
        out, _ = self.gru(shift_right(self.spec.to_features(x)))  # step t sees steps < t
        params = self.head(out)
        nll = -(self.head.log_prob(params, x) * mask).sum()
        return nll / mask.sum().clamp(min=1), likelihood_stats(self.head, params, x, mask, nll)

    def start(self, n, prime, options, generator):
        h = torch.zeros(1, n, self.config.hidden_size, device=self.device)
        if prime is None:
            return h, torch.zeros(n, self.spec.feature_width, device=self.device)  # the start input
        _, h = self.gru(shift_right(self.spec.to_features(prime)), h)  # all prime steps but the last
        return h, self.spec.to_features(prime[:, -1])

    def step(self, h, pending, options, generator):
        out, h = self.gru(pending.unsqueeze(1), h)
        return self.head(out[:, 0]), h
