r"""Score a class-conditional prior's samples over guidance scales: class fidelity, within-class diversity (against
real validation data) and, for speech, harmonicity, with a classifier trained on the training split. For a VQ-VAE
with speakers, `--speaker_column` adds a speaker classifier, and scores voice conversion (validation takes
decoded with two other speakers) and how often samples are heard as the speaker they were decoded with.

    python examples/evaluate_samples.py --model_name_or_path model_cards/vqvae-cifar10 \
        --data_files ../shared/data/cifar10/train.parquet --image_column img --label_column label \
        --validation_split_percentage 10 --classifier_dir runs/classifier-cifar10 --output_dir runs/sweep-cifar10

The validation split is the one the training scripts hold out with the same flags, so it never trained the
classifier, the VQ-VAE or the prior. The classifier is trained once and reused from --classifier_dir. Writes
sweep.json, sweep.md and, per guidance scale, the samples (an image grid, one row per class, or WAV files).
"""

import argparse
import dataclasses
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hf_vqvae import VQVAEModel
from hf_vqvae.data import (
    LABEL_KEY,
    SPEAKER_KEY,
    build_preprocessor,
    collate_examples,
    encode_speaker_column,
    prepare_dataset,
)
from hf_vqvae.evaluation import metrics
from hf_vqvae.evaluation.sample_classifier import SampleClassifier, classify, train_classifier
from hf_vqvae.evaluation.samples import (
    conversion_targets,
    guidance_sweep,
    harmonicity,
    rows_as_dicts,
    sweep_table,
    within_class_diversity,
)
from hf_vqvae.models.number_checks import non_negative_float, positive_int
from hf_vqvae.models.prior.guidance import GUIDANCE_SCHEDULES
from hf_vqvae.models.prior.modeling_prior import VQPriorModel
from hf_vqvae.pipelines.exporting import save_samples
from hf_vqvae.pipelines.recordings import reconstruct_recording
from hf_vqvae.training.arguments import add_data_args, data_column, load_raw_splits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model_name_or_path",
        required=True,
        help="A pipeline folder: the VQ-VAE and prior/ (without prior/, only the reconstruction and voice scores).",
    )
    parser.add_argument(
        "--classifier_dir", required=True, help="Where the classifier is kept (trained if absent)."
    )
    parser.add_argument("--output_dir", required=True)
    parser.add_argument(
        "--guidance_scales", type=non_negative_float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 4.0]
    )
    parser.add_argument(
        "--guidance_schedule",
        choices=GUIDANCE_SCHEDULES,
        default="constant",
        help="How each scale is applied over the code grid (see VQPriorModel.generate).",
    )
    parser.add_argument("--samples_per_class", type=positive_int, default=50)
    parser.add_argument("--sampling_batch_size", type=positive_int, default=100)
    parser.add_argument("--classifier_epochs", type=positive_int, default=15)
    parser.add_argument(
        "--seed", type=int, default=0, help="Seeds the samples, the classifier and data caps."
    )
    parser.add_argument(
        "--speaker_column",
        help="Column of each take's speaker: scores voice conversion and the speakers of samples (a VQ-VAE with "
        "speakers only).",
    )
    parser.add_argument(
        "--speaker_classifier_dir", help="Where the speaker classifier is kept (trained if absent)."
    )
    add_data_args(parser)
    args = parser.parse_args(argv)
    if bool(args.speaker_column) != bool(args.speaker_classifier_dir):
        parser.error("--speaker_column and --speaker_classifier_dir go together.")
    if not args.label_column:
        parser.error("--label_column is required: fidelity is measured against the classes of the data.")
    for flag in (
        "--classifier_dir",
        "--output_dir",
        "--speaker_classifier_dir",
    ):  # before any training or sweep
        folder = getattr(args, flag[2:])
        if folder and Path(folder).exists() and not Path(folder).is_dir():
            parser.error(f"{flag} {folder!r} is a file; give a folder to write to.")
    return args


def load_examples(args, vqvae: VQVAEModel, raw_split, name: str) -> dict[str, torch.Tensor]:
    """A split's model inputs (centred crops, as the VQ-VAE's validation sees them), labels and speakers (with
    --speaker_column), in memory, under their batch keys."""
    preprocessor = build_preprocessor(vqvae.config, train=False)
    prepared = prepare_dataset(
        raw_split,
        preprocessor,
        data_column(args, vqvae.config.modality),
        args.label_column,
        speaker_column=args.speaker_column,
    )
    batches = list(
        tqdm(DataLoader(prepared, batch_size=256, collate_fn=collate_examples), desc=f"loading {name}")
    )
    return {key: torch.cat([batch[key] for batch in batches]) for key in batches[0]}


def trained_classifier(
    args, vqvae: VQVAEModel, flag: str, key: str, train: dict, evaluation: dict, num_classes: int
):
    """The classifier of `key` (class labels or speakers) in the folder of `flag` (`--classifier_dir` or
    `--speaker_classifier_dir`), or a new one trained on the training split and saved there; with its validation
    accuracy."""
    classifier_dir = getattr(args, flag[2:])
    config = vqvae.config
    sampling_rate = config.sampling_rate if config.modality == "audio" else None
    eval_inputs, eval_labels = evaluation[vqvae.main_input_name], evaluation[key]
    if (Path(classifier_dir) / "classifier.json").is_file():
        classifier, accuracy = SampleClassifier.load(classifier_dir)
        wanted = {
            "modality": config.modality,
            "in_channels": config.in_channels,
            "num_classes": num_classes,
            "sampling_rate": sampling_rate,
        }
        differing = {
            name: classifier.settings[name] for name in wanted if classifier.settings[name] != wanted[name]
        }
        if differing:
            needed = {name: wanted[name] for name in differing}
            raise ValueError(
                f"{flag} {classifier_dir}: its classifier was trained for {differing}, but this model "
                f"and data need {needed}. Give another {flag} (a new classifier is trained there) or "
                "remove this one."
            )
        return classifier, accuracy
    classifier = SampleClassifier(config.modality, config.in_channels, num_classes, sampling_rate)
    torch.manual_seed(args.seed)
    train_classifier(
        classifier, train[vqvae.main_input_name], train[key], epochs=args.classifier_epochs, seed=args.seed
    )
    accuracy = (classify(classifier, eval_inputs)[0] == eval_labels).float().mean().item()
    classifier.save(classifier_dir, accuracy)
    return classifier, accuracy


def check_prior_classes(args, prior: VQPriorModel, label_names: list[str] | None) -> list[str]:
    """Fidelity needs a class-conditional prior with as many classes as --label_column; returns the class names
    (the prior's own for a plain integer column, which names none)."""
    num_classes = prior.config.num_classes
    if num_classes == 0:
        raise ValueError(
            f"{args.model_name_or_path}: the prior is unconditional (num_classes=0); class fidelity and guidance "
            "need a class-conditional prior (train_prior.py --label_column ... --condition_dropout 0.1)."
        )
    if label_names is None:
        return [str(prior.config.id2label.get(index, index)) for index in range(num_classes)]
    if num_classes != len(label_names):
        raise ValueError(
            f"The prior is conditioned on {num_classes} classes, but --label_column {args.label_column!r} gives "
            f"{len(label_names)} ({label_names}). Give the data the prior was trained on."
        )
    return label_names


@torch.no_grad()
def encoded(vqvae: VQVAEModel, inputs: torch.Tensor, batch_size: int = 500) -> torch.LongTensor:
    """The code grids of `inputs`, batch by batch."""
    return torch.cat(
        [
            vqvae.encode(inputs[start : start + batch_size]).codes
            for start in range(0, len(inputs), batch_size)
        ]
    )


@torch.no_grad()
def decoded(
    vqvae: VQVAEModel, codes: torch.LongTensor, speaker_ids: torch.LongTensor | None, batch_size: int = 500
) -> torch.Tensor:
    """`codes` decoded with `speaker_ids` (a reconstruction, or a voice conversion), in [-1, 1], batch by batch."""
    outputs = []
    for start in range(0, len(codes), batch_size):
        speakers = speaker_ids[start : start + batch_size] if speaker_ids is not None else None
        outputs.append(
            vqvae.decode(codes[start : start + batch_size], speaker_ids=speakers).float().clamp(-1, 1)
        )
    return torch.cat(outputs)


def accuracy_of(classifier, inputs: torch.Tensor, labels: torch.LongTensor) -> float:
    return (classify(classifier, inputs)[0] == labels).float().mean().item()


def voice_scores(vqvae: VQVAEModel, classifier, speaker_classifier, evaluation: dict) -> dict[str, float]:
    """Reconstructions with the true speaker, and conversions of every take to the speakers 1 and 3 ids further
    on: how often the digit is kept and the target speaker heard."""
    inputs, labels, speakers = (evaluation[k] for k in (vqvae.main_input_name, LABEL_KEY, SPEAKER_KEY))
    codes = encoded(vqvae, inputs)
    reconstructions = decoded(vqvae, codes, speakers)
    scores = {
        "reconstruction_speaker_accuracy": accuracy_of(speaker_classifier, reconstructions, speakers),
        "reconstruction_harmonicity": harmonicity(reconstructions, vqvae.config.sampling_rate).mean().item(),
    }
    targets = conversion_targets(speakers, vqvae.config.num_speakers)
    converted = torch.cat([decoded(vqvae, codes, target) for target in targets])
    targets = torch.cat(targets)
    scores["conversion_target_speaker_accuracy"] = accuracy_of(speaker_classifier, converted, targets)
    scores["conversion_source_speaker_accuracy"] = accuracy_of(
        speaker_classifier, converted, speakers.repeat(2)
    )
    scores["conversion_digit_accuracy"] = accuracy_of(classifier, converted, labels.repeat(2))
    return scores


@torch.no_grad()
def level_scores(args, vqvae: VQVAEModel, raw_eval) -> dict[str, float]:
    """Whole validation takes reconstructed at their recorded level and peak-normalised to the model's level (with
    their own speakers): the SNR of each, and the largest gap between the two over the takes."""
    config = vqvae.config
    takes = prepare_dataset(
        raw_eval,
        dataclasses.replace(build_preprocessor(config, train=False), num_samples=None, peak_level=None),
        data_column(args, config.modality),
        speaker_column=args.speaker_column,
    )
    recorded, normalised = [], []
    for take in tqdm(takes, desc="level independence", total=len(takes)):
        waveform, speaker = take[vqvae.main_input_name], take.get(SPEAKER_KEY)
        if waveform is None or waveform.abs().max() < 1e-3:
            continue
        peaked = waveform * (config.audio_peak_level or 1.0) / waveform.abs().max()
        for source, scores in ((waveform, recorded), (peaked, normalised)):
            reconstruction = reconstruct_recording(vqvae, source, speaker_ids=speaker)
            scores.append(metrics.snr_db(reconstruction[None], source[None]).item())
    gaps = [abs(a - b) for a, b in zip(recorded, normalised, strict=True)]
    return {
        "recording_snr_db_at_recorded_level": sum(recorded) / len(recorded),
        "recording_snr_db_peak_normalised": sum(normalised) / len(normalised),
        "recording_snr_db_largest_gap": max(gaps),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    vqvae = VQVAEModel.from_pretrained(args.model_name_or_path).eval()
    prior = None
    if (Path(args.model_name_or_path) / "prior").is_dir():
        prior = VQPriorModel.from_pretrained(args.model_name_or_path, subfolder="prior").eval()
    raw_train, raw_eval, label_names = load_raw_splits(args, vqvae.config.modality)
    if prior is not None:
        label_names = check_prior_classes(args, prior, label_names)  # before the classifier is trained
    speaker_names = None
    if args.speaker_column:
        raw_train, raw_eval, speaker_names = encode_speaker_column(raw_train, raw_eval, args.speaker_column)
        vqvae.config.check_speakers(speaker_names)
    evaluation = load_examples(args, vqvae, raw_eval, "validation")
    train = None
    if not (Path(args.classifier_dir) / "classifier.json").is_file() or (
        speaker_names and not (Path(args.speaker_classifier_dir) / "classifier.json").is_file()
    ):
        train = load_examples(args, vqvae, raw_train, "train")
    classifier, accuracy = trained_classifier(
        args, vqvae, "--classifier_dir", LABEL_KEY, train, evaluation, len(label_names or prior_names(prior))
    )
    real = real_data_scores(vqvae, classifier, evaluation) | {"classifier_accuracy": accuracy}
    speaker_classifier = None
    if speaker_names:
        speaker_classifier, real["speaker_classifier_accuracy"] = trained_classifier(
            args, vqvae, "--speaker_classifier_dir", SPEAKER_KEY, train, evaluation, len(speaker_names)
        )
        real.update(voice_scores(vqvae, classifier, speaker_classifier, evaluation))
    if vqvae.config.modality == "audio":
        real.update(level_scores(args, vqvae, raw_eval))
    print(json.dumps(real, indent=2))
    rows = []
    if prior is not None:
        rows = sweep_and_save(
            args, vqvae, prior, classifier, speaker_classifier, real["diversity"], label_names
        )
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    summary = {"real": real, "sweep": rows_as_dicts(rows), "arguments": vars(args)}
    (Path(args.output_dir) / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")


def prior_names(prior: VQPriorModel | None) -> list[str]:
    return [] if prior is None else [str(name) for name in prior.config.id2label.values()]


def real_data_scores(vqvae: VQVAEModel, classifier, evaluation: dict) -> dict[str, float]:
    """The reference figures of the validation data: the classifier's accuracy on reconstructions (with the true
    speakers), overall and per class, the within-class diversity, and the harmonicity of real speech."""
    inputs, labels = evaluation[vqvae.main_input_name], evaluation[LABEL_KEY]
    reconstructions = decoded(vqvae, encoded(vqvae, inputs), evaluation.get(SPEAKER_KEY))
    correct = (classify(classifier, reconstructions)[0] == labels).float()
    real = {
        "reconstruction_accuracy": correct.mean().item(),
        # which classes the VQ-VAE loses bounds what a prior over its codes can be scored for, class by class
        "reconstruction_accuracy_per_class": {
            str(label): correct[labels == label].mean().item() for label in labels.unique().tolist()
        },
        "diversity": within_class_diversity(classify(classifier, inputs)[1], labels),
        "validation_examples": len(labels),
    }
    if vqvae.config.modality == "audio":
        rate = vqvae.config.sampling_rate
        real["harmonicity"] = harmonicity(inputs, rate).mean().item()
        real["harmonicity_overlap"] = harmonicity(inputs, rate, normalization="overlap").mean().item()
    return real


def sweep_and_save(args, vqvae, prior, classifier, speaker_classifier, real_diversity, label_names) -> list:
    """The guidance sweep, with the first ten samples of each class per scale and the table written out."""
    rows, samples = guidance_sweep(
        vqvae,
        prior,
        classifier,
        args.guidance_scales,
        args.samples_per_class,
        real_diversity,
        args.seed,
        args.sampling_batch_size,
        speaker_classifier,
        args.guidance_schedule,
    )
    output_dir = Path(args.output_dir)
    schedule = "" if args.guidance_schedule == "constant" else f"{args.guidance_schedule}_"
    for scale, decoded in samples.items():
        per_class = decoded.view(len(label_names), args.samples_per_class, *decoded.shape[1:])
        save_samples(
            per_class[:, :10].flatten(0, 1),
            vqvae.config,
            output_dir / f"guidance_{schedule}{scale:g}",
            rows=len(label_names),
        )
    table = sweep_table(rows, label_names)
    print(table)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "sweep.md").write_text(table + "\n")
    return rows


if __name__ == "__main__":
    main()
