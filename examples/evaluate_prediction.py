r"""Score video prediction: give the prior the codes of each validation clip's first frames, let it sample the rest,
and compare the predicted frames with the true ones (PSNR on 8-bit frames, SSIM) and with copying the last given
frame, over temperatures.

    python examples/evaluate_prediction.py --model_name_or_path model_cards/vqvae-moving-fmnist \
        --validation_data_files data/moving-fmnist/validation.parquet --video_column video \
        --num_clips 200 --temperatures 1.0 0.7 0.5 --output_dir runs/prediction-mfmnist

The validation clips are built from garments that no training clip shows (`make_moving_fmnist.py`). Writes
prediction.json, prediction.md and, per temperature, GIFs of the first clips: given | predicted | true.
"""

import argparse
import json
from pathlib import Path

import torch

from hf_vqvae import VQVAEModel
from hf_vqvae.data import build_preprocessor, prepare_dataset
from hf_vqvae.data.loading import load_raw_dataset
from hf_vqvae.evaluation.prediction import predict_clips, prediction_scores
from hf_vqvae.models.number_checks import positive_float, positive_int
from hf_vqvae.models.prior.modeling_prior import VQPriorModel
from hf_vqvae.pipelines.exporting import save_outputs, side_by_side
from hf_vqvae.pipelines.outputs import postprocess_samples


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model_name_or_path", required=True, help="A video pipeline folder: VQ-VAE and prior/."
    )
    parser.add_argument("--validation_data_files", required=True, nargs="+", help="Held-out clips (parquet).")
    parser.add_argument("--video_column", default=None)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_clips", type=positive_int, default=200, help="The first N validation clips.")
    parser.add_argument("--prompt_frames", type=positive_int, default=8)
    parser.add_argument("--temperatures", type=positive_float, nargs="+", default=[1.0, 0.7])
    parser.add_argument("--top_k", type=positive_int, default=None)
    parser.add_argument("--batch_size", type=positive_int, default=16)
    parser.add_argument(
        "--num_gifs", type=int, default=4, help="Clips written as given | predicted | true GIFs."
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_clips(args, vqvae: VQVAEModel) -> torch.Tensor:
    """The first --num_clips validation clips as model inputs `(B, T, C, H, W)` in [-1, 1]."""
    raw = load_raw_dataset(data_files=args.validation_data_files, modality="video")
    raw = raw.select(range(min(args.num_clips, len(raw))))
    prepared = prepare_dataset(raw, build_preprocessor(vqvae.config, train=False), args.video_column)
    key = vqvae.config.modality_spec.input_name
    return torch.stack([example[key] for example in prepared])


def save_gifs(
    vqvae: VQVAEModel, clips, predictions, prompt_frames: int, output_dir: Path, count: int
) -> None:
    """given | predicted | true, frame by frame; the given panel holds its last frame once the prompt ends."""
    given = clips[:count].clone()
    given[:, prompt_frames:] = given[:, prompt_frames - 1 : prompt_frames]
    panels = [
        postprocess_samples(x, vqvae.config, "pil") for x in (given, predictions[:count], clips[:count])
    ]
    clips_side_by_side = [side_by_side(*frames) for frames in zip(*panels, strict=True)]
    save_outputs(clips_side_by_side, vqvae.config, output_dir, "given_predicted_true")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    vqvae = VQVAEModel.from_pretrained(args.model_name_or_path).eval()
    prior = VQPriorModel.from_pretrained(args.model_name_or_path, subfolder="prior").eval()
    clips = load_clips(args, vqvae)
    output_dir = Path(args.output_dir)
    rows = []
    for temperature in args.temperatures:
        generator = torch.Generator().manual_seed(args.seed)
        predictions, reconstructions = predict_clips(
            vqvae,
            prior,
            clips,
            args.prompt_frames,
            generator,
            args.batch_size,
            temperature=temperature,
            top_k=args.top_k,
        )
        scores = prediction_scores(clips, predictions, reconstructions, args.prompt_frames)
        rows.append(
            {"temperature": temperature, "top_k": args.top_k, **vars(scores), "psnr_gain": scores.psnr_gain}
        )
        print(json.dumps(rows[-1]))
        save_gifs(
            vqvae,
            clips,
            predictions,
            args.prompt_frames,
            output_dir / f"temperature_{temperature:g}",
            args.num_gifs,
        )
    write_tables(args, rows, len(clips), output_dir)


def write_tables(args, rows: list[dict], num_clips: int, output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "prediction.json").write_text(
        json.dumps({"rows": rows, "num_clips": num_clips, "arguments": vars(args)}, indent=2) + "\n"
    )
    first, last = args.prompt_frames + 1, "end"
    lines = [
        f"Frames {first}-{last} of {num_clips} validation clips, predicted from the first {args.prompt_frames}.",
        "",
        "| temperature | PSNR (dB) | SSIM | copy last frame: PSNR | SSIM | gain (dB) | VQ-VAE reconstruction: PSNR |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['temperature']:g} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['baseline_psnr']:.2f} | "
        f"{row['baseline_ssim']:.3f} | {row['psnr_gain']:+.2f} | {row['reconstruction_psnr']:.2f} |"
        for row in rows
    ]
    (output_dir / "prediction.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
