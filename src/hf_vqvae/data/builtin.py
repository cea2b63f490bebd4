"""Built-in offline datasets: procedurally generated, deterministic from a seed, small and quick to build.

They stand in for real data in the offline demo and the tests, and are addressed by name through
`load_raw_dataset("builtin:<name>")`:

| name | columns | content |
|---|---|---|
| `builtin:shapes` | `image`, `label` | a circle, square, triangle or star; random colours, size, place |
| `builtin:tones` | `audio` (WAV), `label` | a sine, harmonic tone, chirp or noise burst under an envelope |
| `builtin:sprites` | `video`, `label` | sprites of one shape kind bouncing over a plain background |
| `builtin:moving-mnist` | `video` (gray) | the Moving-MNIST protocol over procedural digits (`make_digits`) |

Tones are stored as WAV bytes in the struct `Audio(decode=False)` gives, so they go through the same decoder
as real recordings (a `datasets.Audio` column cannot be built without torchcodec).
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import PIL.Image
import soundfile
from datasets import ClassLabel, Dataset, Features
from datasets import Image as ImageFeature
from datasets import Video as VideoFeature
from PIL import ImageDraw, ImageFont
from scipy.signal import chirp

from .columns import ENCODED_MEDIA
from .moving_mnist import bouncing_trajectories, make_moving_mnist
from .video import encode_video

BUILTIN_PREFIX = "builtin:"
SHAPE_KINDS = ("circle", "square", "triangle", "star")
TONE_KINDS = ("sine", "harmonic", "chirp", "noise")

# Shapes are drawn this many times larger, then box-filtered down: cheap anti-aliasing (less for video,
# which draws 16 frames per example).
_SUPERSAMPLING = 4
_VIDEO_SUPERSAMPLING = 2
_CORNERS = {"square": 4, "triangle": 3, "star": 10}


def _contrasting_colours(rng: np.random.Generator, count: int) -> tuple[tuple, list[tuple]]:
    """A background colour and `count` colours that stand out from it (L1 distance >= 150)."""
    background = rng.integers(0, 256, size=3)
    colours = []
    while len(colours) < count:
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour - background).sum() >= 150:
            colours.append(tuple(int(c) for c in colour))
    return tuple(int(c) for c in background), colours


def _shape_outline(kind: str, center: np.ndarray, radius: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of `kind` inscribed in the circle of `radius` around `center` = (x, y), rotated by `angle`."""
    corners = _CORNERS[kind]
    # A star alternates outer and inner (0.45 r) vertices.
    radii = (
        radius * np.where(np.arange(corners) % 2, 0.45, 1.0) if kind == "star" else np.full(corners, radius)
    )
    theta = angle + 2 * np.pi * np.arange(corners) / corners
    return list(zip(center[0] + radii * np.cos(theta), center[1] + radii * np.sin(theta), strict=True))


def _render_shapes(
    kind: str, size: int, background: tuple, shapes: list, supersampling: int
) -> PIL.Image.Image:
    """A size x size RGB image of `shapes` of one `kind`, each `(center (x, y), radius, angle, colour)`."""
    canvas = PIL.Image.new("RGB", (size * supersampling, size * supersampling), background)
    draw = ImageDraw.Draw(canvas)
    for center, radius, angle, colour in shapes:
        center, radius = np.asarray(center) * supersampling, radius * supersampling
        if kind == "circle":
            draw.ellipse((*(center - radius), *(center + radius)), fill=colour)
        else:
            draw.polygon(_shape_outline(kind, center, radius, angle), fill=colour)
    return canvas.resize((size, size), PIL.Image.Resampling.BOX)


def make_shapes(num_examples: int = 2000, image_size: int = 32, seed: int = 0) -> Dataset:
    """
    Coloured shapes: one of `SHAPE_KINDS` of random colour, size (radius 0.2-0.4 of the side), position and
    rotation, on a random background.

    Returns:
        `Dataset` with `image` (`datasets.Image`, RGB `image_size` x `image_size`) and `label`
        (`ClassLabel(SHAPE_KINDS)`).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(len(SHAPE_KINDS), size=num_examples)
    images = []
    for label in labels:
        background, (colour,) = _contrasting_colours(rng, 1)
        radius = rng.uniform(0.2, 0.4) * image_size
        center = rng.uniform(radius, image_size - radius, size=2)
        shape = (center, radius, rng.uniform(0, 2 * np.pi), colour)
        images.append(_render_shapes(SHAPE_KINDS[label], image_size, background, [shape], _SUPERSAMPLING))
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=list(SHAPE_KINDS))})
    return Dataset.from_dict({"image": images, "label": labels}, features=features)


def _tone(rng: np.random.Generator, kind: str, time: np.ndarray, sampling_rate: int) -> np.ndarray:
    """One unit-peak signal of `kind` over `time`, pitched between 110 and 880 Hz."""
    pitch = 110.0 * 2 ** rng.uniform(0, 3)
    if kind == "sine":
        return np.sin(2 * np.pi * pitch * time + rng.uniform(0, 2 * np.pi))
    if kind == "harmonic":  # sawtooth-like: harmonics at 1/k, kept below Nyquist so nothing aliases
        harmonics = np.arange(1, int(0.45 * sampling_rate // pitch) + 1)
        signal = (np.sin(2 * np.pi * pitch * harmonics[:, None] * time) / harmonics[:, None]).sum(axis=0)
    elif kind == "chirp":  # one to two octaves up or down, logarithmic sweep
        end_pitch = np.clip(
            pitch * 2 ** (rng.uniform(1, 2) * rng.choice([-1, 1])), 55.0, 0.45 * sampling_rate
        )
        signal = chirp(time, f0=pitch, t1=time[-1], f1=end_pitch, method="logarithmic")
    else:
        signal = rng.standard_normal(len(time))
    return signal / np.abs(signal).max()


def _envelope(rng: np.random.Generator, time: np.ndarray, duration: float) -> np.ndarray:
    """A burst: silence, a 5-50 ms attack, an exponential decay, a 10 ms release to silence (no clicks)."""
    onset = rng.uniform(0.0, 0.25) * duration
    end = onset + rng.uniform(0.4, 0.7) * duration
    attack, decay = rng.uniform(0.005, 0.05), rng.uniform(0.15, 0.6)
    rise = np.clip((time - onset) / attack, 0.0, 1.0)
    release = np.clip((end - time) / 0.01, 0.0, 1.0)
    return rise * np.exp(-np.maximum(time - onset - attack, 0.0) / decay) * release


def make_tones(
    num_examples: int = 1000, sampling_rate: int = 8000, duration: float = 1.0, seed: int = 0
) -> Dataset:
    """
    Tones, chirps and noise bursts (`TONE_KINDS`) with a random envelope and peak amplitude 0.3-0.9.

    Args:
        num_examples (`int`, defaults to 1000): Recordings to generate.
        sampling_rate (`int`, defaults to 8000): In Hz; at least 2000, as pitches reach 880 Hz.
        duration (`float`, defaults to 1.0): Seconds per recording.
        seed (`int`, defaults to 0): Seed of every random choice; equal seeds give equal datasets.

    Returns:
        `Dataset` with `audio` (`{"bytes": 16-bit mono WAV of `duration` s at `sampling_rate`, "path": None}`)
        and `label` (`ClassLabel(TONE_KINDS)`).
    """
    if sampling_rate < 2000:
        raise ValueError(
            f"make_tones needs sampling_rate >= 2000 Hz (pitches reach 880 Hz), got {sampling_rate}."
        )
    rng = np.random.default_rng(seed)
    time = np.arange(round(duration * sampling_rate)) / sampling_rate
    recordings, labels = [], []
    for _ in range(num_examples):
        label = int(rng.integers(len(TONE_KINDS)))
        waveform = _tone(rng, TONE_KINDS[label], time, sampling_rate) * _envelope(rng, time, duration)
        buffer = io.BytesIO()
        soundfile.write(
            buffer, waveform * rng.uniform(0.3, 0.9), sampling_rate, format="WAV", subtype="PCM_16"
        )
        recordings.append({"bytes": buffer.getvalue(), "path": None})
        labels.append(label)
    features = Features({"audio": ENCODED_MEDIA, "label": ClassLabel(names=list(TONE_KINDS))})
    return Dataset.from_dict({"audio": recordings, "label": labels}, features=features)


def make_sprites(
    num_examples: int = 512,
    num_frames: int = 16,
    frame_size: int = 64,
    num_sprites: int = 2,
    seed: int = 0,
    fps: int = 8,
) -> Dataset:
    """
    Bouncing sprites: `num_sprites` shapes of one kind (the label), each of its own colour and size, moving in
    straight lines and bouncing off the borders of a plain background.

    Returns:
        `Dataset` with `video` (`Video(decode=False)`: `{"bytes", "path": None}` of lossless clips, see
        `encode_video`, decoding to uint8 (num_frames, frame_size, frame_size, 3) at `fps`) and `label`
        (`ClassLabel(SHAPE_KINDS)`).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(len(SHAPE_KINDS), size=num_examples)
    clips = [
        {
            "bytes": encode_video(
                _render_sprites(rng, SHAPE_KINDS[label], num_frames, frame_size, num_sprites), fps
            ),
            "path": None,
        }
        for label in labels
    ]
    features = Features({"video": VideoFeature(decode=False), "label": ClassLabel(names=list(SHAPE_KINDS))})
    return Dataset.from_dict({"video": clips, "label": labels}, features=features)


def _render_sprites(
    rng: np.random.Generator, kind: str, num_frames: int, frame_size: int, num_sprites: int
) -> np.ndarray:
    """One clip of bouncing `kind` sprites, uint8 (num_frames, frame_size, frame_size, 3)."""
    background, colours = _contrasting_colours(rng, num_sprites)
    radii = rng.uniform(0.1, 0.2, size=num_sprites) * frame_size
    angles = rng.uniform(0, 2 * np.pi, size=num_sprites)
    speeds = (frame_size / 32, frame_size / 13)  # 2 to 5 pixels per frame at 64x64
    # (y, x) centres, each sprite bouncing inside the frame shrunk by its radius.
    centers = [bouncing_trajectories(rng, num_frames, 1, frame_size - 2 * r, speeds)[:, 0] + r for r in radii]
    sprites = list(zip(centers, radii, angles, colours, strict=True))
    frames = []
    for index in range(num_frames):
        shapes = [(center[index, ::-1], radius, angle, colour) for center, radius, angle, colour in sprites]
        frames.append(np.asarray(_render_shapes(kind, frame_size, background, shapes, _VIDEO_SUPERSAMPLING)))
    return np.stack(frames)


@lru_cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def make_digits(
    num_examples: int = 1000, image_size: int = 28, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """
    MNIST-like digits: 0-9 in Pillow's default font at random size, stroke width, rotation and offset, white
    on black; sprites for the offline Moving-MNIST.

    Returns:
        `tuple[np.ndarray, np.ndarray]`: images, uint8 (num_examples, image_size, image_size), and their
        digits (num_examples,).
    """
    rng = np.random.default_rng(seed)
    images = np.empty((num_examples, image_size, image_size), dtype=np.uint8)
    digits = rng.integers(10, size=num_examples)
    for image, digit in zip(images, digits, strict=True):
        canvas = PIL.Image.new("L", (image_size, image_size))
        font = _font(int(rng.integers(round(0.75 * image_size), round(image_size) + 1)))
        position = image_size / 2 + rng.uniform(-0.05, 0.05, size=2) * image_size
        stroke = int(rng.integers(0, 2))
        ImageDraw.Draw(canvas).text(
            tuple(position),
            str(digit),
            fill=255,
            font=font,
            anchor="mm",
            stroke_width=stroke,
            stroke_fill=255,
        )
        image[:] = np.asarray(canvas.rotate(rng.uniform(-15, 15), resample=PIL.Image.Resampling.BILINEAR))
    return images, digits


def make_moving_digits(
    num_examples: int = 512,
    num_frames: int = 16,
    canvas_size: int = 64,
    num_sprites: int = 2,
    seed: int = 0,
    fps: int = 8,
) -> Dataset:
    """
    Moving-MNIST over 1,000 procedural digits ([`make_digits`]) sized 28/64 of the canvas, as in the protocol;
    columns as [`make_moving_mnist`]'s.
    """
    digits, _ = make_digits(1000, image_size=round(canvas_size * 28 / 64), seed=seed)
    return make_moving_mnist(digits, num_examples, num_frames, canvas_size, num_sprites, seed=seed, fps=fps)


BUILTIN_DATASETS = {
    "shapes": make_shapes,
    "tones": make_tones,
    "sprites": make_sprites,
    "moving-mnist": make_moving_digits,
}


def load_builtin_dataset(name: str, **options) -> Dataset:
    """
    Generates the built-in dataset `name` (`"builtin:shapes"` or just `"shapes"`; see `BUILTIN_DATASETS`).

    Args:
        name (`str`): The dataset.
        options: Keyword arguments of its generator, e.g. `num_examples`, `seed`, `image_size`.

    Raises:
        ValueError: for an unknown name, listing the available ones.
    """
    key = name.removeprefix(BUILTIN_PREFIX)
    if key not in BUILTIN_DATASETS:
        available = ", ".join(BUILTIN_PREFIX + known for known in BUILTIN_DATASETS)
        raise ValueError(f"Unknown built-in dataset {name!r}; available: {available}.")
    return BUILTIN_DATASETS[key](**options)
