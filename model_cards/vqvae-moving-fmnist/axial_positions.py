# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Axial position embeddings for the transformer prior: one learned table per axis of the code grid.

GPT-2's learned positions give each of a grid's N codes its own vector, so what the prior learns about a place in
the grid does not carry over to the same place in the next time slice, or row: for a video grid (8, 16, 16), the
code at (t, h, w) and the one at (t + 1, h, w) are as unrelated as any two. Axial embeddings (as in VideoGPT's
broadcast position embeddings, Yan et al. 2021) add one vector per axis index, summed over the axes, so every
code of one column (or row, or time slice) shares that part of its position, and attention can find "the same
place one slice earlier" by content the whole grid trains together. They are added to GPT-2's own positions and
start at zero, so a trained prior given them computes exactly what it did until training moves them.
"""

from math import prod

import torch
from torch import nn


class AxialTables(nn.ParameterList):
    """The per-axis tables `(axis size, hidden_size)`, zero-initialised (`VQPriorPreTrainedModel._init_weights`).
    Their own class because transformers initialises a module's direct parameters: the list holds them, not the
    embedding module."""


class AxialPositionEmbedding(nn.Module):
    """
    Per-axis position vectors of a code grid, summed into one vector per raster position.

    Args:
        code_shape (`tuple[int, ...]`): the grid, e.g. `(8, 16, 16)` for video.
        hidden_size (`int`): the embedding width.
    """

    def __init__(self, code_shape: tuple[int, ...], hidden_size: int):
        super().__init__()
        self.code_shape = tuple(code_shape)
        self.tables = AxialTables([nn.Parameter(torch.zeros(size, hidden_size)) for size in self.code_shape])

    def forward(self) -> torch.FloatTensor:
        """The `(num_codes, hidden_size)` embedding of every position in raster order: the sum over the axes of
        each axis' vector at the position's index along it."""
        hidden_size = self.tables[0].shape[1]
        grid = torch.zeros(
            *self.code_shape, hidden_size, dtype=self.tables[0].dtype, device=self.tables[0].device
        )
        for axis, table in enumerate(self.tables):
            shape = [1] * len(self.code_shape) + [hidden_size]
            shape[axis] = self.code_shape[axis]
            grid = grid + table.view(shape)
        return grid.view(prod(self.code_shape), hidden_size)


__all__ = ["AxialPositionEmbedding", "AxialTables"]
