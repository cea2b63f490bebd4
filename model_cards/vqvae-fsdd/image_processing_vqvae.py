# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The image processor of a VQ-VAE: from PIL images or uint8 arrays to `pixel_values` in [-1, 1], and back.

It is the one definition of how an image becomes model input (the training data path, the pipeline's prompts and
the CLI use it) and is saved beside the model as `preprocessor_config.json`, so that

```python
>>> processor = AutoImageProcessor.from_pretrained("org/vqvae-cifar10")
>>> model = AutoModel.from_pretrained("org/vqvae-cifar10")
>>> codes = model.encode(**processor(image)).codes
>>> images = processor.postprocess(model.decode(codes))
```
"""

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

# PIL mode for each supported number of channels.
CHANNEL_MODES = {1: "L", 3: "RGB"}
OUTPUT_TYPES = ("pil", "np", "pt")
_ACCEPTED = "a PIL image or a uint8 array (H, W) or (H, W, C) with C in 1, 3, 4 (or a list of them)"


def to_8_bit(image: PIL.Image.Image) -> PIL.Image.Image:
    """16-bit greyscale scaled to 8 bits (PIL's `convert` would clip every value above 255 to white); 32-bit
    integer and float images are refused, since nothing says what range their values span."""
    if image.mode.startswith("I;16"):
        return PIL.Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
    if image.mode in ("I", "F"):
        raise ValueError(
            f"image mode {image.mode!r} (32-bit integer or float) has no known value range; convert it to 8 or "
            "16 bits per channel first."
        )
    return image


def flatten_alpha(image: PIL.Image.Image) -> PIL.Image.Image:
    """An image with transparency composited on white, as it shows on a page: converting it to RGB or L directly
    would keep the colours hidden under transparent pixels."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if not has_alpha:
        return image
    rgba = image.convert("RGBA")
    return PIL.Image.alpha_composite(PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)


def convert_mode(image: PIL.Image.Image, mode: str) -> PIL.Image.Image:
    """`image` in `mode` ("RGB" or "L"; a mode with alpha keeps it): 16-bit greyscale scaled to 8 bits,
    transparency composited on white, then PIL's conversion (RGB to L by ITU-R 601 luma; L to RGB by repeating
    the grey)."""
    image = to_8_bit(image)
    image = image if "A" in mode else flatten_alpha(image)
    return image.convert(mode) if image.mode != mode else image


def resize_to_cover(image: PIL.Image.Image, size: tuple[int, int]) -> PIL.Image.Image:
    """Resizes `image`, keeping its aspect ratio, to the smallest size that covers `size` = (height, width).

    For a square target this is the usual "resize the shorter side" step before a crop.
    """
    height, width = size
    scale = max(height / image.height, width / image.width)
    if scale == 1.0:
        return image
    new_size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    return image.resize(new_size, PIL.Image.Resampling.BICUBIC)


def image_to_tensor(image: PIL.Image.Image) -> torch.Tensor:
    """`PIL.Image` (mode L or RGB) -> `torch.FloatTensor` of shape (C, H, W) with values in [-1, 1]."""
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def as_pil_image(image) -> PIL.Image.Image:
    """A PIL image, or a uint8 array (H, W) / (H, W, C) as one; anything else is a `TypeError`/`ValueError` that
    says what is accepted."""
    if isinstance(image, PIL.Image.Image):
        return image
    if not isinstance(image, (np.ndarray, torch.Tensor)):
        raise TypeError(f"images must be {_ACCEPTED}; got {type(image).__name__}.")
    array = np.asarray(image)
    array = array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
        raise ValueError(f"images must be {_ACCEPTED}; got an array of shape {array.shape}.")
    # Floats are refused: [0, 1] and [0, 255] conventions cannot be told apart reliably.
    if array.dtype != np.uint8:
        raise ValueError(
            f"images must be {_ACCEPTED}; got dtype {array.dtype} (scale floats to uint8 first)."
        )
    return PIL.Image.fromarray(array)


def crop_box(image: PIL.Image.Image, size: tuple[int, int], top: int | None, left: int | None) -> tuple:
    """The (left, top, right, bottom) box of a `size` window, centred where `top`/`left` are not given."""
    height, width = size
    top = (image.height - height) // 2 if top is None else top
    left = (image.width - width) // 2 if left is None else left
    return left, top, left + width, top + height


class VQVAEImageProcessor(BaseImageProcessor):
    r"""
    Turns images into the input of a [`VQVAEModel`] and its outputs back into images.

    `preprocess`: converts each image to the model's mode (transparency composited on white, 16-bit greyscale
    scaled to 8 bits), resizes it to cover `size` keeping its aspect ratio (bicubic), crops the centre, and
    scales [0, 255] to [-1, 1]. `postprocess`: clamps to [-1, 1] and maps back to PIL images, uint8 arrays or
    [0, 1] tensors.

    Args:
        size (`dict[str, int]`, defaults to `{"height": 32, "width": 32}`):
            The model's image size (`config.sample_size`).
        num_channels (`int`, defaults to 3):
            3 for RGB, 1 for greyscale (`config.in_channels`).
    """

    model_input_names = ["pixel_values"]

    def __init__(self, size: dict[str, int] | None = None, num_channels: int = 3, **kwargs):
        super().__init__(**kwargs)
        size = size or {"height": 32, "width": 32}
        if set(size) != {"height", "width"} or not all(int(v) >= 1 for v in size.values()):
            raise ValueError(f"size must be {{'height': H, 'width': W}} with H, W >= 1, got {size!r}.")
        if num_channels not in CHANNEL_MODES:
            raise ValueError(f"num_channels must be one of {sorted(CHANNEL_MODES)}, got {num_channels!r}.")
        self.size = {"height": int(size["height"]), "width": int(size["width"])}
        self.num_channels = num_channels

    @classmethod
    def from_model_config(cls, config) -> "VQVAEImageProcessor":
        """The processor of a VQ-VAE config (image, or the frames of a video model)."""
        height, width = config.sample_size[-2:]
        return cls(size={"height": height, "width": width}, num_channels=config.in_channels)

    @property
    def target_size(self) -> tuple[int, int]:
        return self.size["height"], self.size["width"]

    def resized(self, image) -> PIL.Image.Image:
        """One image in the model's mode, resized to cover the model's size (not yet cropped)."""
        return resize_to_cover(
            convert_mode(as_pil_image(image), CHANNEL_MODES[self.num_channels]), self.target_size
        )

    def crop_to_tensor(
        self, image: PIL.Image.Image, top: int | None = None, left: int | None = None
    ) -> torch.Tensor:
        """A resized image's window at (`top`, `left`) (the centre by default) as `(C, H, W)` in [-1, 1]."""
        return image_to_tensor(image.crop(crop_box(image, self.target_size, top, left)))

    def preprocess(self, images, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """
        Args:
            images: one image or a list: PIL images, or uint8 arrays (H, W) / (H, W, C).
            return_tensors (`str`, defaults to `"pt"`): `"pt"` or `"np"`.

        Returns:
            [`BatchFeature`] with `pixel_values` of shape `(batch, num_channels, height, width)` in [-1, 1].
        """
        if kwargs:
            raise TypeError(f"VQVAEImageProcessor got unexpected argument(s) {sorted(kwargs)}.")
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        if not images:
            raise ValueError(f"images is empty; give {_ACCEPTED}.")
        pixel_values = torch.stack([self.crop_to_tensor(self.resized(image)) for image in images])
        return BatchFeature({"pixel_values": pixel_values}, tensor_type=return_tensors)

    def postprocess(self, pixel_values: torch.Tensor, output_type: str = "pil") -> list:
        """`(batch, C, H, W)` model outputs in [-1, 1] as PIL images, uint8 arrays `(H, W, C)` (`"np"`) or float
        tensors `(C, H, W)` in [0, 1] (`"pt"`)."""
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        unit = (pixel_values.detach().float().cpu() / 2 + 0.5).clamp(0, 1)
        if output_type == "pt":
            return list(unit)
        arrays = [np.round(image.permute(1, 2, 0).numpy() * 255).astype(np.uint8) for image in unit]
        if output_type == "np":
            return arrays
        return [PIL.Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array) for array in arrays]


__all__ = ["VQVAEImageProcessor"]
