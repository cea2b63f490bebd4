# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""What differs between images, audio and video, defined once: the model, the data loaders, the pipelines, the CLI and
the model cards read these specs instead of branching on the modality's name.

The behaviours that need the data layer (decoding files, preprocessing) or the pipelines (writing files) are keyed by
`Modality.name` there; everything plain is here, where the model (which imports only torch and transformers) can
read it too.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Modality:
    """One kind of signal the VQ-VAE models."""

    name: str
    num_axes: int  # spatial/temporal axes of one example: the convolution rank
    input_name: str  # the model's main input, as transformers names it
    layout: str  # the shape of a batch
    channel_axis: int  # of a batch
    defaults: dict  # config fields left as None take these
    noun: str  # what one says of many examples, in cards ("images")
    raw_bit_depth: int  # of the files the signals come from, for the compression factor
    file_extensions: tuple[str, ...]  # the files the CLI and the data folders read
    rate_field: str | None = (
        None  # the config field giving the first axis's rate (audio and video are in time)
    )
    rate_unit: str = ""

    @property
    def is_visual(self) -> bool:
        """Images and video frames (8-bit pixels; PSNR on 8-bit values and SSIM apply)."""
        return self.name in ("image", "video")

    @property
    def frames_first(self) -> bool:
        """Batches hold frames before channels, `(B, T, C, H, W)` as transformers' video models take them; the
        3-D convolutions want `(B, C, T, H, W)`."""
        return self.channel_axis == 2

    def to_channels_first(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.transpose(1, 2) if self.frames_first else inputs

    def from_channels_first(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.transpose(1, 2) if self.frames_first else outputs

    def example_shape(self, in_channels: int, sample_size: list[int]) -> list[int]:
        """The shape of one example (no batch axis): (C, H, W), (C, T) or (T, C, H, W)."""
        shape = [*sample_size]
        shape.insert(self.channel_axis - 1, in_channels)
        return shape


IMAGE = Modality(
    name="image",
    num_axes=2,
    input_name="pixel_values",
    layout="(batch, channels, height, width)",
    channel_axis=1,
    # The paper's / Sonnet's CIFAR-10 model: 32x32 -> 8x8 codes.
    defaults={"in_channels": 3, "downsample_factors": [4, 4], "sample_size": [32, 32]},
    noun="images",
    raw_bit_depth=8,
    file_extensions=(".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"),
)
AUDIO = Modality(
    name="audio",
    num_axes=1,
    input_name="input_values",
    layout="(batch, channels, time)",
    channel_axis=1,
    # The paper's raw-speech model: 64x downsampling.
    defaults={"in_channels": 1, "downsample_factors": [64], "sample_size": [16384]},
    noun="audio",
    raw_bit_depth=16,
    file_extensions=(".aac", ".aiff", ".au", ".flac", ".m4a", ".mp3", ".ogg", ".opus", ".wav", ".wma"),
    rate_field="sampling_rate",
    rate_unit="Hz",
)
VIDEO = Modality(
    name="video",
    num_axes=3,
    input_name="pixel_values",
    layout="(batch, frames, channels, height, width)",
    channel_axis=2,
    # The Moving-MNIST setting: 16 frames of 64x64, downsampled (2, 4, 4).
    defaults={"in_channels": 3, "downsample_factors": [2, 4, 4], "sample_size": [16, 64, 64]},
    noun="videos",
    raw_bit_depth=8,
    file_extensions=(".avi", ".gif", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".webm"),
    rate_field="fps",
    rate_unit="fps",
)
MODALITIES = {modality.name: modality for modality in (IMAGE, AUDIO, VIDEO)}


def modality_named(name: str) -> Modality:
    """The spec of `name`; a `ValueError` naming the known modalities for any other."""
    if name not in MODALITIES:
        raise ValueError(f"Unknown modality={name!r}; expected one of {tuple(MODALITIES)}.")
    return MODALITIES[name]


__all__ = ["AUDIO", "IMAGE", "MODALITIES", "VIDEO", "Modality", "modality_named"]
