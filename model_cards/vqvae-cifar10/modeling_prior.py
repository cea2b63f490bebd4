# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Autoregressive priors over VQ-VAE code grids (the paper's second stage), as Hugging Face models.

[`VQPriorModel`] holds one backbone, chosen by `config.prior_type`:

- `"transformer"`: [`TransformerPrior`], a GPT-2 decoder over codes in raster order (images, audio, video);
- `"pixelcnn"`: [`GatedPixelCNNPrior`], the paper's gated PixelCNN (2-D grids).

The model validates inputs, computes the loss and drives sampling (temperature, top-k, top-p, an explicit
generator, a progress bar); a backbone only maps codes to logits and runs its own cached sampling loop,
through the interface that [`PriorBackbone`] describes.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import (
    GenerationConfig,
    PreTrainedModel,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers import initialization as init
from transformers.generation.logits_process import LogitsProcessor
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .eval_mode import eval_mode
from .remote_code import RemoteCodeMixin
from .strict_loading import StrictLoadingMixin
from .axial_positions import AxialTables
from .coding import PriorCodingMixin
from .configuration_prior import VQPriorConfig
from .guidance import guided_rows, resolved_guidance
from .pixelcnn_backbone import GatedPixelCNNPrior
from .prior_inputs import (
    ClassLabels,
    available_memory,
    check_augment_labels,
    check_class_labels,
    check_codes,
    check_compile,
    check_sampling_arguments,
    check_sampling_memory,
    prompt_as_prefix,
    sampling_class_labels,
)
from .surgery import PriorSurgeryMixin
from .transformer_backbone import AugmentLabelEmbedding, TransformerPrior

BACKBONES = {"transformer": TransformerPrior, "pixelcnn": GatedPixelCNNPrior}


@dataclass
class VQPriorOutput(ModelOutput):
    """
    Output of [`VQPriorModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            Mean negative log-likelihood of the codes in nats per code (the cross entropy of `logits`);
            [`~metrics.bits_per_code`] and [`~metrics.bits_per_input_dim`] convert it to bits.
        logits (`torch.FloatTensor` of shape `(batch, *code_shape, codebook_size)`):
            At each position, the unnormalised log-probabilities of the code there given the codes before it
            in raster order (and the class).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class PriorBackbone(Protocol):
    """
    What [`VQPriorModel`] asks of a backbone (an `nn.Module` built from a [`VQPriorConfig`]). Inputs arrive
    validated: codes are `torch.long` in [0, K), and `class_labels` is given if and only if
    `config.num_classes > 0`. A backbone that supports `config.augment_dim` (the transformer) also takes
    `augment_labels` `(batch, augment_dim)` as a third argument of `forward`; the others are never given it.
    """

    def forward(
        self,
        codes: torch.LongTensor,
        class_labels: torch.LongTensor | None,
        output_hidden_states: bool = False,
    ) -> tuple[torch.FloatTensor, tuple[torch.FloatTensor, ...] | None]:
        """
        Args:
            codes (`torch.LongTensor` of shape `(batch, *code_shape)`): the code grids.
            class_labels (`torch.LongTensor` of shape `(batch,)`, *optional*): their classes.
            output_hidden_states (`bool`): also return the backbone's hidden states.

        Returns:
            `(logits, hidden_states)`: logits `(batch, *code_shape, codebook_size)` at each position that depend
            only on the codes before it in raster order and on the class, and the input and each layer's output
            (`None` unless asked for).
        """

    def sample(
        self,
        batch_size: int,
        class_labels: torch.LongTensor | None,
        sample_next: Callable[[torch.FloatTensor], torch.LongTensor],
        use_cache: bool,
        progress: Callable[[], None] | None,
        prompt: torch.LongTensor | None = None,
    ) -> torch.LongTensor:
        """
        Generates `batch_size` code grids one position at a time in raster order, under `torch.no_grad`.

        Args:
            batch_size (`int`): number of grids B.
            class_labels (`torch.LongTensor` of shape `(B,)`, *optional*): classes to sample.
            sample_next (`Callable`): maps the fp32 logits `(B, codebook_size)` of the next position, before
                any temperature, to its codes `(B,)`.
            use_cache (`bool`): reuse the computation of earlier positions; `False` recomputes everything at
                each position (the reference that tests compare the cache with).
            progress (`Callable[[], None]`, *optional*): called once per generated position.
            prompt (`torch.LongTensor` of shape `(B, P)`, *optional*): the first P codes of every grid in raster
                order, validated (1 <= P < number of codes); kept as they are, only the rest is sampled.

        Returns:
            `torch.LongTensor` of shape `(B, *code_shape)`.
        """


def logits_warpers(temperature: float, top_k: int | None, top_p: float | None) -> list[LogitsProcessor]:
    """transformers' warpers for the requested filtering; only the ones that change the distribution."""
    # transformers' warpers accept only built-in floats and ints, not numpy or `Fraction` numbers.
    warpers = []
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(float(temperature)))
    if top_k is not None:
        warpers.append(TopKLogitsWarper(int(top_k)))
    if top_p is not None and top_p < 1.0:
        warpers.append(TopPLogitsWarper(float(top_p)))
    return warpers


def sample_codes(
    logits: torch.FloatTensor, warpers: list[LogitsProcessor], generator: torch.Generator | None = None
) -> torch.LongTensor:
    """
    Draws one code per row of `logits` after temperature, top-k and top-p: every backbone's `sample_next`.

    Args:
        logits (`torch.FloatTensor` of shape `(batch, codebook_size)`):
            Logits of the next position.
        warpers (`list[LogitsProcessor]`):
            From [`logits_warpers`]. Called one by one rather than through `LogitsProcessorList`, which
            inspects every warper's signature at every call (~65 us a step on CPU; these need no kwargs).
        generator (`torch.Generator`, *optional*):
            Source of randomness; the draw happens on its device, so a CPU generator also drives a GPU model.

    Returns:
        `torch.LongTensor` of shape `(batch,)` on the device of `logits`.
    """
    for warper in warpers:
        logits = warper(None, logits)  # these warpers ignore input_ids
    probabilities = logits.softmax(dim=-1)
    if generator is not None:
        probabilities = probabilities.to(generator.device)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(1).to(logits.device)


class VQPriorPreTrainedModel(RemoteCodeMixin, StrictLoadingMixin, PreTrainedModel):
    """Config class, weight initialisation and loading conventions shared by the prior models."""

    config: VQPriorConfig
    base_model_prefix = "prior"
    main_input_name = "codes"
    supports_gradient_checkpointing = True
    # The transformer prior's GPT-2 decoder runs eager or SDPA attention (the PixelCNN has none to switch).
    _supports_sdpa = True

    @classmethod
    def can_generate(cls) -> bool:
        """The priors sample with their own `generate` (not `GenerationMixin`'s); `True` gives them a
        `generation_config`, saved as `generation_config.json`, that holds their sampling defaults
        (`guidance_scale`)."""
        return True

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> "VQPriorPreTrainedModel":
        """transformers' `from_pretrained`, which also loads the sampling defaults of `generation_config.json`
        where the folder has one (transformers does that only for `GenerationMixin` models)."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        name_or_path = args[0] if args else kwargs["pretrained_model_name_or_path"]
        try:
            # Files written before the priors had their own defaults are marked `_from_model_config`, which would
            # make transformers drop the fields it does not know (`guidance_schedule`).
            model.generation_config = GenerationConfig.from_pretrained(
                name_or_path, _from_model_config=False, **model.hub_loading_kwargs
            )
        except OSError:  # no generation_config.json: the defaults stay
            pass
        return loaded

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # The GPT-2 decoder inside the transformer prior is a PreTrainedModel: it keeps GPT-2's own scheme
        # (including the 1/sqrt(2 * layers) scaling of residual projections).
        std = self.config.initializer_range
        if isinstance(module, AugmentLabelEmbedding):
            init.zeros_(module.weight)
        elif isinstance(module, AxialTables):
            for table in module:
                init.zeros_(table)
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            # PyTorch's fan-in init suits the PixelCNN's convolutions better than N(0, 0.02).
            module.reset_parameters()


class VQPriorModel(PriorCodingMixin, PriorSurgeryMixin, VQPriorPreTrainedModel):
    """
    An autoregressive prior over the code grids of a [`VQVAEModel`]: `p(codes | class)` factorised over the
    codes in raster order. `forward` scores grids (training, likelihood); `generate` samples new ones.

    Args:
        config ([`VQPriorConfig`]):
            `prior_type` picks the backbone: `"transformer"` or `"pixelcnn"`.
    """

    def __init__(self, config: VQPriorConfig):
        super().__init__(config)
        self.backbone: PriorBackbone = BACKBONES[config.prior_type](config)
        # Sampling defaults set by hand, not derived from the model config: transformers drops the fields it does
        # not know (`guidance_schedule`) when it reloads a generation config marked `_from_model_config`.
        self.generation_config = GenerationConfig()
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        codes: torch.LongTensor,
        class_labels: torch.LongTensor | None = None,
        augment_labels: torch.FloatTensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> VQPriorOutput:
        """
        Args:
            codes (`torch.LongTensor` of shape `(batch, *code_shape)`):
                Code grids from [`VQVAEModel.encode`], in [0, codebook_size).
            class_labels (`torch.LongTensor` of shape `(batch,)`, *optional*):
                Classes of the samples, in [0, num_classes); required if and only if `config.num_classes > 0`.
                A prior trained with condition dropout also takes `config.null_label_id` ("no label": the
                unconditional likelihood); in training mode it replaces a random `config.condition_dropout`
                fraction of the labels by it.
            augment_labels (`torch.FloatTensor` of shape `(batch, augment_dim)`, *optional*):
                How each grid was augmented, for training with `config.augment_dim > 0`; `None` (or zeros) for
                unaugmented grids, which is what likelihoods and samples are of.
            output_hidden_states (`bool`, *optional*):
                Also return the backbone's hidden states (defaults to `config.output_hidden_states`).

        Returns:
            [`VQPriorOutput`]: `loss` (mean NLL in nats per code), `logits` `(batch, *code_shape, codebook_size)`
            and, when asked for, `hidden_states`: the transformer's input embeddings and each block's output
            `(batch, num_codes, hidden_size)`, or the PixelCNN's horizontal stack before and after each layer
            `(batch, hidden_size, H, W)`.
        """
        check_codes(codes, self.config)
        check_class_labels(class_labels, codes.shape[0], self.config.num_classes, self.config.null_label_id)
        check_augment_labels(augment_labels, codes.shape[0], self.config.augment_dim)
        codes = codes.long()
        if class_labels is not None:
            class_labels = self._dropped_class_labels(class_labels.long())
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        extra = {} if augment_labels is None else {"augment_labels": augment_labels}
        logits, hidden_states = self.backbone(
            codes, class_labels, output_hidden_states=output_hidden_states, **extra
        )
        # fp32 so that a bf16 model still reports a precise likelihood.
        loss = F.cross_entropy(logits.flatten(0, -2).float(), codes.flatten())
        return VQPriorOutput(loss=loss, logits=logits, hidden_states=hidden_states)

    def _dropped_class_labels(self, class_labels: torch.LongTensor) -> torch.LongTensor:
        """In training mode, each label replaced by the "no label" with probability `config.condition_dropout`
        (drawn from torch's global RNG, which Accelerate's checkpoints save, as dropout's are)."""
        if not self.training or not self.config.condition_dropout:
            return class_labels
        dropped = torch.rand(class_labels.shape, device=class_labels.device) < self.config.condition_dropout
        return class_labels.masked_fill(dropped, self.config.null_label_id)

    @torch.no_grad()
    def generate(
        self,
        num_samples: int,
        class_labels: ClassLabels | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        show_progress_bar: bool = False,
        guidance_scale: float | None = None,
        prompt_codes: torch.LongTensor | None = None,
        compile: bool = False,
        guidance_schedule: str | None = None,
    ) -> torch.LongTensor:
        """Samples code grids one code at a time in raster order, in eval mode (the training mode is restored).

        Args:
            num_samples (`int`):
                Number of grids to sample.
            class_labels (`int`, `list[int]` or `torch.LongTensor` of shape `(num_samples,)`, *optional*):
                Classes to sample, in [0, num_classes); an int gives every sample that class. Required if and
                only if `config.num_classes > 0`.
            temperature (`float`, defaults to 1.0): divides the logits; below 1 sharpens, above 1 flattens.
            top_k (`int`, *optional*), top_p (`float`, *optional*): sample among the `top_k` likeliest codes
                only (1 = greedy), or among the likeliest codes of total mass `top_p`.
            generator (`torch.Generator`, *optional*): source of randomness; the same seed, the same samples.
            use_cache (`bool`, defaults to `True`), show_progress_bar (`bool`, defaults to `False`): reuse the
                work of earlier codes (same samples, much faster); a tqdm bar over the codes of the grid.
            guidance_scale (`float`, *optional*):
                Classifier-free guidance (`guidance.py`): 1 is none, above 1 clearer classes, 0 the unconditional
                distribution. `guidance_schedule` (`"constant"`, or `"linear"`/`"cosine"`: from 0 at the first code
                to `guidance_scale` at the last) spreads it over the grid. Left out, both take the saved defaults
                of `generation_config`; a scale given alone is applied everywhere (1 = unguided).
            prompt_codes (`torch.LongTensor`, *optional*):
                The first codes of every grid, kept exactly while the prior samples the rest: `(num_samples or 1,
                P)` in raster order, or the first slices of the grid's first axis (see `prompt_as_prefix`).
            compile (`bool`, defaults to `False`):
                Transformer prior: a static key/value cache and a compiled step (`static_decoding.py`); the same
                codes, faster after the first call of a batch size, which compiles.

        Returns:
            `torch.LongTensor` of shape `(num_samples, *code_shape)` with values in [0, codebook_size).
        """
        check_sampling_arguments(num_samples, temperature, top_k, top_p, generator)
        check_compile(compile, use_cache, self.config)
        guidance_scale, guidance_schedule, passes = resolved_guidance(
            guidance_scale, guidance_schedule, self.generation_config, self.config
        )
        check_sampling_memory(num_samples * passes, self.config, available_memory(self.device))
        class_labels = sampling_class_labels(class_labels, num_samples, self.config.num_classes, self.device)
        prompt = prompt_as_prefix(prompt_codes, num_samples, self.config, self.device)
        warpers = logits_warpers(temperature, top_k, top_p)
        sample_next = partial(sample_codes, warpers=warpers, generator=generator)
        labels, sample_next, prompt = guided_rows(
            class_labels, sample_next, prompt, guidance_scale, self.config, guidance_schedule
        )
        rows = num_samples * passes
        codes = self._sample_rows(rows, labels, sample_next, use_cache, show_progress_bar, prompt, compile)
        return codes[:num_samples]

    def _sample_rows(
        self,
        rows: int,
        class_labels: torch.LongTensor | None,
        sample_next: Callable[[torch.FloatTensor], torch.LongTensor],
        use_cache: bool,
        show_progress_bar: bool,
        prompt: torch.LongTensor | None,
        compile: bool = False,
    ) -> torch.LongTensor:
        """The backbone's sampling loop over `rows` grids (every guidance pass of every sample), in eval mode,
        with a progress bar over the codes it generates (those after the prompt)."""
        to_sample = self.config.num_codes - (prompt.shape[1] if prompt is not None else 0)
        with eval_mode(self), tqdm(total=to_sample, desc="Codes", disable=not show_progress_bar) as bar:
            progress = bar.update if show_progress_bar else None
            options = {"compile": True} if compile else {}
            return self.backbone.sample(
                rows, class_labels, sample_next, use_cache, progress, prompt, **options
            )

    @property
    def default_guidance_scale(self) -> float:
        """The scale `generate` guides with unless told (`generation_config.json`'s, else 1: no guidance)."""
        return resolved_guidance(None, None, self.generation_config, self.config)[0]

    @property
    def default_guidance_schedule(self) -> str:
        """The schedule of that default scale (`generation_config.json`'s, else `"constant"`)."""
        return resolved_guidance(None, None, self.generation_config, self.config)[1]


__all__ = ["PriorBackbone", "VQPriorModel", "VQPriorOutput", "VQPriorPreTrainedModel", "sample_codes"]
