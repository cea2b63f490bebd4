"""The video processor of a video VQ-VAE: from clips (lists of frames) to `pixel_values` `(B, T, C, H, W)` in
[-1, 1], and back; each frame goes through the image processor's steps. Saved beside the model as
`video_preprocessor_config.json`.

transformers' `AutoVideoProcessor` needs torchvision; without it, load the processor with
`VQVAEVideoProcessor.from_pretrained(folder)` (or from the folder's code, `get_class_from_dynamic_module`).
"""

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.video_processing_utils import VideoProcessorMixin

from .image_processing_vqvae import VQVAEImageProcessor

_ACCEPTED = "a list of frames (PIL images or uint8 arrays (H, W[, C])) or a uint8 array (T, H, W[, C])"


def is_one_clip(videos) -> bool:
    """Whether `videos` is one clip (frames, or an array `(T, H, W[, C])`) rather than a list of clips."""
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        return videos.ndim in (3, 4)
    first = videos[0] if isinstance(videos, (list, tuple)) and videos else None
    return isinstance(first, PIL.Image.Image) or (
        isinstance(first, (np.ndarray, torch.Tensor)) and first.ndim in (2, 3)
    )


class VQVAEVideoProcessor(VideoProcessorMixin):
    r"""
    Turns clips into the input of a video [`VQVAEModel`] and its outputs back into frames.

    `preprocess`: takes the first `num_frames` frames of each clip (frames at the model's `fps`; a shorter clip
    is a `ValueError`), then per frame what [`VQVAEImageProcessor`] does (the model's mode, resize to cover,
    centre crop, [-1, 1]). `postprocess`: lists of PIL frames, uint8 arrays `(T, H, W, C)` or [0, 1] tensors
    `(T, C, H, W)`.

    Args:
        num_frames (`int`, defaults to 16): frames per clip (`config.sample_size[0]`).
        size (`dict[str, int]`, defaults to `{"height": 64, "width": 64}`): the frame size.
        num_channels (`int`, defaults to 3): 3 for RGB, 1 for greyscale (`config.in_channels`).
        fps (`int`, defaults to 8): the frame rate the model was trained at (`config.fps`).
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        num_frames: int = 16,
        size: dict[str, int] | None = None,
        num_channels: int = 3,
        fps: int = 8,
        **kwargs,
    ):
        super().__init__(**kwargs)
        size = size or {"height": 64, "width": 64}
        self.frame_processor = VQVAEImageProcessor(size=size, num_channels=num_channels)
        self.num_frames, self.size, self.num_channels, self.fps = (
            int(num_frames),
            dict(size),
            num_channels,
            fps,
        )

    @classmethod
    def from_model_config(cls, config) -> "VQVAEVideoProcessor":
        """The video processor of a video VQ-VAE config."""
        num_frames, height, width = config.sample_size
        return cls(
            num_frames=num_frames,
            size={"height": height, "width": width},
            num_channels=config.in_channels,
            fps=config.fps,
        )

    def to_dict(self) -> dict:
        fields = {key: getattr(self, key) for key in ("num_frames", "size", "num_channels", "fps")}
        if getattr(self, "auto_map", None):
            fields["auto_map"] = self.auto_map
        return {**fields, "video_processor_type": type(self).__name__}

    def clip_to_tensor(self, frames) -> torch.Tensor:
        """One clip as `(num_frames, C, H, W)` in [-1, 1]: its first `num_frames` frames, each processed."""
        if isinstance(frames, (np.ndarray, torch.Tensor)) and np.asarray(frames).ndim in (3, 4):
            frames = list(np.asarray(frames))
        if not isinstance(frames, (list, tuple)) or not frames:
            raise ValueError(f"videos must be {_ACCEPTED} (or a list of clips); got {type(frames).__name__}.")
        if len(frames) < self.num_frames:
            raise ValueError(
                f"A clip of {len(frames)} frames is too short: this model takes {self.num_frames} frames at "
                f"{self.fps} fps."
            )
        return self.frame_processor.preprocess(list(frames[: self.num_frames]))["pixel_values"]

    def preprocess(self, videos, return_tensors: str | None = "pt", **kwargs) -> BatchFeature:
        """
        Args:
            videos: one clip or a list of clips: lists of frames (PIL images or uint8 arrays) or uint8 arrays
                `(T, H, W[, C])`.
            return_tensors (`str`, defaults to `"pt"`): `"pt"` or `"np"`.

        Returns:
            [`BatchFeature`] with `pixel_values` `(batch, num_frames, num_channels, height, width)` in [-1, 1].
        """
        if kwargs:
            raise TypeError(f"VQVAEVideoProcessor got unexpected argument(s) {sorted(kwargs)}.")
        clips = [videos] if is_one_clip(videos) else list(videos)
        pixel_values = torch.stack([self.clip_to_tensor(clip) for clip in clips])
        return BatchFeature({"pixel_values": pixel_values}, tensor_type=return_tensors)

    def __call__(self, videos, **kwargs) -> BatchFeature:
        return self.preprocess(videos, **kwargs)

    def postprocess(self, pixel_values: torch.Tensor, output_type: str = "pil") -> list:
        """`(batch, T, C, H, W)` model outputs in [-1, 1] as one list of frames (or one array/tensor) per clip."""
        processed = [self.frame_processor.postprocess(clip, output_type) for clip in pixel_values]
        if output_type == "pil":
            return processed
        return [np.stack(frames) if output_type == "np" else torch.stack(frames) for frames in processed]


__all__ = ["VQVAEVideoProcessor"]
