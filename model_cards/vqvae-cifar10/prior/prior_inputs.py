# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Checks of what users give the priors (code grids, class labels, augmentation labels, prompts, sampling
settings), at the public entry points `VQPriorModel.forward` / `generate` and the pipeline: the backbones behind
them trust their inputs."""

import os
import sys
from collections.abc import Sequence

import torch

from .number_checks import is_int, is_integer_tensor, is_real
from .tracing import is_tracing
from .configuration_prior import VQPriorConfig

ClassLabels = int | Sequence[int] | torch.LongTensor


def check_codes(codes: torch.Tensor, config: VQPriorConfig) -> None:
    """Raises a `TypeError`/`ValueError` naming the problem unless `codes` is an integer
    `(batch, *code_shape)` grid of indices in [0, codebook_size)."""
    expected = f"(batch, {', '.join(map(str, config.code_shape))})"
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"codes must be a torch.LongTensor of shape {expected}, got {type(codes).__name__}.")
    if not is_integer_tensor(codes):
        raise TypeError(f"codes must hold integer code indices (torch.long), got dtype {codes.dtype}.")
    if list(codes.shape[1:]) != list(config.code_shape) or codes.shape[0] == 0:
        raise ValueError(
            f"codes must have shape {expected} with batch >= 1 (config.code_shape={config.code_shape}), "
            f"got {tuple(codes.shape)}."
        )
    if is_tracing():  # value checks would break a compiled or exported graph
        return
    low, high = codes.min().item(), codes.max().item()
    if low < 0 or high >= config.codebook_size:
        raise ValueError(
            f"codes must lie in [0, {config.codebook_size}) (config.codebook_size), "
            f"got values in [{low}, {high}]."
        )


def check_class_labels(
    class_labels: torch.Tensor | None, batch_size: int, num_classes: int, null_label_id: int | None = None
) -> None:
    """Raises a `TypeError`/`ValueError` unless `class_labels` suits the prior: `None` for an unconditional
    one, else an integer `(batch_size,)` tensor in [0, num_classes), or up to `null_label_id` where the "no
    label" of condition dropout is accepted."""
    if num_classes == 0:
        if class_labels is not None:
            raise ValueError("This prior is unconditional (config.num_classes=0): class_labels must be None.")
        return
    if class_labels is None:
        raise ValueError(
            f"This prior is class-conditional (config.num_classes={num_classes}): class_labels are required, "
            f"one label in [0, {num_classes}) per sample."
        )
    if not isinstance(class_labels, torch.Tensor) or not is_integer_tensor(class_labels):
        raise TypeError(f"class_labels must be an integer torch.LongTensor, got {class_labels!r}.")
    if class_labels.shape != (batch_size,):
        raise ValueError(
            f"class_labels must have shape ({batch_size},), one per sample, got {tuple(class_labels.shape)}."
        )
    if is_tracing():
        return
    high_allowed = num_classes if null_label_id is None else null_label_id + 1
    low, high = class_labels.min().item(), class_labels.max().item()
    if low < 0 or high >= high_allowed:
        null = "" if null_label_id is None else f', or {null_label_id} for "no label" (config.null_label_id)'
        raise ValueError(
            f"class_labels must lie in [0, {num_classes}) (config.num_classes){null}, got [{low}, {high}]."
        )


def check_augment_labels(augment_labels: torch.Tensor | None, batch_size: int, augment_dim: int) -> None:
    """Raises a `TypeError`/`ValueError` unless `augment_labels` is `None` or a floating `(batch_size,
    augment_dim)` tensor of a prior with `config.augment_dim > 0`."""
    if augment_labels is None:
        return
    if augment_dim == 0:
        raise ValueError(
            "This prior takes no augmentation labels (config.augment_dim=0): augment_labels must be None."
        )
    if not isinstance(augment_labels, torch.Tensor) or not augment_labels.dtype.is_floating_point:
        raise TypeError(f"augment_labels must be a floating-point torch.Tensor, got {augment_labels!r}.")
    if augment_labels.shape != (batch_size, augment_dim):
        raise ValueError(
            f"augment_labels must have shape ({batch_size}, {augment_dim}) (batch, config.augment_dim), "
            f"got {tuple(augment_labels.shape)}."
        )


def prompt_as_prefix(
    prompt_codes: torch.Tensor | None, num_samples: int, config: VQPriorConfig, device: torch.device
) -> torch.LongTensor | None:
    """`prompt_codes` as the flat raster-order prefix `(num_samples, P)` the backbones take, on `device`, after
    checking it (`None` stays `None`): an integer tensor of shape `(num_samples or 1, P)` with 1 <= P < the grid's
    codes, or `(num_samples or 1, n, *code_shape[1:])`, the first n slices along the grid's first axis (top rows,
    first frames, the start of a recording); codes in [0, codebook_size)."""
    if prompt_codes is None:
        return None
    grid = tuple(config.code_shape)
    slice_shape = ", ".join(map(str, grid[1:]))
    accepted = f"(num_samples or 1, P) with 1 <= P < {config.num_codes}"
    if len(grid) > 1:
        accepted += f", or (num_samples or 1, n, {slice_shape}) with n < {grid[0]}"
    if not isinstance(prompt_codes, torch.Tensor) or not is_integer_tensor(prompt_codes):
        given = (
            f"dtype {prompt_codes.dtype}" if isinstance(prompt_codes, torch.Tensor) else repr(prompt_codes)
        )
        raise TypeError(f"prompt_codes must be an integer torch.LongTensor of shape {accepted}, got {given}.")
    shape = tuple(prompt_codes.shape)
    is_flat = len(shape) == 2 and 1 <= shape[1] < config.num_codes
    is_slices = (
        len(grid) > 1 and len(shape) == len(grid) + 1 and shape[2:] == grid[1:] and 1 <= shape[1] < grid[0]
    )
    if not (is_flat or is_slices):
        raise ValueError(
            f"prompt_codes must have shape {accepted} (config.code_shape={list(grid)}), got {shape}; a prompt "
            "as long as the whole grid leaves nothing to sample."
        )
    if shape[0] not in (1, num_samples):
        raise ValueError(
            f"prompt_codes holds {shape[0]} prompts but num_samples is {num_samples}: give one prompt per "
            "sample, or one for all of them."
        )
    low, high = prompt_codes.min().item(), prompt_codes.max().item()
    if low < 0 or high >= config.codebook_size:
        raise ValueError(
            f"prompt_codes must lie in [0, {config.codebook_size}) (config.codebook_size), got [{low}, {high}]."
        )
    return prompt_codes.reshape(shape[0], -1).long().expand(num_samples, -1).to(device)


def check_sampling_arguments(
    num_samples: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None = None,
) -> None:
    """Raises a `ValueError`/`TypeError` naming the first argument of [`VQPriorModel.generate`] that is out of
    range or of the wrong type."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(1234)) or None, got "
            f"{type(generator).__name__} {generator!r}."
        )
    if not is_int(num_samples) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}.")
    if not is_real(temperature) or not 0 < temperature < float("inf"):
        raise ValueError(
            f"temperature must be a number > 0 (1.0 = the model's distribution), got {temperature!r}."
        )
    if top_k is not None and (not is_int(top_k) or top_k < 1):
        raise ValueError(f"top_k must be None or an integer >= 1, got {top_k!r}.")
    if top_p is not None and (not is_real(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p!r}.")


def check_sampling_memory(rows: int, config: VQPriorConfig, available_bytes: int) -> None:
    """Raises a `ValueError` when sampling `rows` grids at once (samples times guidance passes) would need more
    memory than `available_bytes`: a rough lower bound on the working set (the transformer's key/value cache or the
    PixelCNN's row caches, and the logits), so that an impossible request fails at once with a way out instead of
    as an allocation error deep in the backbone."""
    if config.prior_type == "transformer":
        per_row = 2 * config.num_layers * config.num_codes * config.hidden_size
    else:
        per_row = config.num_layers * (config.kernel_size + 3) * config.code_shape[-1] * config.hidden_size
    needed = 4 * rows * (per_row + 4 * config.codebook_size + config.num_codes)
    if needed > available_bytes:
        raise ValueError(
            f"Sampling {rows} code grids at once needs at least {needed / 2**30:.1f} GiB, more than the "
            f"{available_bytes / 2**30:.1f} GiB available: draw fewer samples per call (the pipeline's "
            "batch_size samples in batches)."
        )


def available_memory(device: torch.device) -> int:
    """Bytes free for sampling on `device`: the accelerator's free memory, or the machine's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:  # transformers' remote-code check skips imports in try blocks: a plain environment may lack psutil
        import psutil
    except ImportError:
        return _meminfo_available()
    return psutil.virtual_memory().available


def _meminfo_available() -> int:
    """The kernel's MemAvailable (Linux), else free pages; without either, no limit is known."""
    try:
        with open("/proc/meminfo") as meminfo:
            return next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return sys.maxsize


def sampling_class_labels(
    class_labels: ClassLabels | None, num_samples: int, num_classes: int, device: torch.device
) -> torch.LongTensor | None:
    """`generate`'s class labels as a checked `(num_samples,)` LongTensor on `device` (`None` stays `None`)."""
    class_labels = class_labels_as_tensor(class_labels, num_samples)
    check_class_labels(class_labels, num_samples, num_classes)
    return None if class_labels is None else class_labels.to(device, torch.long)


def class_labels_as_tensor(class_labels: ClassLabels | None, num_samples: int) -> torch.Tensor | None:
    """An int or a 0-d integer tensor (the same class for every sample) or a sequence of ints becomes a
    LongTensor; other tensors and `None` pass through for [`check_class_labels`]."""
    if isinstance(class_labels, torch.Tensor) and class_labels.ndim == 0 and is_integer_tensor(class_labels):
        return torch.full((num_samples,), int(class_labels), dtype=torch.long, device=class_labels.device)
    if class_labels is None or isinstance(class_labels, torch.Tensor):
        return class_labels
    if is_int(class_labels):
        return torch.full((num_samples,), int(class_labels), dtype=torch.long)
    if isinstance(class_labels, Sequence) and all(is_int(label) for label in class_labels):
        return torch.tensor([int(label) for label in class_labels], dtype=torch.long)
    raise TypeError(f"class_labels must be an int, a list of ints or a LongTensor, got {class_labels!r}.")


def check_compile(compile: bool, use_cache: bool, config: VQPriorConfig) -> None:
    """`generate(compile=True)` samples through a static key/value cache: the transformer prior, with its cache."""
    if compile and (config.prior_type != "transformer" or not use_cache):
        raise ValueError(
            "compile=True samples through a static key/value cache: it needs the transformer prior and "
            f"use_cache=True (got prior_type={config.prior_type!r}, use_cache={use_cache})."
        )


__all__ = [
    "check_compile",
    "check_codes",
    "check_class_labels",
    "check_augment_labels",
    "prompt_as_prefix",
    "check_sampling_arguments",
    "class_labels_as_tensor",
    "ClassLabels",
]
