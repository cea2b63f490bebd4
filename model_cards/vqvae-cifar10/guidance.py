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

The scale can change over the grid (`guidance_schedule`). `"constant"` uses `s` at every code; `"linear"` and
`"cosine"` rise from 0 (the unconditional distribution) at the grid's first code to `s` at its last, as MUSE and
VAR schedule their guidance: the first codes, which lay out the whole sample, are drawn as freely as the
unconditional model draws them, and the class is imposed on the details. On the CIFAR-10 prior this keeps more
of the real images' diversity at the same class fidelity (see the vqvae-cifar10 card). After a prompt, sampling
starts where the ramp stands at the prompt's end. It does not suit every
modality: a spoken digit is decided by its first codes, and on the FSDD prior the schedule halves how often samples
say the digit asked for (see the vqvae-fsdd card).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from math import cos, log, pi

import torch

from .number_checks import is_real
from .configuration_prior import VQPriorConfig

GUIDANCE_SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class GuidedBatch:
    """The passes of a guided sampling run.

    Args:
        class_labels (`torch.LongTensor` of shape `(num_passes * batch,)`):
            The label of every row the backbone samples, pass-major.
        num_passes (`int`):
            2 with a learned "no label", C for the class mixture.
        combine (`Callable[[torch.FloatTensor, float], torch.FloatTensor]`):
            Maps the logits of all rows `(num_passes * batch, K)` and a guidance scale to the guided logits
            `(batch, K)`.
    """

    class_labels: torch.LongTensor
    num_passes: int
    combine: Callable[[torch.FloatTensor, float], torch.FloatTensor]

    def sample_next(
        self, sample_next: Callable[[torch.FloatTensor], torch.LongTensor], scales: Iterator[float]
    ) -> Callable[[torch.FloatTensor], torch.LongTensor]:
        """A backbone's `sample_next` for all rows: draws each sample's code from its guided logits with
        `sample_next` and gives every pass of the sample that code. The backbones call it once per code, in raster
        order from the first code after the prompt, so the code at hand takes the next of `scales`."""

        def guided_sample_next(logits: torch.FloatTensor) -> torch.LongTensor:
            return sample_next(self.combine(logits, next(scales))).repeat(self.num_passes)

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


def check_guidance_schedule(guidance_schedule: str, config: VQPriorConfig) -> None:
    """Raises a `ValueError` unless `guidance_schedule` is one of `GUIDANCE_SCHEDULES` and, unless it is
    `"constant"`, the prior is class-conditional."""
    if guidance_schedule not in GUIDANCE_SCHEDULES:
        raise ValueError(f"guidance_schedule must be one of {GUIDANCE_SCHEDULES}, got {guidance_schedule!r}.")
    if guidance_schedule != "constant" and config.num_classes == 0:
        raise ValueError(
            f"guidance_schedule={guidance_schedule!r} schedules classifier-free guidance, but this prior is "
            "unconditional (config.num_classes=0); use guidance_schedule='constant' and guidance_scale=1."
        )


def resolved_guidance(
    guidance_scale: float | None, guidance_schedule: str | None, generation_config, config: VQPriorConfig
) -> tuple[float, str, int]:
    """The scale and schedule to sample with, checked, and the passes per sample they take.

    `None` takes the prior's saved defaults from `generation_config` (`generation_config.json`): its
    `guidance_scale` (a saved 0, the unconditional distribution, is a value, not "unset"), else 1 (no guidance),
    and its `guidance_schedule`, else `"constant"`. The saved schedule belongs to the saved scale: a scale given
    without a schedule is applied everywhere (`"constant"`), so that `guidance_scale=1` is always unguided.
    """
    if guidance_schedule is None:
        saved_schedule = getattr(generation_config, "guidance_schedule", None) or "constant"
        guidance_schedule = saved_schedule if guidance_scale is None else "constant"
    check_guidance_schedule(guidance_schedule, config)
    if guidance_scale is None:
        saved = generation_config.guidance_scale
        if saved is None and guidance_schedule != "constant":
            raise ValueError(
                f"guidance_schedule={guidance_schedule!r} spreads a guidance_scale over the grid, but none was "
                "given and this prior saves no default: pass guidance_scale too (e.g. 3.0)."
            )
        guidance_scale = 1.0 if saved is None else saved
    check_guidance_scale(guidance_scale, config)
    passes = num_guidance_passes(config) if is_guided(guidance_scale, guidance_schedule) else 1
    return guidance_scale, guidance_schedule, passes


def is_guided(guidance_scale: float, guidance_schedule: str) -> bool:
    """Whether sampling needs the guidance passes: anything but the constant scale 1."""
    return not (guidance_scale == 1 and guidance_schedule == "constant")


def scheduled_scales(
    guidance_scale: float, guidance_schedule: str, num_codes: int, first_code: int = 0
) -> list[float]:
    """The guidance scale of each code of a grid of `num_codes`, from `first_code` (the prompt's length) on."""
    # A grid of one code has its last code first: the full scale.
    fractions = [
        position / (num_codes - 1) if num_codes > 1 else 1.0 for position in range(first_code, num_codes)
    ]
    if guidance_schedule == "linear":
        return [guidance_scale * fraction for fraction in fractions]
    if guidance_schedule == "cosine":
        return [guidance_scale * (1 - cos(pi * fraction)) / 2 for fraction in fractions]
    return [guidance_scale] * len(fractions)


def num_guidance_passes(config: VQPriorConfig) -> int:
    """Rows per sample in guided sampling: 2 with a learned "no label", else one per class."""
    return 2 if config.null_label_id is not None else config.num_classes


def guided_batch(class_labels: torch.LongTensor, config: VQPriorConfig) -> GuidedBatch:
    """The passes that guide the samples of `class_labels` `(batch,)` (valid classes)."""
    batch_size = len(class_labels)
    if config.null_label_id is not None:
        null_labels = torch.full_like(class_labels, config.null_label_id)

        def combine_with_null_label(logits: torch.FloatTensor, guidance_scale: float) -> torch.FloatTensor:
            conditional, unconditional = logits.view(2, batch_size, -1)
            return unconditional + guidance_scale * (conditional - unconditional)

        return GuidedBatch(torch.cat([class_labels, null_labels]), 2, combine_with_null_label)

    num_classes = config.num_classes
    every_class = torch.arange(num_classes, device=class_labels.device).repeat_interleave(batch_size)
    rows = torch.arange(batch_size, device=class_labels.device)

    def combine_with_class_mixture(logits: torch.FloatTensor, guidance_scale: float) -> torch.FloatTensor:
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
    guidance_schedule: str = "constant",
) -> tuple[torch.LongTensor | None, Callable[[torch.FloatTensor], torch.LongTensor], torch.LongTensor | None]:
    """The class labels, `sample_next` and prompt `(rows, P)` of every row a backbone samples: the samples
    themselves without guidance (`is_guided`), else every pass of `guided_batch` (the prompt repeated per pass),
    each code guided at its scale of `guidance_schedule`."""
    if not is_guided(guidance_scale, guidance_schedule):
        return class_labels, sample_next, prompt
    guided = guided_batch(class_labels, config)
    first_code = prompt.shape[1] if prompt is not None else 0
    scales = iter(scheduled_scales(guidance_scale, guidance_schedule, config.num_codes, first_code))
    prompt = prompt.repeat(guided.num_passes, 1) if prompt is not None else None
    return guided.class_labels, guided.sample_next(sample_next, scales), prompt


__all__ = [
    "GUIDANCE_SCHEDULES",
    "GuidedBatch",
    "check_guidance_scale",
    "check_guidance_schedule",
    "guided_batch",
    "guided_rows",
    "is_guided",
    "num_guidance_passes",
    "resolved_guidance",
    "scheduled_scales",
]
