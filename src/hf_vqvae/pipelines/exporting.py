"""Turn decoded batches into images, audio and video, and write sample sets to disk: a PNG grid for images, WAV
files for audio, GIF or MP4 files for video."""

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers.utils import make_image_grid

from ..models.vqvae.configuration_vqvae import VQVAEConfig
from .outputs import postprocess_samples

VIDEO_FORMATS = ("gif", "mp4")


def save_image_grid(images: Sequence[PIL.Image.Image], path: str | Path, rows: int | None = None) -> Path:
    """Save images as one PNG grid of `rows` rows (default: as square as possible)."""
    rows = rows or max(1, int(math.sqrt(len(images))))
    cols = math.ceil(len(images) / rows)
    images = list(images) + [PIL.Image.new(images[0].mode, images[0].size)] * (rows * cols - len(images))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_image_grid(images, rows=rows, cols=cols).save(path)
    return path


def write_audio(sample: dict, path: str | Path) -> Path:
    """Write one sample, `{"audio": np.ndarray (channels, samples), "sampling_rate": int}` as the pipeline returns
    it, as a 16-bit PCM WAV file."""
    import soundfile

    soundfile.write(path, np.clip(sample["audio"], -1, 1).T, sample["sampling_rate"], subtype="PCM_16")
    return Path(path)


def write_video(frames: Sequence[PIL.Image.Image], path: str | Path, fps: int) -> Path:
    """Write one video (a list of PIL frames) as GIF or MP4, by the path's suffix."""
    if Path(path).suffix == ".gif":
        return export_to_gif(list(frames), path, fps)
    return export_to_mp4(frames, path, fps)


def write_output(output, config: VQVAEConfig, stem: str | Path, video_format: str = "gif") -> Path:
    """Write one postprocessed output (a PIL image, an audio dict, a list of frames) as `stem` + the modality's
    suffix: `.png`, `.wav`, or `.gif` / `.mp4` (`video_format`)."""
    if video_format not in VIDEO_FORMATS:
        raise ValueError(f"video_format must be one of {VIDEO_FORMATS}, got {video_format!r}.")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if config.modality == "image":
        output.save(stem.with_suffix(".png"))
        return stem.with_suffix(".png")
    if config.modality == "audio":
        return write_audio(output, stem.with_suffix(".wav"))
    return write_video(output, stem.with_suffix(f".{video_format}"), config.fps)


def save_outputs(
    outputs: list,
    config: VQVAEConfig,
    output_dir: str | Path,
    prefix: str = "sample",
    rows: int | None = None,
    video_format: str = "gif",
    grid_name: str | None = None,
) -> list[Path]:
    """Write postprocessed outputs as a sample set: images as one PNG grid of `rows` rows (`grid_name`, by default
    `{prefix}_grid.png`), recordings and videos as one file each, `{prefix}_{i}.wav` / `.gif` / `.mp4`."""
    if config.modality == "image":
        return [save_image_grid(outputs, Path(output_dir) / (grid_name or f"{prefix}_grid.png"), rows=rows)]
    return [
        write_output(output, config, Path(output_dir) / f"{prefix}_{index}", video_format)
        for index, output in enumerate(outputs)
    ]


def export_to_gif(frames: Sequence[PIL.Image.Image], path: str | Path, fps: int) -> Path:
    """Write frames as a looping GIF that plays at exactly `fps` on average.

    GIF stores frame durations in centiseconds; diffusers' `export_to_gif` writes `1000 // fps` ms for every frame,
    which a GIF stores rounded (8 fps becomes 120 ms, 8.33 fps), so the clip plays too fast and reads back at
    the wrong rate. Here each frame lasts until its exact presentation time, rounded to a centisecond.
    """
    ends = [round((index + 1) * 100 / fps) for index in range(len(frames))]
    durations = [10 * (end - start) for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    frames[0].save(
        path, save_all=True, append_images=list(frames[1:]), duration=durations, loop=0, optimize=False
    )
    return Path(path)


def export_to_mp4(frames: Sequence[PIL.Image.Image], path: str | Path, fps: int) -> Path:
    """Encode frames as H.264 MP4 with PyAV.

    diffusers' `export_to_video` needs imageio-ffmpeg or OpenCV; PyAV (already used to decode video) bundles FFmpeg.
    """
    import av

    width, height = (2 * math.ceil(size / 2) for size in frames[0].size)  # yuv420p needs even sizes
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            rgb = frame.convert("RGB").resize((width, height), PIL.Image.NEAREST)
            container.mux(stream.encode(av.VideoFrame.from_image(rgb)))
        container.mux(stream.encode())
    return Path(path)


def save_samples(
    samples: torch.Tensor,
    config: VQVAEConfig,
    output_dir: str | Path,
    prefix: str = "sample",
    rows: int | None = None,
) -> list[Path]:
    """Write a batch of [-1, 1] signals as the modality's files (see [`save_outputs`]). Returns the written paths."""
    return save_outputs(postprocess_samples(samples, config, "pil"), config, output_dir, prefix, rows)


def save_reconstructions(
    inputs: torch.Tensor, reconstructions: torch.Tensor, config: VQVAEConfig, output_dir: str | Path
) -> list[Path]:
    """Write [-1, 1] inputs beside their reconstructions, so that each pair reads as one: a two-row PNG grid
    `reconstruction_grid.png` (originals above), WAV pairs `original_{i}.wav` / `reconstruction_{i}.wav`, or GIFs
    `original_vs_reconstruction_{i}.gif` with the original left and the reconstruction right."""
    reconstructions = reconstructions.to(inputs.dtype).clamp(-1, 1)
    if config.modality == "image":
        return save_samples(
            torch.cat([inputs, reconstructions]), config, output_dir, "reconstruction", rows=2
        )
    originals, decoded = (postprocess_samples(x, config, "pil") for x in (inputs, reconstructions))
    if config.modality == "audio":
        return save_outputs(originals, config, output_dir, "original") + save_outputs(
            decoded, config, output_dir, "reconstruction"
        )
    pairs = [side_by_side(a, b) for a, b in zip(originals, decoded, strict=True)]
    return save_outputs(pairs, config, output_dir, "original_vs_reconstruction")


def side_by_side(*clips: Sequence[PIL.Image.Image]) -> list:
    """Video frames: frame t of each clip in a row, left to right (an original beside its reconstruction, or a
    prompt, a prediction and the truth)."""
    joined = []
    for frames in zip(*clips, strict=True):
        canvas = PIL.Image.new(frames[0].mode, (sum(frame.width for frame in frames), frames[0].height))
        for index, frame in enumerate(frames):
            canvas.paste(frame, (index * frames[0].width, 0))
        joined.append(canvas)
    return joined
