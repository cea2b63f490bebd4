"""Video: decode with PyAV (or take decoded uint8 arrays), pick a fixed-length clip, crop, scale to [-1, 1].

Decoding does not go through `datasets.Video`, whose decoder needs torchcodec: video columns are read
undecoded (`{"bytes", "path"}`, see `columns.disable_media_decoding`) and decoded here. Only a clip's frames
are converted to RGB, so a clip of a long file costs little memory.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import av
import numpy as np
import PIL.Image
import torch

from ..models.number_checks import is_int
from ..models.vqvae.image_processing_vqvae import CHANNEL_MODES, VQVAEImageProcessor
from .cropping import window_start
from .image import crop_window, decode_image
from .robustness import BadExampleError

# PyAV pixel format of the lossless clips `encode_video` writes, by channel count.
_PIXEL_FORMATS = {1: "gray", 3: "rgb24"}


FrameChooser = Callable[[int, float | None], Sequence[int]]
"""Picks the frames to keep from a video's frame count and frame rate (`None` when unknown)."""


def decode_video(value: Any, choose_frames: FrameChooser | None = None) -> tuple[np.ndarray, float | None]:
    """
    Decodes one video, or the frames of it that `choose_frames` picks.

    Args:
        value: An undecoded `datasets.Video` value `{"bytes", "path"}`; encoded bytes; a file path (any
            container FFmpeg reads: MP4, AVI, MKV, WebM, GIF, ...); a list of frame images (PIL images or
            undecoded `datasets.Image` values, as a `List(Image())` column holds); or an integer array (or
            nested list) of decoded frames of shape (T, H, W) or (T, H, W, C), C in 1, 3, 4, values in [0, 255].
        choose_frames (`Callable[[int, float | None], Sequence[int]]`, *optional*): Given the frame count and
            rate, the indices of the frames to return, in order (repeats allowed). Only chosen frames are
            converted to RGB. A file is decoded once when its container states the right frame count, else
            twice (once to count). All frames when `None`.

    Returns:
        `tuple[np.ndarray, float | None]`: frames, uint8 of shape (T, H, W, C), and the file's frame rate
        (`None` for arrays, which carry none).

    Raises:
        BadExampleError: when the value cannot be decoded, has no frames, or has an unsupported shape, and
            whatever `choose_frames` raises.
        ValueError: when `choose_frames` picks no frame or one outside the video.
    """
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if value is None:
        raise BadExampleError("video is missing (None)")
    if isinstance(value, (bytes, bytearray, str, os.PathLike)):
        return _read_with_pyav(value, choose_frames)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (dict, PIL.Image.Image)):
        chosen = _chosen(choose_frames, len(value), None)
        return _stacked([np.asarray(decode_image(value[index], "RGB")) for index in chosen]), None
    try:
        frames = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise BadExampleError(f"video frames do not form an array: {error}") from error
    frames = _as_uint8_video_array(frames)
    return frames[_chosen(choose_frames, len(frames), None)], None


def _read_with_pyav(
    value: bytes | bytearray | str | os.PathLike, choose_frames: FrameChooser | None
) -> tuple[np.ndarray, float | None]:
    try:
        with _open_container(value) as container:
            stream = container.streams.video[0]  # IndexError when the file has no video stream
            fps = float(stream.average_rate) if stream.average_rate else None
            stated_count = stream.frames  # 0 when the container does not say
            chosen = _chosen_by_stated_count(choose_frames, stated_count, fps)
            frames, count = _rgb_frames(container.decode(stream), chosen)
        if choose_frames is not None and (not chosen or count != stated_count):
            # Nothing chosen yet, or from a wrong count: choose from the frames the stream holds, decode again.
            chosen = _chosen(choose_frames, count, fps)
            with _open_container(value) as container:
                frames, _ = _rgb_frames(container.decode(container.streams.video[0]), chosen)
    except (av.FFmpegError, IndexError, OSError) as error:
        raise BadExampleError(f"cannot decode video: {error}") from error
    return _stacked(frames), fps


def _chosen(choose_frames: FrameChooser | None, count: int, fps: float | None) -> list[int]:
    """The frames `choose_frames` picks from `count` frames (every frame without a chooser), checked."""
    if choose_frames is None:
        return list(range(count))
    chosen = list(choose_frames(count, fps))
    if not chosen or not all(is_int(index) and 0 <= index < count for index in chosen):
        raise ValueError(f"choose_frames must pick at least one frame index in [0, {count}), got {chosen}.")
    return [int(index) for index in chosen]


def _chosen_by_stated_count(
    choose_frames: FrameChooser | None, stated_count: int, fps: float | None
) -> list[int] | None:
    """The frames to convert on the first pass: all of them without a chooser; the chooser's pick from the
    container's stated frame count; none when there is no count, or the stated count is too short for the
    chooser (the first pass then only counts the frames)."""
    if choose_frames is None:
        return None
    if not stated_count:
        return []
    try:
        return _chosen(choose_frames, stated_count, fps)
    except BadExampleError:
        return []


def _stacked(frames: list[np.ndarray]) -> np.ndarray:
    if not frames:
        raise BadExampleError("video has no frames")
    if len({frame.shape for frame in frames}) > 1:
        raise BadExampleError(
            f"video has frames of several sizes: {sorted({frame.shape for frame in frames})}"
        )
    return np.stack(frames)


def _open_container(value: bytes | bytearray | str | os.PathLike) -> av.container.InputContainer:
    return av.open(io.BytesIO(value) if isinstance(value, (bytes, bytearray)) else value)


def _rgb_frames(decoded, chosen: list[int] | None) -> tuple[list[np.ndarray], int]:
    """RGB arrays of the `chosen` frames, in their order (repeats included), or of every frame for `None`; and
    the number of frames decoded. The whole stream is decoded, to count its frames, but only chosen frames are
    converted; chosen frames past the stream's end are missing (the caller then chooses again from the count)."""
    if chosen is None:
        frames = [frame.to_ndarray(format="rgb24") for frame in decoded]
        return frames, len(frames)
    wanted, kept, count = set(chosen), {}, 0
    for count, frame in enumerate(decoded, start=1):
        if count - 1 in wanted:
            kept[count - 1] = frame.to_ndarray(format="rgb24")
    return [kept[index] for index in chosen if index in kept], count


def _as_uint8_video_array(frames: np.ndarray) -> np.ndarray:
    frames = frames[..., None] if frames.ndim == 3 else frames
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4) or frames.shape[0] == 0:
        raise BadExampleError(
            f"video array must be (T, H, W) or (T, H, W, C), C in 1, 3, 4; got {frames.shape}"
        )
    if not np.issubdtype(frames.dtype, np.integer) or frames.min() < 0 or frames.max() > 255:
        raise BadExampleError(f"video array must hold integers in [0, 255]; got dtype {frames.dtype}")
    return frames.astype(np.uint8, copy=False)


def encode_video(frames: np.ndarray, fps: int = 8) -> bytes:
    """
    Encodes frames losslessly as PNG-coded AVI, which [`decode_video`] reads back exactly.

    Used to store generated clips: `datasets` returns array columns as nested Python lists, about 100x slower
    to turn back into arrays than this file is to decode (~1.5 ms for 16 frames of 64x64), and PNG shrinks
    synthetic frames ~10x.

    Args:
        frames (`np.ndarray` of shape (T, H, W) or (T, H, W, C), C in 1, 3): uint8 frames.
        fps (`int`, defaults to 8): Frame rate recorded in the file.

    Returns:
        `bytes` of the AVI file.
    """
    frames = _as_uint8_video_array(np.asarray(frames))
    if frames.shape[-1] not in _PIXEL_FORMATS:
        raise ValueError(f"encode_video takes 1 or 3 channels, got frames of shape {frames.shape}.")
    pixel_format = _PIXEL_FORMATS[frames.shape[-1]]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="avi") as container:
        stream = container.add_stream("png", rate=fps)
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], pixel_format
        for frame in frames:
            image = frame[..., 0] if pixel_format == "gray" else frame
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format=pixel_format)))
        container.mux(stream.encode())  # flush
    return buffer.getvalue()


# Source rates within this fraction of the clip rate count as equal: containers round rates (GIF stores frame
# durations in centiseconds, so an 8 fps GIF may read as 8.33 fps), and resampling them would drop a frame.
FRAME_RATE_TOLERANCE = 0.05


def clip_frame_indices(
    num_available: int,
    num_frames: int,
    step: float = 1.0,
    random: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """
    Frame indices of one clip of `num_frames` frames taken every `step` source frames.

    Args:
        num_available (`int`): Frames in the video.
        num_frames (`int`): Frames in the clip.
        step (`float`, defaults to 1.0): Source frames per clip frame (source fps / target fps).
        random (`bool`, defaults to `False`): Random start (training) instead of the centred clip.
        generator (`torch.Generator`, *optional*): RNG for the random start; torch's global RNG if `None`.

    Returns:
        `list[int]` of length `num_frames`.

    Raises:
        BadExampleError: when the video is too short for one clip.
    """
    span = round((num_frames - 1) * step) + 1
    if span > num_available:
        raise BadExampleError(f"video has {num_available} frames; a clip of {num_frames} frames needs {span}")
    start = window_start(num_available, span, random, generator)
    return [start + round(k * step) for k in range(num_frames)]


@dataclass
class VideoPreprocessor:
    """
    Turns one raw video into a model input: decode -> pick a clip -> RGB/L -> resize to cover `size` -> crop.

    Args:
        num_frames (`int`): Frames per clip (`config.sample_size[0]`).
        size (`tuple[int, int]`): Frame (height, width) (`config.sample_size[1:]`).
        channels (`int`, defaults to 3): 3 for RGB, 1 for grayscale (`config.in_channels`).
        fps (`float`, *optional*): Clip frame rate (`config.fps`). Files whose rate is known are sampled at
            this rate; arrays, and every file when `None`, contribute consecutive frames.
        random_clip (`bool`, defaults to `False`): Random clip start and crop (training) instead of centred.
        generator (`torch.Generator`, *optional*): RNG for random clips; torch's global RNG if `None`.

    Calling it returns a `torch.FloatTensor` of shape (num_frames, channels, height, width) in [-1, 1], or
    raises `BadExampleError`.
    """

    num_frames: int
    size: tuple[int, int]
    channels: int = 3
    fps: float | None = None
    random_clip: bool = False
    generator: torch.Generator | None = None

    modality: ClassVar[str] = "video"

    def __post_init__(self):
        if self.channels not in CHANNEL_MODES:
            raise ValueError(f"Videos need channels in {sorted(CHANNEL_MODES)}, got {self.channels}.")
        self.size = tuple(self.size)
        height, width = self.size
        self.processor = VQVAEImageProcessor(
            size={"height": height, "width": width}, num_channels=self.channels
        )

    def __call__(self, value: Any) -> torch.Tensor:
        frames, _ = decode_video(value, self.clip_frame_indices)
        clip = [self.processor.resized(decode_image(frame, CHANNEL_MODES[self.channels])) for frame in frames]
        # One crop window for the whole clip, so the crop does not jitter from frame to frame.
        top, left = crop_window(clip[0], self.size, self.random_clip, self.generator)
        return torch.stack([self.processor.crop_to_tensor(frame, top, left) for frame in clip])

    def clip_frame_indices(self, num_available: int, source_fps: float | None) -> list[int]:
        """The source frames of one clip at `fps` (consecutive ones when either rate is unknown)."""
        step = source_fps / self.fps if source_fps and self.fps else 1.0
        if abs(step - 1) < FRAME_RATE_TOLERANCE:
            step = 1.0
        return clip_frame_indices(num_available, self.num_frames, step, self.random_clip, self.generator)
