# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The checks that `VQVAEModel`'s public entry points make on their inputs and code grids: a clear error that
says what was given and what is accepted, before anything reaches a convolution."""

import torch
from transformers.utils import logging

from .number_checks import is_integer_tensor
from .tracing import is_tracing
from .configuration_vqvae import VQVAEConfig

logger = logging.get_logger(__name__)

# Inputs are documented to lie in [-1, 1]; beyond this magnitude they were almost surely not scaled.
FAR_OUTSIDE_RANGE = 2.0


def check_inputs(config: VQVAEConfig, inputs: torch.Tensor) -> None:
    """Raise a clear error for inputs the model cannot encode, naming what is accepted."""
    layout = config.modality_spec.layout
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"Expected a torch.Tensor of shape {layout}, got {type(inputs).__name__}.")
    if not inputs.is_floating_point():
        raise TypeError(
            f"Expected floating-point inputs scaled to [-1, 1], got dtype {inputs.dtype}; "
            "e.g. convert uint8 pixels with `x.float() / 127.5 - 1`."
        )
    channel_axis = config.modality_spec.channel_axis
    if inputs.ndim != config.num_axes + 2:
        raise ValueError(
            f"A {config.modality} VQ-VAE expects a {config.num_axes + 2}-D tensor {layout}, got shape "
            f"{tuple(inputs.shape)}{_missing_axis_hint(config, inputs, channel_axis)}."
        )
    if inputs.shape[channel_axis] != config.in_channels:
        channels_last = inputs.shape[-1] == config.in_channels
        raise ValueError(
            f"Expected {config.in_channels} channels at axis {channel_axis} of {layout}, got shape "
            f"{tuple(inputs.shape)}"
            + (
                f" (channels last? use `{_channels_first(inputs.ndim, channel_axis)}`)."
                if channels_last
                else "."
            )
        )
    if inputs.shape[0] == 0:
        raise ValueError(f"Got an empty batch, shape {tuple(inputs.shape)}; pass at least one example.")
    sizes = [s for axis, s in enumerate(inputs.shape[1:], 1) if axis != channel_axis]
    if any(size == 0 for size in sizes) or any(
        size % factor for size, factor in zip(sizes, config.downsample_factors, strict=True)
    ):
        nearest = [
            sorted({max(factor, size // factor * factor), -(-size // factor) * factor})
            for size, factor in zip(sizes, config.downsample_factors, strict=True)
        ]
        raise ValueError(
            f"Input sizes {sizes} of shape {tuple(inputs.shape)} are not divisible by downsample_factors "
            f"{config.downsample_factors}; nearest valid sizes per axis: {nearest}."
        )
    if is_tracing():  # the value checks below would break a compiled or exported graph
        return
    if not torch.isfinite(inputs).all():
        raise ValueError("Inputs contain NaN or infinite values.")
    if inputs.detach().abs().max().item() > FAR_OUTSIDE_RANGE:
        # One message text, so that transformers' `warning_once` shows it once per process.
        logger.warning_once(
            f"Inputs reach magnitudes above {FAR_OUTSIDE_RANGE}, far outside the [-1, 1] the model was trained "
            "on (e.g. pixels in [0, 255]): scale them first, e.g. `x / 127.5 - 1` for 8-bit pixels. "
            "Reconstructions and codes of such inputs are meaningless."
        )


def _missing_axis_hint(config: VQVAEConfig, inputs: torch.Tensor, channel_axis: int) -> str:
    """For an input one axis short: which axis to add, judged by where its channels are."""
    if inputs.ndim != config.num_axes + 1:
        return ""
    if inputs.shape[channel_axis - 1] == config.in_channels:  # one example
        return " (add a batch axis with `x.unsqueeze(0)`)"
    if inputs.shape[-1] == config.in_channels:  # one example, channels last
        return f" (one example with its channels last? use `{_channels_first(inputs.ndim, channel_axis - 1)}.unsqueeze(0)`)"
    return f" (add a channel axis with `x.unsqueeze({channel_axis})`)"


def check_codes(config: VQVAEConfig, codes: torch.Tensor) -> None:
    """Raise a clear error for code grids that `decode` cannot map back to signals."""
    grid = ", ".join(f"{size}" for size in config.code_shape)
    if not isinstance(codes, torch.Tensor) or not is_integer_tensor(codes):
        raise TypeError(
            f"codes must be an integer tensor (torch.long), got {getattr(codes, 'dtype', type(codes))}."
        )
    if codes.ndim != config.num_axes + 1 or 0 in codes.shape:
        raise ValueError(
            f"codes must have shape (batch, *code_grid) with a {config.num_axes}-D code grid (e.g. "
            f"(batch, {grid}) for sample_size {config.sample_size}), got shape {tuple(codes.shape)}."
        )
    if is_tracing():
        return
    if codes.min() < 0 or codes.max() >= config.codebook_size:
        raise ValueError(
            f"codes must lie in [0, {config.codebook_size}), got values in [{int(codes.min())}, "
            f"{int(codes.max())}]."
        )


def _channels_first(ndim: int, channel_axis: int) -> str:
    """The `x.permute(...)` call that moves a channels-last tensor's last axis to `channel_axis`."""
    order = list(range(ndim - 1))
    order.insert(channel_axis, ndim - 1)
    return f"x.permute({', '.join(map(str, order))})"


__all__ = ["FAR_OUTSIDE_RANGE", "check_codes", "check_inputs"]
