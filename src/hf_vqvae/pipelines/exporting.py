"""Turn decoded batches into images, audio and video, and write sample sets to disk: a PNG grid for images, WAV
files for audio, GIF or MP4 files for video."""

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import make_image_grid
from diffusers.video_processor import VideoProcessor

from ..models.vqvae.configuration_vqvae import VQVAEConfig

OUTPUT_TYPES = ("pil", "np", "pt")


def postprocess_samples(samples: torch.Tensor, config: VQVAEConfig, output_type: str = "pil") -> list:
    """Convert a batch of [-1, 1] signals in the modality's layout to a list of outputs, one per sample.

    Images: `PIL.Image.Image`, uint8 `(H, W, C)` (`"np"`) or float `(C, H, W)` in [0, 1] (`"pt"`). Video: a list of
    PIL frames, uint8 `(T, H, W, C)` or float `(T, C, H, W)` in [0, 1]. Audio: `{"audio": (C, T) in [-1, 1],
    "sampling_rate"}`, a numpy array unless `"pt"`. The [-1, 1] <-> PIL/np/pt conversions are diffusers' processors.
    """
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
    samples = samples.detach().float().cpu().clamp(-1, 1)
    if config.modality == "audio":
        return [
            {
                "audio": sample if output_type == "pt" else sample.numpy(),
                "sampling_rate": config.sampling_rate,
            }
            for sample in samples
        ]
    if config.modality == "image":
        converted = VaeImageProcessor(do_resize=False).postprocess(samples, output_type=output_type)
    else:  # diffusers' VideoProcessor wants (batch, channels, frames, height, width)
        converted = VideoProcessor(do_resize=False).postprocess_video(
            samples.transpose(1, 2), output_type=output_type
        )
    if (
        output_type == "np"
    ):  # diffusers gives float arrays in [0, 1]; return the uint8 levels media are stored in
        return [np.round(array * 255).astype(np.uint8) for array in converted]
    return list(converted)


def save_image_grid(images: Sequence[PIL.Image.Image], path: str | Path, rows: int | None = None) -> Path:
    """Save images as one PNG grid of `rows` rows (default: as square as possible)."""
    rows = rows or max(1, int(math.sqrt(len(images))))
    cols = math.ceil(len(images) / rows)
    images = list(images) + [PIL.Image.new(images[0].mode, images[0].size)] * (rows * cols - len(images))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_image_grid(images, rows=rows, cols=cols).save(path)
    return path


def save_audio(samples: Sequence[dict], output_dir: str | Path, prefix: str = "sample") -> list[Path]:
    """Save each sample, `{"audio": np.ndarray (channels, samples), "sampling_rate": int}` as the pipeline returns
    it, as a 16-bit PCM WAV file `{prefix}_{i}.wav`."""
    import soundfile

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, sample in enumerate(samples):
        path = output_dir / f"{prefix}_{index}.wav"
        soundfile.write(path, np.clip(sample["audio"], -1, 1).T, sample["sampling_rate"], subtype="PCM_16")
        paths.append(path)
    return paths


def save_videos(
    videos: Sequence[Sequence[PIL.Image.Image]],
    output_dir: str | Path,
    fps: int,
    prefix: str = "sample",
    video_format: str = "gif",
) -> list[Path]:
    """Save each video (a list of PIL frames) as `{prefix}_{i}.gif` or `.mp4`."""
    if video_format not in ("gif", "mp4"):
        raise ValueError(f"video_format must be 'gif' or 'mp4', got {video_format!r}.")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, frames in enumerate(videos):
        path = output_dir / f"{prefix}_{index}.{video_format}"
        if video_format == "gif":
            export_to_gif(list(frames), path, fps)
        else:
            export_to_mp4(frames, path, fps)
        paths.append(path)
    return paths


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
    """Write a batch of [-1, 1] signals as the modality's files: one PNG grid (`{prefix}_grid.png`, `rows` rows),
    WAV files, or GIF files. Returns the written paths."""
    outputs = postprocess_samples(samples, config, "pil")
    if config.modality == "image":
        return [save_image_grid(outputs, Path(output_dir) / f"{prefix}_grid.png", rows=rows)]
    if config.modality == "audio":
        return save_audio(outputs, output_dir, prefix)
    return save_videos(outputs, output_dir, config.fps, prefix)


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
        return save_audio(originals, output_dir, "original") + save_audio(
            decoded, output_dir, "reconstruction"
        )
    pairs = [side_by_side(a, b) for a, b in zip(originals, decoded, strict=True)]
    return save_videos(pairs, output_dir, config.fps, "original_vs_reconstruction")


def side_by_side(originals: Sequence[PIL.Image.Image], reconstructions: Sequence[PIL.Image.Image]) -> list:
    """Video frames: each original frame with its reconstruction to the right."""
    joined = []
    for frame, reconstructed in zip(originals, reconstructions, strict=True):
        canvas = PIL.Image.new(frame.mode, (frame.width * 2, frame.height))
        canvas.paste(frame, (0, 0))
        canvas.paste(reconstructed, (frame.width, 0))
        joined.append(canvas)
    return joined
