# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Prompts for prompted generation: a file or array turned into the first codes that the prior continues.

The prompt is preprocessed as the VQ-VAE's validation data is (resized or cropped to the model's size, scaled to
[-1, 1]; audio mixed to mono, resampled and brought to the model's level; video cut to the model's clip), encoded,
and the first `prompt_fraction` of its code grid's first axis is kept: the top rows of an image, the start of a
recording, the code slices of a clip's first frames. The prior samples the rest (`generate(prompt_codes=...)`).
"""

import os
from typing import Any

import torch

from .number_checks import is_real
from .remote_code import is_remote_code
from .configuration_vqvae import VQVAEConfig
from .modeling_vqvae import VQVAEModel
from .processors import processor_for

ACCEPTED_PROMPTS = {
    "image": "a PIL image, an image file path or bytes, or a uint8 array (H, W[, C])",
    "audio": 'an audio file path or bytes, or a {"array": (T,) or (C, T), "sampling_rate": int} dict',
    "video": "a list of frames (PIL images), a video file path or bytes, or a uint8 array (T, H, W[, C])",
}


def prompt_slices(config: VQVAEConfig, prompt_fraction: float) -> int:
    """How many slices along the code grid's first axis a prompt keeps: `prompt_fraction` of them, rounded, at
    least 1 and at most all but one."""
    if not is_real(prompt_fraction) or not 0 < prompt_fraction < 1:
        raise ValueError(
            f"prompt_fraction must lie in (0, 1): the share of the code grid's first axis that the prompt "
            f"keeps (rows, time, frames), got {prompt_fraction!r}."
        )
    first_axis = config.code_shape[0]
    if first_axis < 2:
        raise ValueError(
            f"This model's code grid {config.code_shape} has no first axis to split a prompt along."
        )
    return min(max(round(prompt_fraction * first_axis), 1), first_axis - 1)


def preprocess_one(vqvae: VQVAEModel, value: Any, name: str = "inputs") -> torch.Tensor:
    """One image, recording or clip (see `ACCEPTED_PROMPTS`) as model input, as validation preprocesses it; a
    `ValueError` naming `name` and what is accepted when it cannot be read as the model's modality."""
    config = vqvae.config
    try:
        return read_example(config, value)
    except (ValueError, TypeError, OSError) as error:
        raise ValueError(
            f"{name}: cannot read {type(value).__name__} as input to this {config.modality} model ({error}); "
            f"it takes {ACCEPTED_PROMPTS[config.modality]}."
        ) from error


def read_example(config: VQVAEConfig, value: Any) -> torch.Tensor:
    """One example as model input without the batch axis: read by the package's data readers (files, bytes and
    arrays, resampled and cropped as validation data), or, where this code runs as a folder's remote code, by the
    model's processor (in-memory images, frames and audio dicts only): remote code does not mix with whatever
    version of the package may be installed."""
    if is_remote_code(VQVAEModel):
        return processed_in_memory(config, value)
    try:
        # Absolute, and in a try block, on purpose: a folder's remote code carries the models and the pipeline but
        # not the data readers (datasets, PyAV, soundfile), and transformers requires every package that a remote
        # file imports outside a try block to be installed.
        from hf_vqvae.data.preprocessing import build_preprocessor
    except ModuleNotFoundError as error:
        raise ImportError(
            f"Reading inputs needs the data readers' packages ({error.name} is missing): "
            "pip install 'hf_vqvae[train]'."
        ) from error
    return build_preprocessor(config, train=False)(value)


def processed_in_memory(config: VQVAEConfig, value: Any) -> torch.Tensor:
    """An in-memory example through the model's processor, for a folder's remote code, which carries no data
    readers."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise ValueError(
            "a folder's remote code reads examples in memory only (a PIL image, a list of frames, an {'array', "
            "'sampling_rate'} dict); to read files, install hf_vqvae and load pipeline('vq-sample', model=...)"
        )
    processor = processor_for(config)
    if config.modality == "audio":
        if not isinstance(value, dict) or not {"array", "sampling_rate"} <= value.keys():
            raise TypeError("audio in memory is a {'array', 'sampling_rate'} dict")
        features = processor(value["array"], sampling_rate=value["sampling_rate"])
    else:
        features = processor(value)
    return features[config.modality_spec.input_name][0]


@torch.no_grad()
def encode_prompt(vqvae: VQVAEModel, prompt: Any, prompt_fraction: float = 0.5) -> torch.LongTensor:
    """
    The codes that a prompt fixes.

    Args:
        vqvae ([`VQVAEModel`]): the model whose prior will continue the prompt.
        prompt: one example of the model's modality (see `ACCEPTED_PROMPTS`).
        prompt_fraction (`float`, defaults to 0.5): share of the first axis of the code grid to keep.

    Returns:
        `torch.LongTensor` of shape `(1, n, *code_shape[1:])`, the first n slices of the prompt's code grid.

    Raises:
        ValueError: when the prompt cannot be read as the model's modality, naming what is accepted.
    """
    config = vqvae.config
    kept = prompt_slices(config, prompt_fraction)
    if prompt is None or (isinstance(prompt, (list, tuple, str, bytes)) and len(prompt) == 0):
        raise ValueError(
            f"prompt is empty; this {config.modality} model takes {ACCEPTED_PROMPTS[config.modality]}."
        )
    inputs = preprocess_one(vqvae, prompt, "prompt")
    codes = vqvae.encode(inputs[None].to(vqvae.device, vqvae.dtype)).codes
    if codes.shape[1] < kept:
        raise ValueError(
            f"prompt is too short: it gives {codes.shape[1]} of the {kept} code slices that prompt_fraction="
            f"{prompt_fraction} keeps; give a longer prompt or a smaller prompt_fraction."
        )
    return codes[:, :kept]


__all__ = ["ACCEPTED_PROMPTS", "encode_prompt", "preprocess_one", "prompt_slices"]
