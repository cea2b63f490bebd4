"""Rate and distortion of the released CIFAR-10 model as a codec (`hf-vqvae compress`) against Pillow's JPEG and
WebP at the qualities that bring their files nearest in size, on the cards' validation split of CIFAR-10.

    python benchmarks/benchmark_compression.py --num_images 200 --output_dir runs/compression

Sizes are counted two ways: whole files, and without container headers (hf_vqvae: the range coder's payload, no
19 + 2n-byte header and checksum; JPEG: the entropy-coded scan from its SOS marker on, no tables; WebP: the VP8
bitstream inside its RIFF chunk). Distortion: PSNR on 8-bit pixels and SSIM, against the original 32x32 images.
hf_vqvae codes without a class label (the prior's unconditional distribution). Writes a table and a PNG plot.
"""

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from machine import cpu_model

from hf_vqvae import VQPriorModel, VQVAEImageProcessor, VQVAEModel
from hf_vqvae.data import load_raw_dataset, split_train_validation
from hf_vqvae.evaluation.metrics import psnr_uint8, ssim
from hf_vqvae.models.vqvae.processors import processor_for
from hf_vqvae.pipelines.compression import CODING_BATCH, compress_many, decompress_many, run_coder
from hf_vqvae.pipelines.range_coding import code_probabilities

MODEL = Path(__file__).resolve().parents[1] / "model_cards" / "vqvae-cifar10"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "train.parquet"
HEADER_BYTES = 14 + 1 + 2 * 2 + 4


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num_images", type=int, default=200)
    parser.add_argument("--data_file", default=str(DATA))
    parser.add_argument("--output_dir", default="runs/compression")
    return parser.parse_args()


def validation_images(data_file: str, count: int) -> list[PIL.Image.Image]:
    """The first `count` images of the cards' validation split (every 10th row held out), as RGB."""
    _, validation = split_train_validation(load_raw_dataset(data_files=data_file), 10)
    images = []
    for example in validation.select(range(count)):
        value = example["img"]
        image = value if isinstance(value, PIL.Image.Image) else PIL.Image.open(io.BytesIO(value["bytes"]))
        images.append(image.convert("RGB"))
    return images


def jpeg_scan_bytes(data: bytes) -> int:
    """Bytes of a JPEG's entropy-coded data: from its (last) SOS marker to the end."""
    return len(data) - data.rfind(b"\xff\xda")


def webp_bitstream_bytes(data: bytes) -> int:
    """Bytes of the VP8/VP8L bitstream inside a WebP's RIFF container."""
    for chunk in (b"VP8 ", b"VP8L"):
        start = data.find(chunk)
        if start >= 0:
            return int.from_bytes(data[start + 4 : start + 8], "little")
    return len(data)


def scores(decoded: list[np.ndarray], originals: torch.Tensor) -> tuple[float, float]:
    """PSNR (dB, 8-bit) and SSIM of uint8 images `(H, W, C)` against the originals in [-1, 1]."""
    batch = torch.stack(
        [torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 127.5 - 1 for image in decoded]
    )
    return psnr_uint8(batch, originals).item(), ssim(batch, originals).item()


def pillow_curve(images, originals, codec: str, qualities, header_free) -> list[dict]:
    rows = []
    for quality in qualities:
        files, decoded = [], []
        for image in images:
            buffer = io.BytesIO()
            image.save(buffer, format=codec, quality=quality)
            files.append(buffer.getvalue())
            decoded.append(np.asarray(PIL.Image.open(io.BytesIO(files[-1])).convert("RGB")))
        psnr, structural = scores(decoded, originals)
        rows.append(
            {
                "codec": codec,
                "quality": quality,
                "bytes": float(np.mean([len(f) for f in files])),
                "bytes_without_headers": float(np.mean([header_free(f) for f in files])),
                "psnr": psnr,
                "ssim": structural,
            }
        )
    return rows


def vqvae_row(images, originals) -> dict:
    vqvae = VQVAEModel.from_pretrained(MODEL).eval()
    prior = VQPriorModel.from_pretrained(MODEL, subfolder="prior").eval()
    processor = processor_for(vqvae.config)
    pixel_values = processor(images)["pixel_values"]
    start = time.perf_counter()
    files = compress_many(vqvae, prior, pixel_values)
    compress_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded_values = decompress_many(vqvae, prior, files)
    decompress_seconds = time.perf_counter() - start
    psnr, structural = scores(processor.postprocess(decoded_values, "np"), originals)
    num_codes = int(np.prod(prior.config.code_shape))
    return {
        "codec": "hf_vqvae",
        "quality": None,
        "bytes": float(np.mean([len(f) for f in files])),
        "bytes_without_headers": float(np.mean([len(f) - HEADER_BYTES for f in files])),
        "psnr": psnr,
        "ssim": structural,
        "fixed_width_bytes": num_codes * np.log2(prior.config.codebook_size) / 8,
        "compress_seconds": compress_seconds,
        "decompress_seconds": decompress_seconds,
        "information_bytes": information_bits(vqvae, prior, pixel_values) / len(images) / 8,
    }


@torch.no_grad()
def information_bits(vqvae: VQVAEModel, prior: VQPriorModel, pixel_values: torch.Tensor) -> float:
    """-log2 of the probability the coder's model gives the images' codes: the size an ideal entropy coder would
    reach with the same probabilities (the prior's negative log-likelihood, in bits), summed over the images."""
    total = 0.0
    for chunk in pixel_values.split(CODING_BATCH):
        codes = vqvae.encode(chunk).codes.flatten(1)
        steps = iter(range(codes.shape[1]))

        def follow(logits: torch.FloatTensor, codes=codes, steps=steps) -> torch.LongTensor:
            nonlocal total
            step, tables = next(steps), code_probabilities(logits)
            total -= float(np.log2(tables[np.arange(len(codes)), codes[:, step].numpy()]).sum())
            chosen = torch.zeros(len(logits), dtype=torch.long)
            chosen[: len(codes)] = codes[:, step]
            return chosen

        run_coder(prior, follow, [None] * len(chunk))
    return total


def nearest(rows: list[dict], codec: str, target: float, key: str) -> dict:
    return min((row for row in rows if row["codec"] == codec), key=lambda row: abs(row[key] - target))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    images = validation_images(args.data_file, args.num_images)
    originals = VQVAEImageProcessor(size={"height": 32, "width": 32})(images)["pixel_values"]
    ours = vqvae_row(images, originals)
    rows = [ours]
    rows += pillow_curve(images, originals, "JPEG", range(1, 96, 2), jpeg_scan_bytes)
    rows += pillow_curve(images, originals, "WEBP", range(0, 101, 5), webp_bitstream_bytes)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "compression.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"CPU: {cpu_model()}; {len(images)} CIFAR-10 validation images (32x32)")
    print(
        "| codec | quality | bytes per image | without headers | PSNR (dB) | SSIM |\n|---|---|---|---|---|---|"
    )
    print(table_row(ours))
    for key in ("bytes", "bytes_without_headers"):
        for codec in ("JPEG", "WEBP"):
            print(table_row(nearest(rows, codec, ours[key], key), f"nearest in {key.replace('_', ' ')}"))
    print(
        f"hf_vqvae payload: {ours['bytes_without_headers'] / ours['fixed_width_bytes']:.2f}x the fixed-width codes "
        f"({ours['fixed_width_bytes']:.0f} bytes); whole file {ours['bytes'] / ours['fixed_width_bytes']:.2f}x; "
        f"{len(images)} images compressed in {ours['compress_seconds']:.1f} s and decompressed in "
        f"{ours['decompress_seconds']:.1f} s (torch on one thread)"
    )
    print(
        f"hf_vqvae payload {ours['bytes_without_headers']:.2f} bytes against the prior's information content "
        f"{ours['information_bytes']:.2f} bytes per image: {ours['bytes_without_headers'] / ours['information_bytes']:.3f}x"
    )
    plot(rows, output / "rate_distortion.png")


def table_row(row: dict, note: str = "") -> str:
    quality = "" if row["quality"] is None else row["quality"]
    name = f"{row['codec']} ({note})" if note else row["codec"]
    return (
        f"| {name} | {quality} | {row['bytes']:.1f} | {row['bytes_without_headers']:.1f} | {row['psnr']:.2f} | "
        f"{row['ssim']:.3f} |"
    )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key in zip(axes, ("bytes", "bytes_without_headers"), strict=True):
        for codec, style in (("JPEG", "o-"), ("WEBP", "s-")):
            curve = [row for row in rows if row["codec"] == codec]
            axis.plot(
                [row[key] for row in curve], [row["psnr"] for row in curve], style, markersize=3, label=codec
            )
        ours = next(row for row in rows if row["codec"] == "hf_vqvae")
        axis.plot([ours[key]], [ours["psnr"]], "r*", markersize=14, label="hf_vqvae (vqvae-cifar10)")
        axis.set_xscale("log")
        axis.set_xlabel(f"{key.replace('_', ' ')} per 32x32 image")
        axis.set_ylabel("PSNR (dB)")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
