"""The Moving-MNIST protocol (Srivastava et al., 2015) over any source of small grayscale images.

Each clip moves `num_sprites` images picked at random across a black canvas in straight lines, bouncing off
the borders, and composites them with a pixel-wise maximum, as the original generator does. The original
uses MNIST digits (28x28) on a 64x64 canvas; any equal-sized images work (Fashion-MNIST, procedural digits).
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset, Features
from datasets import Video as VideoFeature

from .image import decode_image
from .video import encode_video

SPEED_RANGE = (2.0, 5.0)  # pixels per frame


def bouncing_trajectories(
    rng: np.random.Generator,
    num_frames: int,
    num_objects: int,
    extent: float | np.ndarray,
    speed_range: tuple[float, float] = SPEED_RANGE,
) -> np.ndarray:
    """
    Positions of objects moving in straight lines inside a box and reflecting off its walls.

    Args:
        rng (`np.random.Generator`): Source of the start positions, directions and speeds.
        num_frames (`int`): Time steps.
        num_objects (`int`): Objects moving independently.
        extent (`float` or `np.ndarray` of shape (2,)): Positions stay in [0, extent] (per axis (y, x)).
        speed_range (`tuple[float, float]`, defaults to `SPEED_RANGE`): Speed drawn uniformly, per frame.

    Returns:
        `np.ndarray` of shape (num_frames, num_objects, 2), float (y, x) positions within [0, extent].
    """
    extent = np.broadcast_to(np.asarray(extent, dtype=np.float64), (2,))
    if speed_range[1] > extent.min():
        raise ValueError(f"speed_range {speed_range} must stay below the room to move, {extent.min()}.")
    position = rng.uniform(0.0, extent, size=(num_objects, 2))
    angle = rng.uniform(0.0, 2 * np.pi, size=num_objects)
    velocity = np.stack([np.sin(angle), np.cos(angle)], axis=-1) * rng.uniform(
        *speed_range, size=(num_objects, 1)
    )
    trajectory = np.empty((num_frames, num_objects, 2))
    for frame in range(num_frames):
        trajectory[frame] = position
        position = position + velocity
        # A speed below the extent crosses at most one wall per step, so one reflection restores the range.
        below, above = position < 0, position > extent
        position = np.where(below, -position, np.where(above, 2 * extent - position, position))
        velocity = np.where(below | above, -velocity, velocity)
    return trajectory


def make_moving_mnist(
    images: np.ndarray | Dataset,
    num_examples: int,
    num_frames: int = 16,
    canvas_size: int = 64,
    num_sprites: int = 2,
    seed: int = 0,
    image_column: str = "image",
    fps: int = 8,
) -> Dataset:
    """
    Builds a Moving-MNIST-style video dataset.

    Args:
        images (`np.ndarray` of shape (N, h, w), uint8, or `datasets.Dataset`): The sprites, e.g. MNIST or
            Fashion-MNIST digits; a dataset's `image_column` is decoded and converted to grayscale.
        num_examples (`int`): Clips to generate.
        num_frames (`int`, defaults to 16): Frames per clip.
        canvas_size (`int`, defaults to 64): Side of the square canvas.
        num_sprites (`int`, defaults to 2): Sprites per clip.
        seed (`int`, defaults to 0): Seed of every random choice; equal seeds give equal datasets.
        image_column (`str`, defaults to `"image"`): Column of `images` when it is a `Dataset`.
        fps (`int`, defaults to 8): Frame rate recorded in the clips (the default `VQVAEConfig.fps`).

    Returns:
        `Dataset` with one column `"video"` (`Video(decode=False)`): `{"bytes", "path": None}` of lossless
        clips (see `encode_video`) that decode to uint8 (num_frames, canvas_size, canvas_size, 3) gray frames.
    """
    sprites = _sprite_array(images, image_column)
    if num_examples < 1 or num_frames < 1 or num_sprites < 1:
        raise ValueError(
            f"num_examples, num_frames and num_sprites must be at least 1, got {num_examples}, {num_frames} and "
            f"{num_sprites}."
        )
    room = canvas_size - max(sprites.shape[1:])
    if room < SPEED_RANGE[1]:
        raise ValueError(
            f"canvas_size={canvas_size} leaves {sprites.shape[1]}x{sprites.shape[2]} sprites {room} pixels to "
            f"move in; they move up to {SPEED_RANGE[1]:g} pixels a frame, so canvas_size must be at least "
            f"{max(sprites.shape[1:]) + int(np.ceil(SPEED_RANGE[1]))}."
        )
    rng = np.random.default_rng(seed)
    clips = [
        {
            "bytes": encode_video(_render_clip(rng, sprites, num_frames, canvas_size, num_sprites), fps),
            "path": None,
        }
        for _ in range(num_examples)
    ]
    return Dataset.from_dict({"video": clips}, features=Features({"video": VideoFeature(decode=False)}))


def _render_clip(
    rng: np.random.Generator, sprites: np.ndarray, num_frames: int, canvas_size: int, num_sprites: int
) -> np.ndarray:
    """One clip, uint8 (num_frames, canvas_size, canvas_size): random sprites bouncing, max-composited."""
    sprite_height, sprite_width = sprites.shape[1:]
    extent = np.array([canvas_size - sprite_height, canvas_size - sprite_width])
    chosen = sprites[rng.integers(len(sprites), size=num_sprites)]
    trajectory = np.rint(bouncing_trajectories(rng, num_frames, num_sprites, extent)).astype(int)
    video = np.zeros((num_frames, canvas_size, canvas_size), dtype=np.uint8)
    for frame, positions in zip(video, trajectory, strict=True):
        for sprite, (top, left) in zip(chosen, positions, strict=True):
            window = frame[top : top + sprite_height, left : left + sprite_width]
            np.maximum(window, sprite, out=window)
    return video


def _sprite_array(images: np.ndarray | Dataset, image_column: str) -> np.ndarray:
    if isinstance(images, Dataset):
        images = np.stack([np.asarray(decode_image(value, "L")) for value in images[image_column]])
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(
            f"Sprites must be a non-empty uint8 array (N, h, w), got {images.dtype} {images.shape}."
        )
    return images
