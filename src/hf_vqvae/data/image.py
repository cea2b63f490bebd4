"""Images: decode whatever a dataset holds, then resize, crop and scale to model inputs in [-1, 1]."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch

from ..models.vqvae.image_processing_vqvae import CHANNEL_MODES, VQVAEImageProcessor, convert_mode, to_8_bit
from .cropping import window_start
from .robustness import BadExampleError


def decode_image(value: Any, mode: str | None = None) -> PIL.Image.Image:
    """
    Decodes one image and converts it to `mode`.

    Args:
        value: A `PIL.Image.Image`; an undecoded `datasets.Image` value `{"bytes", "path"}`; encoded bytes; a
            file path; or an integer array (or nested list / tensor) of shape (H, W) or (H, W, C), C in 1, 3,
            4, with values in [0, 255].
        mode (`str`, *optional*): PIL mode to convert to, e.g. `"RGB"` or `"L"`; an image with transparency is
            composited on white first when `mode` has no alpha channel.

    Returns:
        `PIL.Image.Image`, fully loaded.

    Raises:
        BadExampleError: when the value cannot be decoded or has an unsupported shape.
    """
    try:
        image = _open_image(value)
        image.load()  # decode now, so a truncated file fails here rather than later in a resize
        # As `datasets`' own decoder does: a photo's EXIF orientation says which way is up.
        image = PIL.ImageOps.exif_transpose(image)
        image = convert_mode(image, mode) if mode is not None else to_8_bit(image)
    except (OSError, ValueError, TypeError, PIL.Image.DecompressionBombError) as error:
        raise BadExampleError(f"cannot decode image: {error}") from error
    if image.width == 0 or image.height == 0:
        raise BadExampleError(f"image has zero size {image.size}")
    return image


def _open_image(value: Any) -> PIL.Image.Image:
    if isinstance(value, PIL.Image.Image):
        return value
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if value is None:
        raise BadExampleError("image is missing (None)")
    if isinstance(value, (bytes, bytearray)):
        return PIL.Image.open(io.BytesIO(value))
    if isinstance(value, (str, os.PathLike)):
        return PIL.Image.open(value)
    return PIL.Image.fromarray(_as_uint8_image_array(np.asarray(value)))


def _as_uint8_image_array(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
        raise BadExampleError(
            f"image array must have shape (H, W) or (H, W, C) with C in 1, 3, 4; got {array.shape}"
        )
    # Floats are refused: [0, 1] and [0, 255] conventions cannot be told apart reliably.
    if not np.issubdtype(array.dtype, np.integer) or array.min(initial=0) < 0 or array.max(initial=0) > 255:
        raise BadExampleError(f"image array must hold integers in [0, 255]; got dtype {array.dtype}")
    return array.astype(np.uint8, copy=False)


@dataclass
class ImagePreprocessor:
    """
    Turns one raw image into a model input: decode, then the model's image processor ([`VQVAEImageProcessor`]:
    RGB/L -> resize to cover `size` -> crop -> [-1, 1]), with a random crop while training.

    Args:
        size (`tuple[int, int]`): Output (height, width), usually `config.sample_size`.
        channels (`int`, defaults to 3): 3 for RGB, 1 for grayscale (`config.in_channels`).
        random_crop (`bool`, defaults to `False`): Random crop (training augmentation), not a centre crop.
        generator (`torch.Generator`, *optional*): RNG for random crops; torch's global RNG if `None`
            (see `cropping.py` for how this interacts with resuming).

    Calling it returns a `torch.FloatTensor` of shape (channels, height, width) in [-1, 1], or raises
    `BadExampleError`.
    """

    size: tuple[int, int]
    channels: int = 3
    random_crop: bool = False
    generator: torch.Generator | None = None

    modality: ClassVar[str] = "image"

    def __post_init__(self):
        if self.channels not in CHANNEL_MODES:
            raise ValueError(f"Images need channels in {sorted(CHANNEL_MODES)}, got {self.channels}.")
        self.size = tuple(self.size)
        height, width = self.size
        self.processor = VQVAEImageProcessor(
            size={"height": height, "width": width}, num_channels=self.channels
        )

    def __call__(self, value: Any) -> torch.Tensor:
        image = self.processor.resized(decode_image(value, CHANNEL_MODES[self.channels]))
        return self.processor.crop_to_tensor(
            image, *crop_window(image, self.size, self.random_crop, self.generator)
        )


def crop_window(
    image: PIL.Image.Image, size: tuple[int, int], random: bool, generator: torch.Generator | None = None
) -> tuple[int, int]:
    """(top, left) of a `size` crop of a resized image: random while training, else the centre."""
    height, width = size
    return (
        window_start(image.height, height, random, generator),
        window_start(image.width, width, random, generator),
    )
