r"""Turn a trained VQ-VAE + prior folder (the output of train_prior.py) into a released, hub-ready folder: the
weights, validation metrics measured afresh, sample files and a model card.

    python examples/release_model.py --model_dir runs/vqvae-fsdd --release_dir model_cards/vqvae-fsdd \
        --model_id org/vqvae-fsdd --data_files fsdd/train.parquet --audio_column audio --label_column label \
        --validation_split_percentage 10 --training_commands runs/fsdd-commands.sh --card_sections notes.md

Every number the card reports is measured here, on the whole validation split the data flags describe: images
and video on centred inputs, audio on whole recordings (`evaluate_recordings`). The card also shows how the
codebook stayed in use during training (validation rows of `training_history.jsonl`), and links original /
reconstruction pairs and prior samples, one set per class for a conditional prior (PNG grids, WAV files, GIFs).
"""

import argparse
import json
import math
from pathlib import Path
from urllib.parse import quote

import safetensors.torch
import torch
from torch.utils.data import DataLoader

from hf_vqvae import VQVAEModel
from hf_vqvae.data import (
    LABEL_KEY,
    SPEAKER_KEY,
    build_preprocessor,
    collate_examples,
    encode_speaker_column,
    prepare_dataset,
)
from hf_vqvae.evaluation.reconstruction import compare_with_code_entropy, evaluate_prior, evaluate_split
from hf_vqvae.evaluation.samples import conversion_targets
from hf_vqvae.models.prior.modeling_prior import VQPriorModel
from hf_vqvae.pipelines.exporting import save_outputs, save_reconstructions, write_output
from hf_vqvae.pipelines.outputs import postprocess_samples
from hf_vqvae.pipelines.vq_sample import VQSamplePipeline, per_class_labels
from hf_vqvae.training.arguments import add_data_args, data_column, load_raw_splits
from hf_vqvae.training.code_datasets import encode_batches
from hf_vqvae.training.config_overrides import from_pretrained_with_overrides
from hf_vqvae.training.history import read_history
from hf_vqvae.training.modelcard import write_model_card

# Dtypes the weights may be stored in; configs keep float32, so loading upcasts them.
STORAGE_DTYPES = ["float32", "float16", "bfloat16"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_dir", required=True, help="A train_prior.py output: VQ-VAE + prior/.")
    parser.add_argument("--release_dir", required=True, help="The released folder, e.g. model_cards/NAME.")
    parser.add_argument("--model_id", help="Hub id used in the card's snippets (default: org/NAME).")
    add_data_args(parser)
    parser.add_argument(
        "--speaker_column",
        help="A VQ-VAE with speakers: each take's speaker, to reconstruct with it and convert to two others.",
    )
    parser.add_argument("--dataset_id", nargs="*", default=[], help="Hub dataset ids for the card metadata.")
    parser.add_argument("--eval_split", help="How the validation split was made, in words, for the card.")
    parser.add_argument(
        "--training_commands", required=True, help="A file with the commands that train the model."
    )
    parser.add_argument(
        "--card_sections",
        nargs="*",
        default=[],
        help="Markdown files, each '## Title' + text: further card sections (first: intended use and limitations).",
    )
    parser.add_argument(
        "--config_overrides",
        help='VQ-VAE config fields to change in the release, e.g. "reconstruction_loss_type=mse": a loss that only '
        "polished the released weights should not become the default of everyone who fine-tunes them. Only "
        "fields that keep the weights' shapes.",
    )
    parser.add_argument("--training_time", help="Wall-clock training time, for the card.")
    parser.add_argument("--hardware", help="Training hardware, for the card.")
    parser.add_argument(
        "--num_samples", type=int, default=8, help="Reconstruction pairs and samples per class."
    )
    parser.add_argument("--eval_batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--vqvae_storage_dtype",
        choices=STORAGE_DTYPES,
        default="float32",
        help="Store the VQ-VAE's weights in this dtype (float16 halves its file and, with its 10-bit mantissa, "
        "suits weights of known range); its config keeps float32, so from_pretrained loads them upcast. Every "
        "metric is measured with the rounded weights, as users load them.",
    )
    parser.add_argument(
        "--prior_storage_dtype",
        choices=STORAGE_DTYPES,
        default="float32",
        help="Store the prior's weights in this dtype (bfloat16 or float16 halve the folder's largest file); its "
        "config keeps float32, so from_pretrained loads them upcast. The prior's metrics are measured on the "
        "rounded weights, as users load them.",
    )
    parser.add_argument(
        "--without_training_history",
        action="store_true",
        help="Release a VQ-VAE whose train_vqvae.py run is not at hand (its folder lost, or the model downloaded): "
        "the card's 'Avoiding codebook collapse' section is written from --card_sections as given, without the "
        "table of validations read from --model_dir/training_history.jsonl.",
    )
    return parser.parse_args(argv)


def read_sections(paths: list[str]) -> dict[str, str]:
    """'## Title' headed Markdown files -> {title: text}."""
    sections = {}
    for path in paths:
        text = Path(path).read_text()
        if not text.startswith("## "):
            raise ValueError(f"--card_sections: {path} must start with a '## Title' line, then its text.")
        for chunk in text.split("\n## "):
            title, _, body = chunk.removeprefix("## ").partition("\n")
            sections[title.strip()] = body.strip()
    return sections


def check_inputs(args: argparse.Namespace) -> None:
    """Fail before any evaluation on what would otherwise stop the release half-written."""
    model_dir = Path(args.model_dir)
    history = [] if args.without_training_history else [model_dir / "training_history.jsonl"]
    expected = {
        "--model_dir": [model_dir / "config.json", model_dir / "prior" / "config.json"],
        "--model_dir (the VQ-VAE's own training run; or give --without_training_history)": history,
        "--training_commands": [Path(args.training_commands)],
        "--card_sections": [Path(path) for path in args.card_sections],
    }
    for flag, files in expected.items():
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{flag}: missing {', '.join(missing)}. --model_dir is a train_prior.py output written into the "
                "folder of the VQ-VAE's train_vqvae.py run (VQ-VAE at the root, prior/, training_history.jsonl)."
            )
    if args.streaming:
        raise ValueError("--streaming: releasing measures the whole validation split; load it map-style.")


@torch.no_grad()
def round_weights_to(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Round the model's floating-point weights to `dtype`, keeping their own dtype: the values that loading
    weights stored in `dtype` gives, so that what is measured is what users get."""
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.copy_(tensor.to(dtype))


def prior_metrics(
    prior: VQPriorModel, vqvae: VQVAEModel, raw_eval, column: str, label_column, batch_size: int
) -> dict[str, float]:
    """The prior's NLL on the validation codes (centred inputs, as train_prior.py encodes them), in bits per
    code, per input dimension, and against the entropy of the code-usage distribution."""
    prepared = prepare_dataset(raw_eval, build_preprocessor(vqvae.config, train=False), column, label_column)
    codes = encode_batches(
        vqvae, DataLoader(prepared, batch_size=batch_size, collate_fn=collate_examples), "encoding validation"
    )
    batches = [
        {"codes": batch["codes"].long(), "class_labels": batch.get(LABEL_KEY)}
        for batch in DataLoader(codes, batch_size=batch_size)
    ]
    dims_per_example = vqvae.config.in_channels * math.prod(vqvae.config.sample_size)
    results = evaluate_prior(prior, batches, dims_per_example)
    # The ratio only: the code entropy reported is that of the reconstruction metrics (whole recordings for audio).
    ratio = compare_with_code_entropy(
        results["prior_bits_per_code"], codes[:]["codes"].long(), vqvae.config.codebook_size
    )["prior_bits_per_code_over_code_entropy"]
    return results | {"prior_bits_per_code_over_code_entropy": ratio}


def store_weights_as(folder: Path, dtype: torch.dtype) -> None:
    """Rewrite `folder/model.safetensors` with floating-point tensors cast to `dtype`, leaving config.json as
    saved, so loading casts them back to the config's dtype."""
    weights_file = folder / "model.safetensors"
    tensors = {
        name: tensor.to(dtype) if tensor.is_floating_point() else tensor
        for name, tensor in safetensors.torch.load_file(weights_file).items()
    }
    safetensors.torch.save_file(tensors, weights_file, metadata={"format": "pt"})


@torch.no_grad()
def save_reconstruction_pairs(
    vqvae: VQVAEModel, raw_eval, column: str, count: int, folder: Path, speaker_column: str | None = None
) -> list[Path]:
    """The first validation examples and their reconstructions: a two-row PNG grid (originals above), WAV pairs,
    or GIFs with the original left and the reconstruction right. With speakers, reconstructed with each example's
    own speaker, and also converted to the speakers 1 and 3 ids further on (`converted_{i}_to_{name}.wav`)."""
    prepared = prepare_dataset(
        raw_eval.select(range(min(count, len(raw_eval)))),
        build_preprocessor(vqvae.config, train=False),
        column,
        speaker_column=speaker_column,
    )
    batch = collate_examples([prepared[i] for i in range(len(prepared))])
    inputs, speakers = batch[vqvae.main_input_name], batch.get(SPEAKER_KEY)
    reconstructions = vqvae(inputs, speaker_ids=speakers).reconstruction
    paths = save_reconstructions(inputs, reconstructions, vqvae.config, folder)
    if speakers is None:
        return paths
    codes = vqvae.encode(inputs).codes
    for targets in conversion_targets(speakers, vqvae.config.num_speakers):
        outputs = postprocess_samples(vqvae.decode(codes, speaker_ids=targets), vqvae.config)
        paths += [
            write_output(
                output, vqvae.config, folder / f"converted_{index}_to_{vqvae.config.id2speaker[int(target)]}"
            )
            for index, (output, target) in enumerate(zip(outputs, targets, strict=True))
        ]
    return paths


@torch.no_grad()
def save_prior_samples(
    prior: VQPriorModel, vqvae: VQVAEModel, per_class: int, folder: Path, seed: int
) -> dict[str, list[Path]]:
    """Samples by class name (`""` for an unconditional prior), `per_class` of each, drawn through the pipeline: one
    PNG grid with a row per class for images, WAV or GIF files otherwise."""
    num_classes = prior.config.num_classes
    outputs = VQSamplePipeline(vqvae, prior)(
        num_samples=per_class * max(num_classes, 1),
        class_labels=per_class_labels(num_classes, per_class),
        generator=torch.Generator().manual_seed(seed),
    )
    if vqvae.config.modality == "image":
        return {"": save_outputs(outputs, vqvae.config, folder, "prior_sample", rows=num_classes or None)}
    class_names = [prior.config.id2label[index] for index in range(num_classes)] if num_classes else [""]
    return {
        name: save_outputs(
            outputs[index * per_class : (index + 1) * per_class],
            vqvae.config,
            folder,
            f"sample_{name}" if name else "sample",
        )
        for index, name in enumerate(class_names)
    }


def media_table(release_dir: Path, pairs: list[Path], samples: dict[str, list[Path]]) -> str:
    """A Markdown section body linking audio files (or showing GIFs): reconstruction pairs, then samples."""

    def cell(path: Path) -> str:
        target = quote(path.relative_to(release_dir).as_posix())
        return f"![{path.stem}]({target})" if path.suffix == ".gif" else f"[{path.name}]({target})"

    originals = [path for path in pairs if path.suffix == ".wav" and path.stem.startswith("original_")]
    reconstructions = [
        path for path in pairs if path.suffix == ".wav" and path.stem.startswith("reconstruction_")
    ]
    converted = [path for path in pairs if path.stem.startswith("converted_")]
    lines = ["Validation examples:", ""]
    if originals and converted:
        lines += ["| original | reconstruction | converted to other speakers |", "|---|---|---|"]
        for index, (a, b) in enumerate(zip(originals, reconstructions, strict=True)):
            others = " ".join(
                cell(path) for path in converted if path.stem.startswith(f"converted_{index}_to_")
            )
            lines.append(f"| {cell(a)} | {cell(b)} | {others} |")
    elif originals:
        lines += ["| original | reconstruction |", "|---|---|"]
        lines += [f"| {cell(a)} | {cell(b)} |" for a, b in zip(originals, reconstructions, strict=True)]
    else:  # videos: original left, reconstruction right, in one GIF
        lines += ["| original (left) vs reconstruction (right) |", "|---|"]
        lines += [f"| {cell(path)} |" for path in pairs]
    lines += ["", "Samples from the prior:", "", "| class | samples |", "|---|---|"]
    lines += [
        f"| {name or '—'} | {' '.join(cell(path) for path in paths)} |" for name, paths in samples.items()
    ]
    return "\n".join(lines)


def collapse_table(history_file: Path) -> str:
    """Codebook usage at every validation of the VQ-VAE's training run, as a Markdown table."""
    records = read_history(history_file)
    # The final validation repeats the last step's; keep one row per step.
    rows = list({r["step"]: r for r in records if "eval_codebook_perplexity" in r}.values())
    quality = "eval_snr_db" if any("eval_snr_db" in row for row in rows) else "eval_psnr_uint8"
    header = "SNR (dB)" if quality == "eval_snr_db" else "PSNR 8-bit (dB)"
    lines = [
        f"| step | {header} | perplexity | codes used | restarts so far |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['step']} | {row[quality]:.2f} | {row['eval_codebook_perplexity']:.0f} | "
            f"{row['eval_codebook_fraction_used']:.1%} | {row.get('eval_num_restarts', 0):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_inputs(args)
    sections = read_sections(args.card_sections)
    model_dir, release_dir = Path(args.model_dir), Path(args.release_dir)
    vqvae, prior, raw_eval = load_release(args, model_dir)
    modality, column = vqvae.config.modality, data_column(args, vqvae.config.modality)

    vqvae_dtype, prior_dtype = (
        getattr(torch, name) for name in (args.vqvae_storage_dtype, args.prior_storage_dtype)
    )
    round_weights_to(vqvae, vqvae_dtype)
    round_weights_to(prior, prior_dtype)
    metrics = evaluate_split(
        vqvae,
        raw_eval,
        column,
        args.eval_batch_size,
        show_progress_bar=True,
        speaker_column=args.speaker_column,
    )
    metrics.pop("num_eval_examples")
    metrics |= prior_metrics(prior, vqvae, raw_eval, column, args.label_column, args.eval_batch_size)

    VQSamplePipeline(vqvae, prior).save_pretrained(release_dir)  # the models, and the pipeline's code
    store_weights_as(release_dir, vqvae_dtype)
    store_weights_as(release_dir / "prior", prior_dtype)
    samples_dir = release_dir / "samples"
    pairs = save_reconstruction_pairs(
        vqvae, raw_eval, column, args.num_samples, samples_dir, args.speaker_column
    )
    prior_samples = save_prior_samples(prior, vqvae, args.num_samples, samples_dir, args.seed)
    shown = (
        [path for paths in prior_samples.values() for path in paths] + pairs if modality == "image" else []
    )
    shown += copied_training_curves(model_dir, samples_dir)
    limitations = sections.pop("Intended use and limitations", None)
    sections |= media_sections(args, modality, model_dir, release_dir, pairs, prior_samples, sections)
    write_model_card(
        release_dir,
        model_id=args.model_id or f"org/{release_dir.name}",
        config=vqvae.config,
        prior_config=prior.config,
        metrics=metrics,
        training_command=Path(args.training_commands).read_text().strip(),
        datasets=args.dataset_id,
        eval_split=args.eval_split,
        sample_files=[str(path.relative_to(release_dir)) for path in shown],
        training_time=args.training_time,
        hardware=args.hardware,
        limitations=limitations,
        extra_sections=sections,
    )
    print(json.dumps(metrics, indent=2))


def load_release(args, model_dir: Path):
    """The VQ-VAE (with --config_overrides) and prior to release, and the validation split they are measured on."""
    vqvae = from_pretrained_with_overrides(VQVAEModel, model_dir, args.config_overrides).eval()
    prior = VQPriorModel.from_pretrained(model_dir / "prior").eval()
    if prior.config.num_classes and not args.label_column:
        raise ValueError(
            f"The prior is class-conditional ({prior.config.num_classes} classes): give --label_column, the "
            "column of class labels it was trained on, so its NLL is measured with them."
        )
    raw_train, raw_eval, _ = load_raw_splits(args, vqvae.config.modality)
    if raw_eval is None:
        raise ValueError(
            "Releasing needs a validation split: give --validation_data_files or --validation_data_dir, or a "
            "--validation_split_percentage above 0."
        )
    if args.speaker_column:
        _, raw_eval, speaker_names = encode_speaker_column(raw_train, raw_eval, args.speaker_column)
        vqvae.config.check_speakers(speaker_names)
    return vqvae, prior, raw_eval


def copied_training_curves(model_dir: Path, samples_dir: Path) -> list[Path]:
    """The training runs' curve plots, copied beside the samples."""
    copied = []
    for curves in ("training_curves.png", "prior_training_curves.png"):
        source = model_dir / "samples" / curves
        if source.is_file():
            copied.append(samples_dir / curves)
            copied[-1].write_bytes(source.read_bytes())
    return copied


def media_sections(args, modality, model_dir, release_dir, pairs, prior_samples, sections) -> dict[str, str]:
    """The card's "Listen" / "Watch" table of audio and video files, and the codebook-usage table of training."""
    added = {}
    if modality != "image":
        added["Listen" if modality == "audio" else "Watch"] = media_table(release_dir, pairs, prior_samples)
    if not args.without_training_history:
        added["Avoiding codebook collapse"] = (
            sections.get("Avoiding codebook collapse", "")
            + "\n\nValidation during training:\n\n"
            + collapse_table(model_dir / "training_history.jsonl")
        ).strip()
    return added


if __name__ == "__main__":
    main()
