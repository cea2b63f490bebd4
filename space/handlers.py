"""What the Space's buttons do, without Gradio: load the released models, sample, and encode an uploaded file.
Each handler takes plain values and returns media and text, or raises `ValueError` with a message for the page."""

import functools
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from transformers import pipeline

import hf_vqvae  # noqa: F401  (registers the "vq-sample" pipeline)
from hf_vqvae import VQSamplePipeline
from hf_vqvae.evaluation.metrics import psnr_uint8, snr_db
from hf_vqvae.models.vqvae.processors import processor_for
from hf_vqvae.pipelines.compression import compress
from hf_vqvae.pipelines.exporting import save_image_grid, side_by_side
from hf_vqvae.pipelines.prompting import preprocess_one

MODEL_CARDS = Path(__file__).resolve().parents[1] / "model_cards"
# The models the Space serves: folders or Hub repo ids, comma-separated (a Space sets e.g. "org/vqvae-cifar10").
MODELS_SETTING = "HF_VQVAE_SPACE_MODELS"
MAX_SAMPLES = 16
MAX_RECORDING_SECONDS = 60
SILENCE_SECONDS = 0.25


def model_locations() -> dict[str, str]:
    """Display name -> folder or repo id, from `HF_VQVAE_SPACE_MODELS`, else the released folders here."""
    setting = os.environ.get(MODELS_SETTING)
    locations = (
        [s.strip() for s in setting.split(",") if s.strip()]
        if setting
        else sorted(
            str(folder) for folder in MODEL_CARDS.iterdir() if (folder / "prior" / "config.json").is_file()
        )
    )
    return {Path(location).name: location for location in locations}


@functools.cache
def load(name: str) -> VQSamplePipeline:
    pipe = pipeline("vq-sample", model=model_locations()[name])
    pipe.set_progress_bar_config(disable=False)
    return pipe


@dataclass
class ModelChoices:
    """What the Sample tab offers for a model."""

    modality: str
    classes: list[str]
    speakers: list[str]
    default_guidance: float
    default_schedule: str


def model_choices(name: str) -> ModelChoices:
    pipe = load(name)
    prior_config, config = pipe.prior.config, pipe.model.config
    classes = [prior_config.id2label.get(i, str(i)) for i in range(prior_config.num_classes)]
    speakers = list((config.id2speaker or {}).values())
    prior = pipe.prior
    return ModelChoices(
        config.modality, classes, speakers, prior.default_guidance_scale, prior.default_guidance_schedule
    )


def parse_seed(seed) -> int:
    """The seed box's text as an int, or a message saying what is accepted."""
    try:
        return int(str(seed).strip())
    except ValueError:
        raise ValueError(f"The seed must be a whole number, such as 0 or 1234; got {str(seed)!r}.") from None


def sample(
    name: str,
    class_name: str | None,
    speaker: str | None,
    guidance_scale: float,
    guidance_schedule: str,
    temperature: float,
    seed,
    num_samples: int,
    prompt_path: str | None,
    work_dir: str,
) -> tuple[str | None, tuple[int, np.ndarray] | None, str]:
    """Samples and returns (an image grid or animated GIF path, audio `(rate, int16 samples)`, a status line)."""
    pipe, seed = load(name), parse_seed(seed)
    if not 1 <= int(num_samples) <= MAX_SAMPLES:
        raise ValueError(f"Number of samples must be between 1 and {MAX_SAMPLES}; got {num_samples}.")
    start = time.perf_counter()
    outputs = pipe(
        num_samples=int(num_samples),
        class_labels=class_name or None,
        speaker_ids=speaker or None,
        guidance_scale=float(guidance_scale) if pipe.prior.config.num_classes else None,
        guidance_schedule=guidance_schedule if pipe.prior.config.num_classes else None,
        temperature=float(temperature),
        seed=seed,
        prompt=checked_upload(prompt_path, pipe.model.config.modality) if prompt_path else None,
    )
    seconds = time.perf_counter() - start
    status = f"{len(outputs)} sample(s) in {seconds:.2f} s (seed {seed})."
    modality = pipe.model.config.modality
    if modality == "audio":
        return None, joined_audio(outputs), status
    path = Path(work_dir) / f"samples_{time.time_ns()}"
    if modality == "image":
        grid = PIL.Image.open(save_image_grid(outputs, path.with_suffix(".png")))
        grid.resize((grid.width * 4, grid.height * 4), PIL.Image.Resampling.NEAREST).save(
            path.with_suffix(".png")
        )
        return str(path.with_suffix(".png")), None, status
    return str(clips_as_gif(outputs, path.with_suffix(".gif"), pipe.model.config.fps)), None, status


def joined_audio(outputs: list[dict]) -> tuple[int, np.ndarray]:
    """The samples one after another with short silences between them, as one 16-bit mono recording."""
    rate = outputs[0]["sampling_rate"]
    gap = np.zeros(int(SILENCE_SECONDS * rate), np.float32)
    pieces = [piece for output in outputs for piece in (output["audio"].mean(axis=0), gap)]
    return rate, (np.clip(np.concatenate(pieces), -1, 1) * 32767).astype(np.int16)


def clips_as_gif(clips: list[list[PIL.Image.Image]], path: Path, fps: int) -> Path:
    """Clips side by side in one animated GIF, at twice their size."""
    frames = [
        frame.resize((frame.width * 2, frame.height * 2), PIL.Image.Resampling.NEAREST)
        for frame in side_by_side(*clips)
    ]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
    return path


def checked_upload(path: str | None, modality: str) -> str:
    """An uploaded file that exists and is not empty; recordings no longer than a minute."""
    if not path or not Path(path).is_file():
        raise ValueError("Upload a file first.")
    if Path(path).stat().st_size == 0:
        raise ValueError(f"The uploaded file {Path(path).name!r} is empty.")
    if modality == "audio":
        import soundfile

        try:
            duration = soundfile.info(path).duration
        except RuntimeError:
            duration = 0.0  # not a format soundfile reads: the decoder says what is wrong
        if duration > MAX_RECORDING_SECONDS:
            raise ValueError(
                f"The recording is {duration / 60:.1f} minutes long; this demo takes up to {MAX_RECORDING_SECONDS} s."
            )
    return path


def code_grid_image(codes: torch.Tensor, codebook_size: int, scale: int = 16) -> PIL.Image.Image:
    """A code grid drawn with one colour per code (a fixed palette over the codebook); 1-D grids as one row,
    3-D grids (video) slice by slice."""
    palette = (np.random.default_rng(0).random((codebook_size, 3)) * 200 + 40).astype(np.uint8)
    grid = codes.cpu().numpy()
    grid = grid[None] if grid.ndim == 1 else grid
    grid = np.concatenate(list(grid), axis=1) if grid.ndim == 3 else grid
    image = PIL.Image.fromarray(palette[grid])
    scale = max(1, min(scale, 1024 // max(image.size)))
    return image.resize((image.width * scale, image.height * scale), PIL.Image.Resampling.NEAREST)


def encode(name: str, upload_path: str | None, work_dir: str):
    """Encodes an upload; returns (original | reconstruction image or GIF, original audio, reconstructed audio,
    the code grid image, a markdown summary)."""
    pipe = load(name)
    config = pipe.model.config
    inputs = preprocess_one(pipe.model, checked_upload(upload_path, config.modality), "the upload")
    with torch.no_grad():
        codes = pipe.model.encode(inputs[None]).codes
        reconstruction = pipe.model.decode(codes).float().clamp(-1, 1)[0]
    num_codes = codes[0].numel()
    fixed_bits = num_codes * math.ceil(math.log2(config.codebook_size))
    compressed = len(compress(pipe.model, pipe.prior, inputs))
    if config.modality == "audio":
        quality = f"SNR {snr_db(reconstruction[None], inputs[None]).item():.2f} dB"
    else:
        quality = f"PSNR {psnr_uint8(reconstruction[None], inputs[None]).item():.2f} dB"
    summary = (
        f"**{num_codes} codes** (grid {list(codes.shape[1:])}, K = {config.codebook_size}): {fixed_bits} bits at a "
        f"fixed {math.ceil(math.log2(config.codebook_size))} bits per code, {8 * compressed} bits "
        f"({compressed} bytes) entropy-coded with the prior. Reconstruction: **{quality}**."
    )
    grid = code_grid_image(codes[0], config.codebook_size)
    path = Path(work_dir) / f"encoded_{time.time_ns()}"
    if config.modality == "audio":
        as_audio = [
            (config.sampling_rate, (x.mean(0).numpy() * 32767).astype(np.int16))
            for x in (inputs, reconstruction)
        ]
        return None, *as_audio, grid, summary
    processor = processor_for(config)
    if config.modality == "image":
        original, reconstructed = processor.postprocess(torch.stack([inputs, reconstruction]))
        canvas = side_by_side([original], [reconstructed])[0]
        canvas = canvas.resize((canvas.width * 4, canvas.height * 4), PIL.Image.Resampling.NEAREST)
        canvas.save(path.with_suffix(".png"))
        return str(path.with_suffix(".png")), None, None, grid, summary
    clips = processor.postprocess(torch.stack([inputs, reconstruction]))
    return str(clips_as_gif(clips, path.with_suffix(".gif"), config.fps)), None, None, grid, summary
