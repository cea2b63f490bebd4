"""The transformer prior: a GPT-2 decoder over the codes of a grid in raster order, for any modality.

The grid (B, *code_shape) is flattened to a sequence of N codes. The decoder reads a start token followed by
the first N - 1 codes and predicts, at position i, the code i: its input there is the start token and codes
0..i-1, and its causal attention sees nothing later. The start token carries the class (one learned start
embedding per class; a single one for an unconditional prior), so conditioning costs no extra position. A prior
trained with condition dropout has one more start token, the "no label" that classifier-free guidance samples
the unconditional distribution from.

A prior with `config.augment_dim > 0` also takes augmentation labels while it trains: [`AugmentLabelEmbedding`]
maps them to a vector added to every input embedding, and the zero labels of unaugmented data (sampling,
likelihoods) to nothing.

The decoder is transformers' `GPT2Model` (its blocks, SDPA attention and initialisation), built from the
prior's config; besides the start tokens and the output head, what is written here is the KV cache layer used
while sampling, [`PreallocatedKVLayer`], and the compiled static-cache step of `generate(compile=True)`
(`static_decoding.py`). Sampling 1,024 codes at batch 8 on one CPU thread (benchmarks/benchmark_prior_sampling.py,
Intel Xeon, one run): 1.8x the codes per second of `GPT2LMHeadModel.generate()` with the cached sampler, 2.4x
with `compile=True`.
"""

import math
from collections.abc import Callable
from math import prod

import torch
from torch import nn
from transformers import GPT2Config, GPT2Model
from transformers import initialization as init
from transformers.cache_utils import Cache, CacheLayerMixin

from .axial_positions import AxialPositionEmbedding
from .configuration_prior import VQPriorConfig
from .static_decoding import decoding_step


def num_start_tokens(config: VQPriorConfig) -> int:
    """One start token per class (and one for the "no label" of condition dropout), or a single one for an
    unconditional prior."""
    return max(config.num_label_embeddings, 1)


def decoder_config(config: VQPriorConfig) -> GPT2Config:
    """The `GPT2Config` of the decoder: codes are token ids 0..K-1, start tokens the ids from K on."""
    return GPT2Config(
        vocab_size=config.codebook_size + num_start_tokens(config),
        n_positions=config.num_codes,
        n_embd=config.hidden_size,
        n_layer=config.num_layers,
        n_head=config.num_heads,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        initializer_range=config.initializer_range,
        # No text tokens here; GPT-2's defaults (50256) would point outside this vocabulary.
        bos_token_id=None,
        eos_token_id=None,
        # The prior's attention implementation (resolved by transformers from `attn_implementation=`).
        attn_implementation=config._attn_implementation,
    )


class PriorDecoder(GPT2Model):
    """transformers' `GPT2Model`, whose residual output projections keep GPT-2's scaled initialisation (std
    initializer_range / sqrt(2 * layers)) however they are initialised.

    GPT-2 scales them from its attention and MLP modules, after the projection itself was initialised at the plain
    std; when transformers initialises missing weights of a checkpoint (loading through the meta device), the
    projection's first initialisation marks it as done and the scaling is skipped. Here a projection is
    recognised as one and initialised scaled directly.
    """

    def _init_weights(self, module: nn.Module) -> None:
        if any(module is block.attn.c_proj or module is block.mlp.c_proj for block in self.h):
            std = self.config.initializer_range / math.sqrt(2 * self.config.n_layer)
            init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
            return
        super()._init_weights(module)


class PreallocatedKVLayer(CacheLayerMixin):
    """A KV cache layer for one sampling run of known length: keys and values live in buffers allocated once,
    each step writes its slot, and attention reads a view of the filled prefix.

    Why not the stock layers: `DynamicLayer` concatenates at every step, copying the whole cache (O(n) per
    code, O(N^2) per sample); `StaticLayer` makes every step attend over all `max_cache_len` slots under a
    mask. Sampling 1024 codes (batch 8, hidden 256, 4 layers, one CPU thread) took 6.4 ms per code with this
    layer, 8.5 with `DynamicLayer` and 8.1 with `StaticLayer`. Only appending is supported (not croppable, no
    beam reordering): the prior's sampler is its only user.

    Args:
        max_cache_len (`int`):
            Number of positions the run will write.
    """

    def __init__(self, max_cache_len: int):
        super().__init__()
        self.max_cache_len = max_cache_len
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        batch_size, num_heads, _, head_dim = key_states.shape
        self.key_buffer = key_states.new_empty(batch_size, num_heads, self.max_cache_len, head_dim)
        self.value_buffer = value_states.new_empty(batch_size, num_heads, self.max_cache_len, head_dim)
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Writes `(batch, heads, n, head_dim)` states after the cached ones; returns views of all of them."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        self.key_buffer[:, :, self.length : end] = key_states
        self.value_buffer[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return self.max_cache_len

    def reset(self) -> None:
        self.length = 0

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError(
            "PreallocatedKVLayer only appends: beam search needs transformers' DynamicLayer."
        )


class AugmentLabelEmbedding(nn.Linear):
    """A linear map, without bias, from augmentation labels `(batch, augment_dim)` to a vector `(batch, hidden)`
    that conditions every position on how the grid was augmented.

    No bias, so the zero labels of unaugmented data add nothing, and a zero initialisation
    (`VQPriorPreTrainedModel._init_weights`), so that a trained prior given this embedding starts out exactly
    as it was. Its own class so that initialisation can tell it from the other linear layers.
    """

    def __init__(self, augment_dim: int, hidden_size: int):
        super().__init__(augment_dim, hidden_size, bias=False)

    def forward(self, augment_labels: torch.FloatTensor) -> torch.FloatTensor:
        return super().forward(augment_labels.to(self.weight.dtype))


class TransformerPrior(nn.Module):
    """Causal transformer over raster-ordered codes: logits at each position for the code there given the
    codes before it and the class.

    Start token (class) + code embeddings + learned positions -> `GPT2Model` -> linear head to K logits.

    Args:
        config ([`VQPriorConfig`]):
            Uses `codebook_size`, `code_shape` (1, 2 or 3 axes), `num_classes`, `hidden_size`, `num_layers`,
            `num_heads`, `dropout`, `initializer_range`, `augment_dim` and `axial_positions`.
    """

    def __init__(self, config: VQPriorConfig):
        super().__init__()
        self.codebook_size = config.codebook_size
        self.code_shape = tuple(config.code_shape)
        self.is_conditional = config.num_classes > 0
        self.decoder = PriorDecoder(decoder_config(config))
        self.head = nn.Linear(config.hidden_size, config.codebook_size)
        if config.augment_dim:
            self.augment_embedding = AugmentLabelEmbedding(config.augment_dim, config.hidden_size)
        if config.axial_positions:
            self.axial_positions = AxialPositionEmbedding(self.code_shape, config.hidden_size)

    def forward(
        self,
        codes: torch.LongTensor,
        class_labels: torch.LongTensor | None = None,
        augment_labels: torch.FloatTensor | None = None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.FloatTensor, tuple[torch.FloatTensor, ...] | None]:
        """
        Args:
            codes (`torch.LongTensor` of shape `(batch, *code_shape)`):
                Code grids, in [0, codebook_size).
            class_labels (`torch.LongTensor` of shape `(batch,)`, *optional*):
                Classes of the samples; required if and only if the prior is class-conditional.
            augment_labels (`torch.FloatTensor` of shape `(batch, augment_dim)`, *optional*):
                How each grid was augmented (zeros: not at all, the same as `None`); only for a prior with
                `config.augment_dim > 0`.
            output_hidden_states (`bool`, defaults to `False`):
                Also return the decoder's hidden states.

        Returns:
            `(logits, hidden_states)`: the logits `(batch, *code_shape, codebook_size)` at a position depend only
            on the codes before it in raster order and on the class; `hidden_states` is GPT-2's tuple (the input
            embeddings and each block's output, `(batch, num_codes, hidden_size)` each) when asked for, else
            `None`.
        """
        batch_size = codes.shape[0]
        # Teacher forcing: position i reads the start token and codes 0..i-1.
        start = self._start_tokens(batch_size, class_labels)
        inputs = torch.cat([start, codes.reshape(batch_size, -1)[:, :-1]], dim=1)
        embeddings = self.input_embeddings(inputs, 0, self.axial_table())
        if augment_labels is not None:
            embeddings = embeddings + self.augment_embedding(augment_labels)[:, None]
        outputs = self.decoder(
            inputs_embeds=embeddings, use_cache=False, output_hidden_states=output_hidden_states
        )
        logits = self.head(outputs.last_hidden_state).view(*codes.shape, self.codebook_size)
        return logits, outputs.hidden_states if output_hidden_states else None

    @torch.no_grad()
    def sample(
        self,
        batch_size: int,
        class_labels: torch.LongTensor | None,
        sample_next: Callable[[torch.FloatTensor], torch.LongTensor],
        use_cache: bool = True,
        progress: Callable[[], None] | None = None,
        prompt: torch.LongTensor | None = None,
        compile: bool = False,
    ) -> torch.LongTensor:
        """Generates code grids one code at a time in raster order.

        Args:
            batch_size (`int`): number of grids B.
            class_labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Classes to sample; required if and only if the prior is class-conditional.
            sample_next (`Callable[[torch.FloatTensor], torch.LongTensor]`):
                Maps the fp32 logits `(batch_size, codebook_size)` of the current position to its codes
                `(batch_size,)` (temperature, top-k, top-p and the generator live there).
            use_cache (`bool`, defaults to `True`):
                Keep the keys and values of the codes already generated, so that each step runs the decoder on
                one position; `False` reruns it on the whole prefix for every code (the reference
                implementation).
            progress (`Callable[[], None]`, *optional*):
                Called once after each generated code.
            prompt (`torch.LongTensor` of shape `(batch_size, P)`, *optional*):
                The first P codes of every grid in raster order, kept as they are; the decoder reads them (and
                the start token) in one pass before the first generated code.
            compile (`bool`, defaults to `False`):
                Run each step as one `torch.compile`d program over a static key/value cache
                ([`StaticDecodingStep`]): the same codes, several times faster once compiled (the first call of a
                batch size compiles, which takes seconds).

        Returns:
            `torch.LongTensor` of shape `(batch_size, *code_shape)`.
        """
        num_codes = prod(self.code_shape)
        start = self._start_tokens(batch_size, class_labels)
        codes = start.new_empty(batch_size, num_codes)
        first = 0 if prompt is None else prompt.shape[1]
        if prompt is not None:
            codes[:, :first] = prompt
        if compile:
            self._sample_with_static_step(start, codes, first, sample_next, progress)
            return codes.view(batch_size, *self.code_shape)
        cache = Cache(layers=[PreallocatedKVLayer(num_codes) for _ in self.decoder.h]) if use_cache else None
        axial = self.axial_table()
        for position in range(first, num_codes):
            if cache is None:
                logits = self._last_logits(torch.cat([start, codes[:, :position]], dim=1), 0, axial)
            elif position == first:
                # An empty cache: the start token and the prompt, in one pass.
                logits = self._last_logits(torch.cat([start, codes[:, :position]], dim=1), 0, axial, cache)
            else:
                # The cache holds positions 0..position-1; feed only the newest input.
                logits = self._last_logits(codes[:, position - 1 : position], position, axial, cache)
            codes[:, position] = sample_next(logits.float())
            if progress is not None:
                progress()
        return codes.view(batch_size, *self.code_shape)

    def _sample_with_static_step(
        self,
        start: torch.LongTensor,
        codes: torch.LongTensor,
        first: int,
        sample_next: Callable[[torch.FloatTensor], torch.LongTensor],
        progress: Callable[[], None] | None,
    ) -> None:
        """Fills `codes` after its first `first` (prompt) codes, one compiled step per position: the step at
        position p reads the start token (p = 0) or code p - 1 and gives the logits of code p."""
        eager_step, compiled = decoding_step(self, codes.shape[0])
        tokens, last = start, codes.shape[1] - 1
        for position in range(codes.shape[1]):
            logits = (compiled if 2 <= position < last else eager_step)(tokens, position)
            if position >= first:
                codes[:, position] = sample_next(logits.float())
                if progress is not None:
                    progress()
            tokens = codes[:, position : position + 1]

    @torch.no_grad()
    def add_null_label(self) -> None:
        """Appends the start token of a "no label" (id `num_classes`) to a trained conditional prior, initialised
        to the mean of the class start tokens, so that it starts near the prior's average over its classes."""
        old = self.decoder.wte
        class_rows = old.weight[self.codebook_size :]
        new = nn.Embedding(
            old.num_embeddings + 1, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype
        )
        new.weight.copy_(torch.cat([old.weight, class_rows.mean(dim=0, keepdim=True)]))
        self.decoder.wte = new
        self.decoder.config.vocab_size = new.num_embeddings

    def _start_tokens(self, batch_size: int, class_labels: torch.LongTensor | None) -> torch.LongTensor:
        """`(batch, 1)` ids of the start tokens: K + class, or K for every sample if unconditional (the labels
        arrive checked by `VQPriorModel`)."""
        device = self.head.weight.device
        if class_labels is None:
            return torch.full((batch_size, 1), self.codebook_size, dtype=torch.long, device=device)
        return (self.codebook_size + class_labels.to(device)).view(batch_size, 1)

    def axial_table(self) -> torch.FloatTensor | None:
        """The axial position embedding of every position `(num_codes, hidden)`, or `None` for a prior without
        them: computed once per forward pass or sampling run."""
        return self.axial_positions() if hasattr(self, "axial_positions") else None

    def input_embeddings(
        self, input_ids: torch.LongTensor, first_position: int, axial: torch.FloatTensor | None
    ) -> torch.FloatTensor:
        """The decoder's input embeddings `(batch, n, hidden)` of `input_ids` `(batch, n)` read at positions
        `first_position`.. on: the token embeddings, plus the rows of `axial` (`axial_table()`) when the prior has
        them. GPT-2 adds its own positions itself."""
        embeddings = self.decoder.wte(input_ids)
        if axial is not None:
            embeddings = embeddings + axial[first_position : first_position + input_ids.shape[1]]
        return embeddings

    def _last_logits(
        self,
        input_ids: torch.LongTensor,
        first_position: int,
        axial: torch.FloatTensor | None,
        cache: Cache | None = None,
    ) -> torch.FloatTensor:
        """Logits `(batch, K)` at the last of the positions `input_ids` `(batch, n)`, which start at
        `first_position` (the cache holds the ones before)."""
        embeddings = self.input_embeddings(input_ids, first_position, axial)
        outputs = self.decoder(inputs_embeds=embeddings, cache=cache, use_cache=cache is not None)
        return self.head(outputs.last_hidden_state[:, -1])


__all__ = ["AugmentLabelEmbedding", "TransformerPrior"]
