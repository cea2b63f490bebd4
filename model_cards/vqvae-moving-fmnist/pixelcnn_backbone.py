# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The paper's image prior: a gated PixelCNN over 2-D code grids, with cached fast sampling.

Architecture from van den Oord et al. (2016), "Conditional Image Generation with PixelCNN Decoders": a
vertical and a horizontal stack of gated layers tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h), the vertical
stack feeding the horizontal one, so there is no blind spot. Sampling caches, per layer, the last rows of the
vertical stack and the last positions of the horizontal stack (Ramachandran et al., 2017, "Fast Generation for
Convolutional Autoregressive Models"), so each code costs the same whatever the size of the grid.

Causality comes from two shifts rather than masked kernels. The vertical stack's input is the embedded grid
shifted down one row, the horizontal stack's input the embedded grid shifted right one column; every
convolution may then include its own position:

- vertical kernels span rows r-p..r (p = kernel_size // 2) and columns c-p..c+p, so the vertical stack at
  row r only ever sees codes in rows strictly above r, including those up and to the right;
- horizontal kernels span columns c-p..c of row r, so the horizontal stack at (r, c) sees the codes strictly
  left of c, plus the vertical stack at (r, c) through a 1x1 convolution.

After L layers the logits at (r, c) see the codes (r, c-1-L*p .. c-1) and the rows r-1-L*p .. r-1 over the
columns c-L*p .. c+L*p.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_prior import VQPriorConfig

# Gate biases (vertical, horizontal) of one layer, each (batch, 2 * hidden, 1, 1); None if unconditional.
ClassBiases = tuple[torch.Tensor | None, torch.Tensor | None]


def shift_down(hidden_states: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W) whose row r holds row r-1, and row 0 zeros."""
    return F.pad(hidden_states, (0, 0, 1, 0))[:, :, :-1]


def shift_right(hidden_states: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W) whose column c holds column c-1, and column 0 zeros."""
    return F.pad(hidden_states, (1, 0))[..., :-1]


def gated_activation(pre_activation: torch.Tensor) -> torch.Tensor:
    """tanh(a) * sigmoid(b) over the two halves of the channels: (B, 2C, ...) -> (B, C, ...)."""
    tanh_half, sigmoid_half = pre_activation.chunk(2, dim=1)
    return torch.tanh(tanh_half) * torch.sigmoid(sigmoid_half)


def push(window: torch.Tensor, newest: torch.Tensor, dim: int) -> torch.Tensor:
    """Drops the oldest slice of a rolling `window` along `dim` and appends `newest` (size 1 along `dim`)."""
    return torch.cat([window.narrow(dim, 1, window.size(dim) - 1), newest], dim=dim)


@dataclass
class GatedLayerCache:
    """What one gated layer keeps between sampling steps (C = hidden_size, p = kernel_size // 2, W = width).

    Args:
        vertical_rows (`torch.FloatTensor` of shape `(batch, C, p + 1, W)`):
            The last p + 1 rows of the layer's vertical input, the current row last; zeros above the grid.
        horizontal_window (`torch.FloatTensor` of shape `(batch, C, 1, p + 1)`):
            The last p + 1 positions of the layer's horizontal input in the current row; zeros left of the
            grid.
        vertical_to_horizontal (`torch.FloatTensor` of shape `(batch, 2 * C, 1, W)`):
            The vertical stack's contribution to the horizontal gates over the whole current row.
    """

    vertical_rows: torch.Tensor
    horizontal_window: torch.Tensor
    vertical_to_horizontal: torch.Tensor


class GatedPixelCNNLayer(GradientCheckpointingLayer):
    """One gated layer of both stacks (the paper's Figure 2), without masks thanks to the shifted inputs.

    The vertical and horizontal halves are separate methods so that the full-grid forward and the cached
    sampler run the same convolutions on windows of different sizes.
    """

    def __init__(self, config: VQPriorConfig):
        super().__init__()
        hidden, self.context = config.hidden_size, config.kernel_size // 2
        # Rows r-p..r of the (already shifted) vertical input, columns c-p..c+p.
        self.vertical_conv = nn.Conv2d(
            hidden, 2 * hidden, (self.context + 1, config.kernel_size), padding=(0, self.context)
        )
        # Columns c-p..c of the (already shifted) horizontal input.
        self.horizontal_conv = nn.Conv2d(hidden, 2 * hidden, (1, self.context + 1))
        self.vertical_to_horizontal = nn.Conv2d(2 * hidden, 2 * hidden, 1)
        self.horizontal_output = nn.Conv2d(hidden, hidden, 1)
        # The paper's V^T h for a one-hot class h: a learned bias on the gates of both stacks.
        num_labels = config.num_label_embeddings
        self.class_bias = nn.Embedding(num_labels, 4 * hidden) if num_labels else None
        self.dropout = nn.Dropout(config.dropout)

    def class_biases(self, class_labels: torch.LongTensor | None) -> ClassBiases:
        """Per-sample gate biases `(vertical, horizontal)`, each `(batch, 2 * hidden, 1, 1)`; `(None, None)`
        when the prior is unconditional."""
        if self.class_bias is None:
            return None, None
        vertical, horizontal = self.class_bias(class_labels)[:, :, None, None].chunk(2, dim=1)
        return vertical, horizontal

    @torch.no_grad()
    def add_null_label(self) -> None:
        """Appends the gate biases of a "no label" (id `num_classes`), the mean of the class biases."""
        old = self.class_bias
        new = nn.Embedding(
            old.num_embeddings + 1, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype
        )
        new.weight.copy_(torch.cat([old.weight, old.weight.mean(dim=0, keepdim=True)]))
        self.class_bias = new

    def vertical(
        self, rows: torch.Tensor, class_bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertical half of the layer.

        Args:
            rows (`torch.FloatTensor` of shape `(batch, hidden, p + n, W)`):
                n rows of the vertical input preceded by the p rows above them (zeros above the grid).
            class_bias (`torch.FloatTensor` of shape `(batch, 2 * hidden, 1, 1)`, *optional*):
                Gate bias of the sample's class.

        Returns:
            `(vertical_output, vertical_to_horizontal)` of shapes `(batch, hidden, n, W)` and
            `(batch, 2 * hidden, n, W)`.
        """
        pre_activation = self.vertical_conv(rows)
        # From the convolution itself, as in the paper; the horizontal gates get their own class bias.
        to_horizontal = self.vertical_to_horizontal(pre_activation)
        if class_bias is not None:
            pre_activation = pre_activation + class_bias
        return self.dropout(gated_activation(pre_activation)), to_horizontal

    def horizontal(
        self,
        window: torch.Tensor,
        vertical_to_horizontal: torch.Tensor,
        class_bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """Horizontal half of the layer, with its residual connection.

        Args:
            window (`torch.FloatTensor` of shape `(batch, hidden, n, p + m)`):
                m columns of the horizontal input preceded by the p columns left of them (zeros left of the
                grid).
            vertical_to_horizontal (`torch.FloatTensor` of shape `(batch, 2 * hidden, n, m)`):
                The vertical half's contribution at the same m columns.
            class_bias (`torch.FloatTensor` of shape `(batch, 2 * hidden, 1, 1)`, *optional*):
                Gate bias of the sample's class.

        Returns:
            `torch.FloatTensor` of shape `(batch, hidden, n, m)`.
        """
        pre_activation = self.horizontal_conv(window) + vertical_to_horizontal
        if class_bias is not None:
            pre_activation = pre_activation + class_bias
        residual = window[..., self.context :]
        return residual + self.horizontal_output(self.dropout(gated_activation(pre_activation)))

    def forward(
        self,
        vertical: torch.Tensor,
        horizontal: torch.Tensor,
        class_biases: ClassBiases,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both stacks on the full grid: `(batch, hidden, H, W)` each, in and out."""
        vertical_bias, horizontal_bias = class_biases
        # Zero rows above and zero columns left of the grid stand for "no code yet".
        vertical, to_horizontal = self.vertical(F.pad(vertical, (0, 0, self.context, 0)), vertical_bias)
        horizontal = self.horizontal(F.pad(horizontal, (self.context, 0)), to_horizontal, horizontal_bias)
        return vertical, horizontal


class GatedPixelCNNPrior(nn.Module):
    """Gated PixelCNN over (H, W) code grids: logits at (r, c) for the code there given the codes before it
    in raster order and the class.

    Embedding (K -> hidden) -> `num_layers` gated layers -> ReLU -> 1x1 conv -> ReLU -> 1x1 conv to K logits.

    Args:
        config ([`VQPriorConfig`]):
            Uses `codebook_size`, `code_shape` ([H, W]), `num_classes`, `hidden_size`, `num_layers`,
            `kernel_size` and `dropout`.
    """

    def __init__(self, config: VQPriorConfig):
        super().__init__()
        self.code_shape = tuple(config.code_shape)
        self.hidden_size = config.hidden_size
        self.context = config.kernel_size // 2
        self.is_conditional = config.num_classes > 0
        self.embedding = nn.Embedding(config.codebook_size, config.hidden_size)
        self.layers = nn.ModuleList(GatedPixelCNNLayer(config) for _ in range(config.num_layers))
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(config.hidden_size, config.hidden_size, 1),
            nn.ReLU(),
            nn.Conv2d(config.hidden_size, config.codebook_size, 1),
        )

    def forward(
        self,
        codes: torch.LongTensor,
        class_labels: torch.LongTensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.FloatTensor, tuple[torch.FloatTensor, ...] | None]:
        """
        Args:
            codes (`torch.LongTensor` of shape `(batch, H, W)`):
                Code grids, in [0, codebook_size).
            class_labels (`torch.LongTensor` of shape `(batch,)`, *optional*):
                Classes of the samples; required if and only if the prior is class-conditional.
            output_hidden_states (`bool`, defaults to `False`):
                Also return the horizontal stack's input and its output after each layer.

        Returns:
            `(logits, hidden_states)`: the logits `(batch, H, W, codebook_size)` at (r, c) depend only on the codes
            before (r, c) in raster order and on the class; `hidden_states` holds `num_layers + 1` tensors
            `(batch, hidden_size, H, W)` when asked for, else `None`.
        """
        class_biases = self._class_biases(class_labels)
        embedded = self._embed(codes)
        vertical, horizontal = shift_down(embedded), shift_right(embedded)
        hidden_states = [horizontal]
        for layer, biases in zip(self.layers, class_biases, strict=True):
            vertical, horizontal = layer(vertical, horizontal, biases)
            hidden_states.append(horizontal)
        logits = self.head(horizontal).permute(0, 2, 3, 1).contiguous()
        return logits, tuple(hidden_states) if output_hidden_states else None

    @torch.no_grad()
    def sample(
        self,
        batch_size: int,
        class_labels: torch.LongTensor | None,
        sample_next: Callable[[torch.FloatTensor], torch.LongTensor],
        use_cache: bool = True,
        progress: Callable[[], None] | None = None,
        prompt: torch.LongTensor | None = None,
    ) -> torch.LongTensor:
        """Generates code grids one code at a time in raster order.

        Args:
            batch_size (`int`):
                Number of grids B.
            class_labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Classes to sample; required if and only if the prior is class-conditional.
            sample_next (`Callable[[torch.FloatTensor], torch.LongTensor]`):
                Maps the fp32 logits `(batch_size, codebook_size)` of the current position to its codes
                `(batch_size,)` (temperature, top-k, top-p and the generator live there).
            use_cache (`bool`, defaults to `True`):
                Reuse per-layer rolling caches so each code costs the same whatever the grid size; `False`
                reruns the full network on the whole grid for every code (the reference implementation).
            progress (`Callable[[], None]`, *optional*):
                Called once after each generated code.
            prompt (`torch.LongTensor` of shape `(batch_size, P)`, *optional*):
                The first P codes of every grid in raster order, kept as they are (the cached sampler still
                runs its layers over them, to fill its caches).

        Returns:
            `torch.LongTensor` of shape `(batch_size, H, W)`.
        """
        height, width = self.code_shape
        device = self.embedding.weight.device
        codes = torch.zeros(batch_size, height, width, dtype=torch.long, device=device)
        first = 0 if prompt is None else prompt.shape[1]
        if prompt is not None:
            codes.view(batch_size, -1)[:, :first] = prompt
        class_biases = self._class_biases(class_labels)
        cache = self._empty_cache(batch_size) if use_cache else None
        for row in range(height):
            for column in range(width):
                if row * width + column < first:
                    if cache is not None:  # the prompt's position still passes through the cached layers
                        self._cached_logits(codes, row, column, cache, class_biases)
                    continue
                if cache is None:
                    # Later positions still hold zeros, which causality makes irrelevant.
                    logits = self(codes, class_labels)[0][:, row, column]
                else:
                    logits = self._cached_logits(codes, row, column, cache, class_biases)
                codes[:, row, column] = sample_next(logits.float())
                if progress is not None:
                    progress()
        return codes

    def add_null_label(self) -> None:
        """Appends the class biases of a "no label" (id `num_classes`) to every layer of a trained conditional
        prior, each the mean of that layer's class biases."""
        for layer in self.layers:
            layer.add_null_label()

    def _embed(self, codes: torch.LongTensor) -> torch.Tensor:
        """(B, h, w) codes -> (B, hidden, h, w) embeddings."""
        return self.embedding(codes).permute(0, 3, 1, 2)

    def _class_biases(self, class_labels: torch.LongTensor | None) -> list[ClassBiases]:
        """Each layer's class biases (the labels arrive checked by `VQPriorModel`)."""
        return [layer.class_biases(class_labels) for layer in self.layers]

    def _empty_cache(self, batch_size: int) -> list[GatedLayerCache]:
        """Zero caches: the zero padding above and left of the grid that the full forward sees."""
        weight = self.embedding.weight
        width = self.code_shape[1]
        return [
            GatedLayerCache(
                vertical_rows=weight.new_zeros(batch_size, self.hidden_size, self.context + 1, width),
                horizontal_window=weight.new_zeros(batch_size, self.hidden_size, 1, self.context + 1),
                vertical_to_horizontal=weight.new_zeros(batch_size, 2 * self.hidden_size, 1, width),
            )
            for _ in self.layers
        ]

    def _start_row(
        self,
        codes: torch.LongTensor,
        row: int,
        cache: list[GatedLayerCache],
        class_biases: list[ClassBiases],
    ) -> None:
        """Runs the vertical stack over the whole of `row`, which needs only the rows above it (all sampled by
        now), and clears the horizontal windows."""
        batch_size, width = codes.size(0), self.code_shape[1]
        # The shifted-down input: row r of the vertical stack holds the embedded codes of row r-1.
        if row > 0:
            vertical = self._embed(codes[:, row - 1 : row])
        else:
            vertical = self.embedding.weight.new_zeros(batch_size, self.hidden_size, 1, width)
        for layer, layer_cache, (vertical_bias, _) in zip(self.layers, cache, class_biases, strict=True):
            layer_cache.vertical_rows = push(layer_cache.vertical_rows, vertical, dim=2)
            vertical, to_horizontal = layer.vertical(layer_cache.vertical_rows, vertical_bias)
            layer_cache.vertical_to_horizontal = to_horizontal
            layer_cache.horizontal_window = torch.zeros_like(layer_cache.horizontal_window)

    def _cached_logits(
        self,
        codes: torch.LongTensor,
        row: int,
        column: int,
        cache: list[GatedLayerCache],
        class_biases: list[ClassBiases],
    ) -> torch.FloatTensor:
        """Logits `(batch, K)` at (row, column) from the caches, every earlier position being sampled."""
        if column == 0:
            self._start_row(codes, row, cache, class_biases)
        # The shifted-right input: position c of the horizontal stack holds the embedded code at c-1.
        if column > 0:
            horizontal = self._embed(codes[:, row : row + 1, column - 1 : column])
        else:
            horizontal = self.embedding.weight.new_zeros(codes.size(0), self.hidden_size, 1, 1)
        for layer, layer_cache, (_, horizontal_bias) in zip(self.layers, cache, class_biases, strict=True):
            layer_cache.horizontal_window = push(layer_cache.horizontal_window, horizontal, dim=3)
            to_horizontal = layer_cache.vertical_to_horizontal[..., column : column + 1]
            horizontal = layer.horizontal(layer_cache.horizontal_window, to_horizontal, horizontal_bias)
        return self.head(horizontal)[:, :, 0, 0]


__all__ = ["GatedPixelCNNPrior"]
