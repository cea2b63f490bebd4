"""Hub-ready model cards for `hf_vqvae` models, written from their configs and measured metrics."""

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..models.prior.configuration_prior import VQPriorConfig
from ..models.vqvae.configuration_vqvae import VQVAEConfig
from .model_card_template import MODEL_CARD_TEMPLATE

# Bit depth of the uncompressed signal the compression factor is measured against: 8-bit pixels, 16-bit PCM.
# How a file becomes model input with the folder's processor (saved as its preprocessor config).
PROCESSOR_SNIPPETS = {
    "image": (
        "from transformers import AutoImageProcessor\n\n"
        'processor = AutoImageProcessor.from_pretrained("{model_id}")\n'
        'pixel_values = processor(PIL.Image.open("photo.jpg"))["pixel_values"]  # resized, cropped, in [-1, 1]\n'
        "images = processor.postprocess(model.decode(model.encode(pixel_values).codes))  # PIL images"
    ),
    "audio": (
        "from transformers import AutoFeatureExtractor\n\n"
        'feature_extractor = AutoFeatureExtractor.from_pretrained("{model_id}")\n'
        "inputs = feature_extractor(waveform, sampling_rate={sampling_rate})  # mono, the model's level, padded\n"
        'codes = model.encode(inputs["input_values"]).codes'
    ),
    "video": (
        "from hf_vqvae import VQVAEVideoProcessor  # transformers' AutoVideoProcessor needs torchvision\n\n"
        'processor = VQVAEVideoProcessor.from_pretrained("{model_id}")\n'
        'pixel_values = processor(frames)["pixel_values"]  # the first {num_frames} frames, in [-1, 1]\n'
        "clips = processor.postprocess(model.decode(model.encode(pixel_values).codes))  # lists of PIL frames"
    ),
}

PIPELINE_OUTPUTS = {
    "image": "a list of PIL images",
    "audio": 'a list of {"audio": np.ndarray (channels, samples), "sampling_rate": int}',
    "video": "a list of videos, each a list of PIL frames",
}

# The Hub's pipeline tags (huggingface.js `pipelines.ts`) have an unconditional generation task for images
# only. "text-to-audio" / "text-to-video" would advertise a text prompt these models do not take (and make the
# Hub's widget send one), so audio and video cards, and a VQ-VAE without a prior (it cannot sample), get none.
GENERATION_PIPELINE_TAGS = {"image": "unconditional-image-generation"}
# model-index task under which reconstruction metrics are filed: the task mapping the modality onto itself.
RECONSTRUCTION_TASKS = {"image": "image-to-image", "audio": "audio-to-audio", "video": "other"}

# Display name and method of the metrics `hf_vqvae.evaluation.metrics` computes, by the key the training scripts log them
# under. Keys starting with "prior_" are filed under the generation task in the model-index.
METRIC_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "mse": ("MSE", "Mean squared error of the [-1, 1] signal."),
    "psnr": ("PSNR (dB)", "PSNR of the float reconstruction (peak-to-peak 2), per example, then averaged."),
    "psnr_uint8": (
        "PSNR, 8-bit (dB)",
        "Original and reconstruction quantised to [0, 255] as stored images, PSNR with peak 255 per example, "
        "then averaged (exact examples count as 100 dB).",
    ),
    "ssim": (
        "SSIM",
        "torchmetrics SSIM (11x11 Gaussian window, σ 1.5) on 8-bit images scaled to [0, 1], per image or frame, "
        "then averaged.",
    ),
    "snr_db": ("SNR (dB)", "10 log10(‖x‖² / ‖x − x̂‖²) per clip, then averaged."),
    "log_mel_distance": (
        "Log-mel L1",
        "Mean absolute difference of natural-log mel spectrograms (80 Slaney bands, 1024-point STFT, "
        "hop 256).",
    ),
    "codebook_perplexity": ("Codebook perplexity", "exp(entropy) of code usage over the whole set (≤ K)."),
    "codebook_fraction_used": ("Codes used", "Fraction of the K codes chosen at least once over the set."),
    "code_entropy_bits": ("Code entropy (bits)", "Entropy of code usage over the whole set (≤ log2 K)."),
    "prior_nll_nats_per_code": (
        "Prior NLL (nats/code)",
        "The prior's mean negative log-likelihood per code.",
    ),
    "prior_bits_per_code": ("Prior bits/code", "The prior's mean negative log-likelihood per code, in bits."),
    "prior_bits_per_code_over_code_entropy": (
        "Prior bits/code ÷ code entropy",
        "Prior bits/code over the entropy of the validation codes' usage distribution (what a model "
        "ignoring context would score): below 1, the prior has learned structure between codes.",
    ),
    "num_restarts": (
        "Dead-code restarts",
        "Codes re-seeded from encoder outputs, counted over all of the model's training, including any run it "
        "was fine-tuned from (the count is part of the saved quantizer state).",
    ),
    "prior_bits_per_input_dim": (
        "Prior bits/input dim",
        "The prior's code NLL spread over the input's scalar values: the rate of the codes, without the "
        "decoder's distortion.",
    ),
}

# Metrics that are fractions, shown in the card's table as percentages (the model-index keeps the raw value).
PERCENT_METRICS = {"codebook_fraction_used"}
# Metrics that count things, shown as integers.
COUNT_METRICS = {"num_restarts"}


def write_model_card(
    output_dir: str | Path,
    *,
    model_id: str,
    config: VQVAEConfig,
    metrics: Mapping[str, float],
    training_command: str,
    prior_config: VQPriorConfig | None = None,
    datasets: Sequence[str] = (),
    eval_split: str | None = None,
    sample_files: Sequence[str] = (),
    training_time: str | None = None,
    hardware: str | None = None,
    limitations: str | None = None,
    extra_sections: Mapping[str, str] | None = None,
    license: str = "apache-2.0",
) -> ModelCard:
    """
    Write `output_dir/README.md`, the Hub model card of a VQ-VAE (and its prior), and return it. `model_id` is the
    repo id in the usage snippets; `limitations` replaces the generic text; `extra_sections` maps titles to Markdown.

    Metadata: `library_name: hf_vqvae` ("transformers" would make the Hub show a snippet that fails without
    `import hf_vqvae`), license, tags, datasets, a pipeline tag where the Hub has one (`GENERATION_PIPELINE_TAGS`)
    and a `model-index` entry per metric. Body: architecture (code grid, K, D, bitrate, compression), usage,
    training command and hardware, metrics and their method, samples, limitations.

    Args:
        metrics: measured values by key; keys of `METRIC_DESCRIPTIONS` get a readable name and a description of
            the method, keys starting with `"prior_"` are prior metrics.
        training_command: the command that trained the model(s); `training_time` and `hardware` go beside it.
        prior_config: the prior's config, if the folder holds a prior.
        datasets: Hub dataset ids; the first is the evaluation dataset, `eval_split` its split (e.g. `"test"`).
        sample_files: paths relative to `output_dir`; PNG/JPEG files are shown, others (WAV, GIF, MP4) linked.

    Returns:
        `huggingface_hub.ModelCard`: the card, as saved.
    """
    if prior_config is not None:
        prior_config.check_matches(config)
    noun = config.modality_spec.noun
    facts = {"Training time": training_time, "Hardware": hardware}.items()
    card = ModelCard.from_template(
        _card_data(model_id, config, prior_config, metrics, datasets, eval_split, license),
        template_str=MODEL_CARD_TEMPLATE,
        model_id=model_id,
        model_name=model_id.split("/")[-1],
        noun=noun,
        architecture_rows=_architecture_rows(config),
        prior_rows=_prior_rows(prior_config),
        **_usage_snippet_values(config, prior_config),
        training_command=training_command,
        training_facts=[f"{name}: {value}" for name, value in facts if value],
        eval_data=_evaluation_data(datasets, eval_split),
        metric_rows=_metric_rows(metrics),
        samples=_sample_markdown(Path(output_dir), sample_files),
        limitations=limitations or _default_limitations(noun),
        extra_sections=dict(extra_sections or {}),
    )
    card.save(Path(output_dir) / "README.md")
    return card


def _evaluation_data(datasets: Sequence[str], eval_split: str | None) -> str:
    """How the card names the data its metrics were measured on."""
    if not (datasets and eval_split):
        return eval_split or "held-out data"
    split_name = eval_split.replace("-", "_").isidentifier()  # "test", not a description in words
    return f"the `{eval_split}` split of {datasets[0]}" if split_name else f"{eval_split} of {datasets[0]}"


def _card_data(
    model_id: str,
    config: VQVAEConfig,
    prior_config: VQPriorConfig | None,
    metrics: Mapping[str, float],
    datasets: Sequence[str],
    eval_split: str | None,
    license: str,
) -> ModelCardData:
    pipeline_tag = GENERATION_PIPELINE_TAGS.get(config.modality) if prior_config is not None else None
    reconstruction_task = (RECONSTRUCTION_TASKS[config.modality], f"{config.modality.title()} reconstruction")
    likelihood_task = (pipeline_tag or "other", "Code likelihood")
    eval_results = []
    # A model-index entry must name its dataset: without one the metrics are reported in the body only.
    for key, value in metrics.items() if datasets else ():
        task_type, task_name = likelihood_task if key.startswith("prior_") else reconstruction_task
        eval_results.append(
            EvalResult(
                task_type=task_type,
                task_name=task_name,
                dataset_type=datasets[0],
                dataset_name=datasets[0],
                dataset_split=eval_split,
                metric_type=key,
                metric_name=METRIC_DESCRIPTIONS.get(key, (key,))[0],
                metric_value=float(value),
            )
        )
    return ModelCardData(
        model_name=model_id.split("/")[-1] if eval_results else None,
        library_name="hf_vqvae",
        license=license,
        pipeline_tag=pipeline_tag,
        tags=["vq-vae", "hf_vqvae", config.modality],
        datasets=list(datasets) or None,
        metrics=list(metrics) or None,
        eval_results=eval_results or None,
    )


def _example_shape(config: VQVAEConfig) -> list[int]:
    """Shape of one model input without the batch axis: (C, H, W), (C, T) or (T, C, H, W)."""
    return config.modality_spec.example_shape(config.in_channels, config.sample_size)


def _architecture_rows(config: VQVAEConfig) -> list[tuple[str, str]]:
    """(name, value) rows describing the VQ-VAE, its code grid and its bitrate."""
    times = " × ".join
    num_codes = math.prod(config.code_shape)
    bits_per_code = math.log2(config.codebook_size)
    bits = num_codes * bits_per_code
    raw_bits = math.prod(_example_shape(config)) * config.modality_spec.raw_bit_depth
    quantizer = "EMA codebook updates" if config.quantizer == "ema" else "codebook loss (as in the paper)"
    rows = [
        (
            "Input",
            f"`{config.modality_spec.input_name}` ({times(map(str, _example_shape(config)))}) in [-1, 1]",
        ),
        ("Downsampling per axis", times(map(str, config.downsample_factors))),
        ("Code grid", f"{times(map(str, config.code_shape))} codes"),
        ("Codebook", f"K = {config.codebook_size} codes of dimension D = {config.embedding_dim}"),
        ("Codebook learning", quantizer),
        (
            "Encoder / decoder",
            f"{config.hidden_channels} channels, {config.num_residual_layers} residual blocks "
            f"({config.residual_channels}-channel bottleneck)",
        ),
        ("Code size", f"{bits:.0f} bits per example ({num_codes} codes × log2 K = {bits_per_code:.3g} bits)"),
        (f"Compression vs {config.modality_spec.raw_bit_depth}-bit input", f"{raw_bits / bits:.1f}×"),
    ]
    modality = config.modality_spec
    if modality.rate_field is not None:
        # The first axis is time (audio, video): seconds per example from the sampling rate or the frame rate.
        rate = getattr(config, modality.rate_field)
        seconds = config.sample_size[0] / rate
        rows.append(("Input rate", f"{rate} {modality.rate_unit}"))
        rows.append(("Codes per second", f"{num_codes / seconds:.4g}"))
        rows.append(("Bitrate", f"{bits / seconds / 1000:.4g} kbit/s"))
    if config.modality == "audio" and config.audio_peak_level is not None:
        rows.append(("Input loudness", f"each recording scaled to peak {config.audio_peak_level} first"))
    if config.num_speakers:
        rows.append(
            (
                "Decoder conditioned on",
                f"{config.num_speakers} speakers: a learned vector each, added before every layer",
            )
        )
    if config.spectral_loss_weight:
        sizes = ", ".join(map(str, config.spectral_loss_fft_sizes))
        rows.append(
            ("Extra loss", f"{config.spectral_loss_weight:g} × multi-resolution STFT loss (FFT {sizes})")
        )
    return rows


def _prior_rows(prior_config: VQPriorConfig | None) -> list[tuple[str, str]]:
    """(name, value) rows describing the prior; empty without one."""
    if prior_config is None:
        return []
    layers = "layer" if prior_config.num_layers == 1 else "layers"
    backbone = f"{prior_config.num_layers} {layers} of width {prior_config.hidden_size}"
    if prior_config.prior_type == "transformer":
        backbone += f", {prior_config.num_heads} heads"
    num_classes = prior_config.num_classes
    conditioning = f"class-conditional ({num_classes} classes)" if num_classes else "unconditional"
    return [("Prior", f"{prior_config.prior_type} over raster-ordered codes, {backbone}; {conditioning}")]


def _usage_snippet_values(config: VQVAEConfig, prior_config: VQPriorConfig | None) -> dict[str, str]:
    """Values the usage snippets are filled with."""
    num_classes = prior_config.num_classes if prior_config is not None else 0
    return {
        "input_name": config.modality_spec.input_name,
        "batch_shape": ", ".join(map(str, [1, *_example_shape(config)])),
        "codes_shape": str((1, *config.code_shape)),
        "class_labels": ", class_labels=[0] * 4" if num_classes else "",
        "pipeline_output": PIPELINE_OUTPUTS[config.modality],
        "processor_snippet": PROCESSOR_SNIPPETS[config.modality].format(
            model_id="{model_id}", sampling_rate=config.sampling_rate, num_frames=config.sample_size[0]
        ),
        "speaker_names": list((config.id2speaker or {}).values()),
        "speaker_argument": f', speaker_ids="{config.id2speaker[0]}"' if config.num_speakers else "",
    }


def _metric_rows(metrics: Mapping[str, float]) -> list[tuple[str, str, str]]:
    """(name, value, how it was computed) per metric; unknown keys are shown as they are.

    Values keep four significant digits including trailing zeros, so a PSNR of 26.0005 dB reads
    26.00, not 26: a reader comparing against a 26 dB target sees the precision that was measured.
    """
    rows = []
    for key, value in metrics.items():
        name, method = METRIC_DESCRIPTIONS.get(key, (key, ""))
        rows.append((name, _shown_value(key, value), method))
    return rows


def _shown_value(key: str, value: float) -> str:
    """A metric as the card's table shows it: fractions as percentages, counts as integers, the rest with four
    significant digits (trailing zeros kept, so 26.00 dB does not read as 26)."""
    if key in PERCENT_METRICS:
        return f"{value:.1%}"
    if key in COUNT_METRICS:
        return f"{int(value)}"
    return f"{value:#.4g}"


def _sample_markdown(output_dir: Path, sample_files: Sequence[str]) -> list[str]:
    """One Markdown line per sample file: PNG/JPEG embedded as images, others (WAV, GIF, MP4) linked."""
    lines = []
    for name in sample_files:
        if Path(name).is_absolute() or not (output_dir / name).is_file():
            raise FileNotFoundError(f"Sample file {name!r} must be a file given relative to {output_dir}.")
        target = quote(Path(name).as_posix())
        embed = Path(name).suffix.lower() in (".png", ".jpg", ".jpeg")
        lines.append(f"![{Path(name).stem}]({target})" if embed else f"[{name}]({target})")
    return lines


def _default_limitations(noun: str) -> str:
    return (
        f"A research model for learning and comparing discrete representations of {noun}. Reconstructions "
        "are lossy (see the compression factor above) and degrade on data unlike the training set; samples "
        "reproduce the content and biases of the training data. Do not use it where faithful reconstruction "
        "matters."
    )


__all__ = ["METRIC_DESCRIPTIONS", "write_model_card"]
