# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Classifier-free guidance for the priors' samplers (Ho & Salimans, 2022).

Each code is drawn from `logits_uncond + s * (logits_cond - logits_uncond)` at guidance scale `s`: above 1 the
sample leans towards what makes its class more likely than the average code grid. The conditional and the
unconditional distributions come from one batched forward through the backbone's own cached sampler: the batch
is repeated once per *pass* (pass-major: rows `p * B .. p * B + B - 1` are pass `p`), every pass is fed the same
codes, and the guided logits of the B samples are formed from all of them.

Where the unconditional distribution comes from:

- a prior trained with condition dropout has a learned "no label" (`config.null_label_id`): 2 passes, the class
  and the "no label";
- any other conditional prior falls back to the mixture of its classes, `p(z_t | z_<t) = mean_c p(z_t | z_<t, c)`
  (uniform over the classes): C passes, one per class, the requested class among them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from math import log

import torch

from .number_checks import is_real
from .configuration_prior import VQPriorConfig


@dataclass
class GuidedBatch:
    """The passes of a guided sampling run.

    Args:
        class_labels (`torch.LongTensor` of shape `(num_passes * batch,)`):
            The label of every row the backbone samples, pass-major.
        num_passes (`int`):
            2 with a learned "no label", C for the class mixture.
        combine (`Callable[[torch.FloatTensor], torch.FloatTensor]`):
            Maps the logits of all rows `(num_passes * batch, K)` to the guided logits `(batch, K)`.
    """

    class_labels: torch.LongTensor
    num_passes: int
    combine: Callable[[torch.FloatTensor], torch.FloatTensor]

    def sample_next(
        self, sample_next: Callable[[torch.FloatTensor], torch.LongTensor]
    ) -> Callable[[torch.FloatTensor], torch.LongTensor]:
        """A backbone's `sample_next` for all rows: draws each sample's code from its guided logits with
        `sample_next` and gives every pass of the sample that code."""

        def guided_sample_next(logits: torch.FloatTensor) -> torch.LongTensor:
            return sample_next(self.combine(logits)).repeat(self.num_passes)

        return guided_sample_next


def check_guidance_scale(guidance_scale: float, config: VQPriorConfig) -> None:
    """Raises a `TypeError`/`ValueError` unless `guidance_scale` is a finite number >= 0 and, unless it is 1
    (no guidance), the prior is class-conditional."""
    if not is_real(guidance_scale):
        raise TypeError(
            f"guidance_scale must be a number >= 0 (1 = no guidance), got {type(guidance_scale).__name__} "
            f"{guidance_scale!r}."
        )
    if not 0 <= guidance_scale < float("inf"):
        raise ValueError(
            f"guidance_scale must be a finite number >= 0 (1 = no guidance, 0 = the unconditional "
            f"distribution), got {guidance_scale!r}."
        )
    if guidance_scale != 1 and config.num_classes == 0:
        raise ValueError(
            f"guidance_scale={guidance_scale}: guidance contrasts a class with the unconditional distribution, "
            "but this prior is unconditional (config.num_classes=0); use guidance_scale=1."
        )


def num_guidance_passes(config: VQPriorConfig) -> int:
    """Rows per sample in guided sampling: 2 with a learned "no label", else one per class."""
    return 2 if config.null_label_id is not None else config.num_classes


def guided_batch(class_labels: torch.LongTensor, guidance_scale: float, config: VQPriorConfig) -> GuidedBatch:
    """The passes that guide the samples of `class_labels` `(batch,)` (valid classes) at `guidance_scale`."""
    batch_size = len(class_labels)
    if config.null_label_id is not None:
        null_labels = torch.full_like(class_labels, config.null_label_id)

        def combine_with_null_label(logits: torch.FloatTensor) -> torch.FloatTensor:
            conditional, unconditional = logits.view(2, batch_size, -1)
            return unconditional + guidance_scale * (conditional - unconditional)

        return GuidedBatch(torch.cat([class_labels, null_labels]), 2, combine_with_null_label)

    num_classes = config.num_classes
    every_class = torch.arange(num_classes, device=class_labels.device).repeat_interleave(batch_size)
    rows = torch.arange(batch_size, device=class_labels.device)

    def combine_with_class_mixture(logits: torch.FloatTensor) -> torch.FloatTensor:
        log_probs = logits.view(num_classes, batch_size, -1).log_softmax(dim=-1)
        unconditional = log_probs.logsumexp(dim=0) - log(num_classes)
        conditional = log_probs[class_labels, rows]
        return unconditional + guidance_scale * (conditional - unconditional)

    return GuidedBatch(every_class, num_classes, combine_with_class_mixture)


def guided_rows(
    class_labels: torch.LongTensor | None,
    sample_next: Callable[[torch.FloatTensor], torch.LongTensor],
    prompt: torch.LongTensor | None,
    guidance_scale: float,
    config: VQPriorConfig,
) -> tuple[torch.LongTensor | None, Callable[[torch.FloatTensor], torch.LongTensor], torch.LongTensor | None]:
    """The class labels, `sample_next` and prompt `(rows, P)` of every row a backbone samples: the samples
    themselves at `guidance_scale` 1, else every pass of `guided_batch` (the prompt repeated per pass)."""
    if guidance_scale == 1:
        return class_labels, sample_next, prompt
    guided = guided_batch(class_labels, guidance_scale, config)
    prompt = prompt.repeat(guided.num_passes, 1) if prompt is not None else None
    return guided.class_labels, guided.sample_next(sample_next), prompt


__all__ = ["GuidedBatch", "check_guidance_scale", "guided_batch", "guided_rows", "num_guidance_passes"]
