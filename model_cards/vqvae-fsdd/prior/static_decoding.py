# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Fast sampling for the transformer prior: one decoding step over a static key/value cache, compiled once.

The cached sampler (`TransformerPrior.sample`) runs transformers' `GPT2Model` one position at a time; much of each
step is the per-call work of the library around a few small matrix products. Here one step is a plain function
of the step's token and position over key/value buffers allocated once for the run's full length, and
`torch.compile` turns it into one fused program, compiled on the first call (the position and the prefix length
symbolic) and reused by every later step and run of the same batch size.

The step reads the decoder's own modules (embeddings, layer norms, projections, MLPs, head): it is the same model,
not a copy, and gives the same logits as the decoder up to float rounding.
"""

from math import prod

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import logging

logger = logging.get_logger(__name__)


class StaticDecodingStep(nn.Module):
    """
    Logits for the next code of `batch_size` sequences, given the code at `position` (the start token at 0).

    Args:
        backbone ([`TransformerPrior`]): the prior whose decoder and head run the step.
        batch_size (`int`): rows sampled together (every guidance pass of every sample).
    """

    def __init__(self, backbone: nn.Module, batch_size: int):
        super().__init__()
        self.backbone = backbone
        decoder = backbone.decoder
        self.num_positions = prod(backbone.code_shape)
        self.num_heads = decoder.config.n_head
        self.head_dim = decoder.config.n_embd // self.num_heads
        weight = decoder.wte.weight
        shape = (batch_size, self.num_heads, self.num_positions, self.head_dim)
        self.keys = [weight.new_zeros(shape) for _ in decoder.h]
        self.values = [weight.new_zeros(shape) for _ in decoder.h]
        axial = backbone.axial_table()
        self.axial_rows = None if axial is None else axial.detach().clone()

    @torch.no_grad()
    def read_axial_positions(self) -> None:
        """Copies the axial position embedding of every position (`TransformerPrior.axial_table`) into
        `self.axial_rows`, in place (the compiled program reads that tensor), so that the grid is summed once per
        run rather than at every step. Called at the start of every run, so that a run sees the current weights;
        nothing to do for a prior without them."""
        if self.axial_rows is not None:
            self.axial_rows.copy_(self.backbone.axial_table())

    def forward(self, tokens: torch.LongTensor, position: int) -> torch.FloatTensor:
        """`tokens` `(batch, 1)` at `position` -> logits `(batch, codebook_size)` of the code after it. Attention
        reads the filled prefix of the buffers only: on a CPU a step is bound by reading the cache and the weights
        (attending over the whole buffer under a mask, the textbook static cache, measured slower than the eager
        sampler). The prefix length is a symbolic size of the compiled program, so one compilation serves every
        position."""
        decoder = self.backbone.decoder
        batch_size = tokens.shape[0]
        # Summed in the decoder's order: the token and axial embeddings (the inputs it is given), then its positions.
        hidden = decoder.wte(tokens)
        if self.axial_rows is not None:
            hidden = hidden + self.axial_rows[position : position + 1]
        hidden = hidden + decoder.wpe.weight[position : position + 1]
        for block, keys, values in zip(decoder.h, self.keys, self.values, strict=True):
            query, key, value = block.attn.c_attn(block.ln_1(hidden)).split(decoder.config.n_embd, dim=2)
            query, key, value = (
                x.view(batch_size, 1, self.num_heads, self.head_dim).transpose(1, 2)
                for x in (query, key, value)
            )
            keys[:, :, position : position + 1] = key
            values[:, :, position : position + 1] = value
            attended = F.scaled_dot_product_attention(
                query, keys[:, :, : position + 1], values[:, :, : position + 1], scale=block.attn.scaling
            )
            hidden = hidden + block.attn.c_proj(attended.transpose(1, 2).reshape(batch_size, 1, -1))
            hidden = hidden + block.mlp(block.ln_2(hidden))
        return self.backbone.head(decoder.ln_f(hidden)[:, -1])


class CompiledStep:
    """
    A [`StaticDecodingStep`] compiled with `torch.compile(fullgraph=True, dynamic=True)`, which falls back to the
    eager step, with a warning, once torch.compile's recompile limit is reached in the process: every prior and
    batch size compiles its own program, and past the limit (`torch._dynamo.config.recompile_limit`, 8 by default)
    a full-graph compile fails rather than run. The eager step computes the same logits.
    """

    def __init__(self, step: StaticDecodingStep):
        self.step = step
        self.compiled = torch.compile(step, fullgraph=True, dynamic=True)

    def __call__(self, tokens: torch.LongTensor, position: int) -> torch.FloatTensor:
        if self.compiled is not None:
            try:
                return self.compiled(tokens, position)
            except torch._dynamo.exc.FailOnRecompileLimitHit:
                logger.warning(
                    "generate(compile=True): torch.compile's recompile limit is reached in this process (one "
                    "program per prior and batch size); this prior samples without compiling, with the same codes. "
                    "Raise torch._dynamo.config.recompile_limit to compile more."
                )
                self.compiled = None
        return self.step(tokens, position)


def decoding_step(backbone: nn.Module, batch_size: int) -> tuple[StaticDecodingStep, CompiledStep]:
    """The backbone's step for `batch_size` rows, eager and compiled (the same module and buffers), built once and
    kept on the backbone: compiling takes seconds, so later runs of the same batch size, dtype and device reuse
    it. torch.compile specialises the positions 0 and 1 and the last one (where the filled prefix is the whole
    buffer), so those run eager and the compiled program, with the position symbolic, serves every other one."""
    weight = backbone.decoder.wte.weight
    key = (batch_size, weight.dtype, weight.device)
    # Kept in the instance dict, not as a submodule: the steps have no weights of their own to save.
    steps = backbone.__dict__.setdefault("_static_steps", {})
    if key not in steps:
        step = StaticDecodingStep(backbone, batch_size)
        steps[key] = (step, CompiledStep(step))
    else:
        steps[key][0].read_axial_positions()
    return steps[key]


__all__ = ["CompiledStep", "StaticDecodingStep", "decoding_step"]
