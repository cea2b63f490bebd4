"""The command-line flags the example training scripts share, named as in the transformers/diffusers examples."""

import argparse
import contextlib
import importlib.util
import logging
import math
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import ProjectConfiguration, set_seed
from datasets import Dataset, IterableDataset, Value
from torch.optim.lr_scheduler import LRScheduler
from transformers import get_scheduler

from ..data import disable_media_decoding, load_raw_dataset, resolve_label_names, split_train_validation
from ..models.number_checks import non_negative_int, positive_int, split_percentage

logger = logging.getLogger(__name__)


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """Where the data comes from and how it is split."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset_name",
        help="A Hub dataset, or a built-in one: builtin:shapes, builtin:tones, "
        "builtin:sprites, builtin:moving-mnist.",
    )
    group.add_argument("--dataset_config_name", help="The Hub dataset's configuration.")
    group.add_argument(
        "--train_data_dir", help="A local folder: imagefolder, or audio/video files in class folders."
    )
    group.add_argument(
        "--data_files",
        nargs="+",
        help="Parquet/Arrow/CSV/JSON files (globs allowed; .gz/.xz/... compressed too).",
    )
    group.add_argument(
        "--validation_data_files",
        nargs="+",
        help="Files holding the validation split; without them (or --validation_data_dir, or a validation/ "
        "folder beside --train_data_dir's train/), --validation_split_percentage of the training data is held out.",
    )
    group.add_argument(
        "--validation_data_dir",
        help="A local folder holding the validation split, laid out as --train_data_dir. Default: the "
        "validation/ sub-folder of --train_data_dir, when it has train/ and validation/ sub-folders.",
    )
    group.add_argument("--image_column", help="Column holding images (default: guessed from the features).")
    group.add_argument("--audio_column", help="Column holding audio.")
    group.add_argument("--video_column", help="Column holding video.")
    group.add_argument(
        "--label_column", help="Column of class labels (class-conditional prior; label-wise samples)."
    )
    group.add_argument("--max_train_samples", type=int, help="Keep at most this many training examples.")
    group.add_argument("--max_eval_samples", type=int, help="Keep at most this many validation examples.")
    group.add_argument(
        "--validation_split_percentage",
        type=split_percentage,
        default=5.0,
        help="Percentage of the data held out for validation (evenly spread rows).",
    )
    group.add_argument(
        "--streaming", action="store_true", help="Read the dataset lazily (larger than memory)."
    )
    group.add_argument(
        "--max_bad_fraction",
        type=float,
        default=0.05,
        help="Fail when more than this fraction of the examples read so far cannot be decoded (checked from the "
        "100th read on; every read counts, so an example read once per epoch counts once per epoch). Bad examples "
        "are left out of their batch; a batch with no good example stops the run.",
    )
    group.add_argument("--builtin_num_examples", type=int, help="Size of a built-in dataset.")


# transformers' schedulers that `get_scheduler` builds from warm-up and total steps alone (`reduce_lr_on_plateau`
# needs a metric at every step, `cosine_with_min_lr` and `warmup_stable_decay` extra arguments).
LR_SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "inverse_sqrt",
)


def add_training_args(parser: argparse.ArgumentParser) -> None:
    """Optimisation, precision, checkpointing, logging and hub flags."""
    group = parser.add_argument_group("training")
    group.add_argument(
        "--output_dir", required=True, help="Hub-ready output folder (also holds checkpoints)."
    )
    group.add_argument("--seed", type=int, default=42)
    group.add_argument("--train_batch_size", type=positive_int, default=32, help="Batch size per process.")
    group.add_argument("--eval_batch_size", type=positive_int, default=64)
    group.add_argument("--learning_rate", type=float, default=2e-4)
    group.add_argument(
        "--lr_scheduler", default="constant", choices=LR_SCHEDULERS, help="A transformers scheduler."
    )
    group.add_argument("--lr_warmup_steps", type=non_negative_int, default=0)
    group.add_argument("--adam_weight_decay", type=float, default=0.0)
    group.add_argument("--max_grad_norm", type=float, default=None, help="Clip gradients to this norm.")
    group.add_argument(
        "--max_train_steps", type=positive_int, help="Total optimisation steps (overrides epochs)."
    )
    group.add_argument("--num_train_epochs", type=positive_int, default=1)
    group.add_argument("--gradient_accumulation_steps", type=positive_int, default=1)
    group.add_argument(
        "--mixed_precision",
        choices=["no", "fp16", "bf16"],
        default=None,
        help="Defaults to Accelerate's config; bf16 is ~1.6x faster on recent CPUs.",
    )
    group.add_argument(
        "--checkpointing_steps", type=positive_int, default=500, help="Save a resumable checkpoint every N."
    )
    group.add_argument(
        "--checkpoints_total_limit", type=positive_int, help="Keep only the newest N checkpoints."
    )
    group.add_argument("--resume_from_checkpoint", help="A checkpoint folder, or `latest` in --output_dir.")
    group.add_argument("--validation_steps", type=positive_int, default=500, help="Validate every N steps.")
    group.add_argument(
        "--report_to",
        default="tensorboard",
        help="Trackers: tensorboard (skipped with a warning when not installed), wandb, all, or none.",
    )
    group.add_argument("--logging_dir", default="logs", help="Tracker folder, relative to --output_dir.")
    group.add_argument(
        "--num_validation_samples", type=positive_int, default=16, help="Samples / reconstructions saved."
    )
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", help="Repo to push to (default: the output folder's name).")
    group.add_argument("--hub_token")


def load_raw_splits(
    args: argparse.Namespace, modality: str
) -> tuple[Dataset | IterableDataset, Dataset | IterableDataset | None, list[str] | None]:
    """The raw train and validation splits the data flags describe, and the class names of `--label_column`
    (`None` without labels): validation from `--validation_data_files` when given, else held out of the
    training data."""
    options = {"num_examples": args.builtin_num_examples} if args.builtin_num_examples else None
    raw = load_raw_dataset(
        args.dataset_name,
        args.dataset_config_name,
        args.train_data_dir,
        args.data_files,
        streaming=args.streaming,
        modality=modality,
        builtin_options=options,
    )
    # Undecoded before the split: its filter would otherwise decode every streamed example with `datasets`' own
    # decoders (which need torchcodec for audio and video, and crash on a corrupt file instead of skipping it).
    raw = with_class_label(disable_media_decoding(raw), args.label_column)
    label_names = resolve_label_names(raw, args.label_column) if args.label_column else None
    validation_source = validation_data_source(args)
    if validation_source is None:
        raw_train, raw_eval = split_train_validation(
            raw, args.validation_split_percentage, args.max_train_samples, args.max_eval_samples, args.seed
        )
        return raw_train, raw_eval, label_names
    raw_eval = load_raw_dataset(**validation_source, streaming=args.streaming, modality=modality)
    raw_eval = with_class_label(disable_media_decoding(raw_eval), args.label_column)
    if args.label_column:
        validation_names = resolve_label_names(raw_eval, args.label_column)
        if label_names is not None and validation_names is not None and validation_names != label_names:
            raise ValueError(
                f"The validation data: the classes of {args.label_column!r} are {validation_names}, but the "
                f"training data's are {label_names}; both must list the same classes in the same order."
            )
    raw_train, _ = split_train_validation(raw, 0, args.max_train_samples, seed=args.seed)
    raw_eval, _ = split_train_validation(raw_eval, 0, args.max_eval_samples, seed=args.seed)
    return raw_train, raw_eval, label_names


def validation_data_source(args: argparse.Namespace) -> dict | None:
    """Where a separate validation split comes from (`load_raw_dataset` arguments), or `None` to hold one out
    of the training data: `--validation_data_files`, `--validation_data_dir`, or the `validation/` folder
    beside `--train_data_dir`'s `train/` (imagefolder's layout)."""
    if args.validation_data_files and args.validation_data_dir:
        raise ValueError("Give --validation_data_files or --validation_data_dir, not both.")
    if args.validation_data_files:
        return {"data_files": args.validation_data_files}
    if args.validation_data_dir:
        return {"train_data_dir": args.validation_data_dir}
    root = Path(args.train_data_dir) if args.train_data_dir else None
    if root is not None and (root / "train").is_dir() and (root / "validation").is_dir():
        logger.info("Validating on %s, the validation/ folder beside train/.", root / "validation")
        return {"train_data_dir": str(root / "validation")}
    return None


def with_class_label(raw: Dataset | IterableDataset, label_column: str | None) -> Dataset | IterableDataset:
    """A map-style dataset whose `label_column` holds class names (strings) with the column encoded as a
    ClassLabel, names sorted as `class_encode_column` sorts them; anything else as it is."""
    feature = (raw.features or {}).get(label_column) if label_column else None
    if (
        isinstance(raw, Dataset)
        and isinstance(feature, Value)
        and feature.dtype in ("string", "large_string")
    ):
        return raw.class_encode_column(label_column)
    return raw


def data_column(args: argparse.Namespace, modality: str) -> str | None:
    """The column flag that matches the model's modality."""
    return {"image": args.image_column, "audio": args.audio_column, "video": args.video_column}[modality]


def resolve_report_to(report_to: str) -> str | None:
    """Accelerate's `log_with` for `--report_to`; the default tracker is dropped, with a warning, when missing."""
    if report_to == "none":
        return None
    if report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        logger.warning(
            "--report_to tensorboard: tensorboard is not installed, so only the JSON history is kept."
        )
        return None
    return report_to


def build_accelerator(args: argparse.Namespace) -> Accelerator:
    """The `Accelerator` the shared flags describe (precision, accumulation, trackers), with logging set up and
    every RNG seeded."""
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=resolve_report_to(args.report_to),
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / args.logging_dir)
        ),
        # A seedable sampler makes the data order a function of (seed, epoch), so a resumed run sees the same batches.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    return accelerator


def build_lr_scheduler(
    args: argparse.Namespace, accelerator: Accelerator, optimizer: torch.optim.Optimizer, train_loader
) -> tuple[LRScheduler, int]:
    """The prepared `--lr_scheduler` and the run's number of optimisation steps: `--max_train_steps`, or
    `--num_train_epochs` passes over `train_loader` once `accelerator` has split it between processes.

    Accelerate's prepared scheduler steps once per process at every optimisation step (it assumes each process
    sees 1/N of the data), so warm-up and total steps are counted in process-steps, as in diffusers' training
    scripts; counted in optimisation steps, N processes would run the schedule N times too fast.
    """
    max_train_steps = args.max_train_steps or args.num_train_epochs * math.ceil(
        len(train_loader) / args.gradient_accumulation_steps
    )
    scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer,
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    )
    return accelerator.prepare(scheduler), max_train_steps


def launch_command(accelerator: Accelerator) -> str:
    """The command line that ran this script, as a model card shows it: with `accelerate launch` and the number of
    processes when there were several (the effective batch size depends on it), shell-quoted."""
    launcher = (
        ["accelerate", "launch", "--num_processes", str(accelerator.num_processes)]
        if accelerator.num_processes > 1
        else ["python"]
    )
    return shlex.join([*launcher, *script_invocation(sys.argv[0]), *sys.argv[1:]])


def script_invocation(script: str) -> list[str]:
    """`["-m", "hf_vqvae.training.train_vqvae"]` for a module of this package run with `python -m` (whose
    `sys.argv[0]` is the installed file's path, which means nothing on another machine); else the script as given."""
    package_root = Path(__file__).resolve().parents[1]
    path = Path(script).resolve()
    if script.endswith(".py") and path.is_relative_to(package_root):
        return ["-m", ".".join(["hf_vqvae", *path.relative_to(package_root).with_suffix("").parts])]
    return [script]


def check_full_batch(num_examples: int, args: argparse.Namespace) -> None:
    """Fail before training when the training data cannot fill one batch (incomplete batches are dropped)."""
    if num_examples < args.train_batch_size:
        raise ValueError(
            f"The training data makes no full batch: {num_examples} examples per epoch, fewer than "
            f"--train_batch_size ({args.train_batch_size}) per process (incomplete batches are dropped). Lower "
            "--train_batch_size or add data."
        )


@contextlib.contextmanager
def reporting_missing_source(flag: str, name_or_path: str) -> Iterator[None]:
    """Report a model or config that is neither on disk nor loadable from the Hub in one line that names the flag.

    transformers treats a path that does not exist as a Hub repo id, so a mistyped local folder ends in a long
    traceback about reaching huggingface.co that never says the folder is missing.
    """
    try:
        yield
    except OSError as error:
        if Path(name_or_path).exists():
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OSError(
            f"{flag} {name_or_path!r}: no such local folder or file, and loading it as a Hub repo id failed: "
            f"{reason}"
        ) from error


def start_trackers(accelerator: Accelerator, args: argparse.Namespace, project_name: str) -> None:
    """Start `--report_to`'s trackers (main process only), with the scalar flags as the run's config."""
    if accelerator.is_main_process and accelerator.log_with:
        accelerator.init_trackers(
            project_name,
            config={k: v for k, v in vars(args).items() if isinstance(v, int | float | str | bool)},
        )
