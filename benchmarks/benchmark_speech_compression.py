"""Rate and distortion of the released speech model as a codec (`hf-vqvae compress`) against Opus (PyAV's libopus
encoder) at its lowest bitrates, on the cards' validation split of FSDD (every 10th take held out).

    python benchmarks/benchmark_speech_compression.py --classifier_dir runs/classifier-fsdd --output_dir runs/compression

Each file carries its take's speaker, so that it decodes in that voice. Each take is the model's input window (4,096 samples at 8 kHz, the take centred and zero-padded, peak level 0.9),
so both codecs code the same 0.51 s. Sizes: whole files (hf_vqvae with its 21-byte header and checksum; Opus in
Ogg) and without container headers (the range coder's payload; the Opus packets). Distortion: the log-mel
distance to the original (lower is better) and how often a digit classifier trained on the training split
(examples/evaluate_samples.py --classifier_dir) still hears the spoken digit. Writes a table, JSON and a plot.
"""

import argparse
import io
import json
from pathlib import Path

import av
import numpy as np
import torch
from machine import cpu_model

from hf_vqvae import VQPriorModel, VQVAEModel
from hf_vqvae.data import build_preprocessor, load_raw_dataset, prepare_dataset, split_train_validation
from hf_vqvae.data.columns import speakers_as_ids
from hf_vqvae.evaluation.metrics import log_mel_distance
from hf_vqvae.evaluation.sample_classifier import SampleClassifier, classify
from hf_vqvae.pipelines.compression import compress_many, decompress_many

MODEL = Path(__file__).resolve().parents[1] / "model_cards" / "vqvae-fsdd"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "train.parquet"
HEADER_BYTES = 14 + 1 + 2 + 4
OPUS_BITRATES = (6000, 8000, 12000, 16000)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classifier_dir", required=True)
    parser.add_argument("--num_takes", type=int, default=300)
    parser.add_argument("--data_file", default=str(DATA))
    parser.add_argument("--output_dir", default="runs/compression")
    return parser.parse_args()


def validation_takes(
    vqvae: VQVAEModel, data_file: str, count: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The takes as model inputs, their digits, and their speakers' ids in the model (each file decodes with its
    own speaker's voice, as the encoder is told it)."""
    _, validation = split_train_validation(load_raw_dataset(data_files=data_file), 10)
    validation = validation.select(range(min(count, len(validation))))
    validation = speakers_as_ids(validation, "speaker", list(vqvae.config.id2speaker.values()))
    preprocessor = build_preprocessor(vqvae.config, train=False)
    examples = list(prepare_dataset(validation, preprocessor, "audio", "label", speaker_column="speaker"))
    return (
        torch.stack([e["input_values"] for e in examples]),
        torch.tensor([e["class_labels"] for e in examples]),
        [int(e["speaker_ids"]) for e in examples],
    )


def opus_round_trip(waveform: np.ndarray, rate: int, bitrate: int) -> tuple[int, int, np.ndarray]:
    """(Ogg file bytes, Opus packet bytes, the decoded waveform at `rate`, cut to the input's length)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=rate)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(waveform[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        packets = [p for p in stream.encode(frame)] + [p for p in stream.encode(None)]
        payload = sum(p.size for p in packets)
        for packet in packets:
            container.mux(packet)
    data = buffer.getvalue()
    decoded = []
    with av.open(io.BytesIO(data)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(audio=0):
            decoded += [f.to_ndarray()[0] for f in resampler.resample(frame)]
    audio = np.concatenate(decoded)[: len(waveform)]
    return len(data), payload, np.pad(audio, (0, len(waveform) - len(audio)))


def scores(decoded: torch.Tensor, originals: torch.Tensor, labels, classifier, rate: int) -> dict:
    predictions = classify(classifier, decoded.float())[0]
    return {
        "log_mel_distance": log_mel_distance(decoded, originals, rate).item(),
        "digit_accuracy": (predictions == labels).float().mean().item(),
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    vqvae = VQVAEModel.from_pretrained(MODEL).eval()
    prior = VQPriorModel.from_pretrained(MODEL, subfolder="prior").eval()
    classifier, _ = SampleClassifier.load(args.classifier_dir)
    takes, labels, speakers = validation_takes(vqvae, args.data_file, args.num_takes)
    rate, seconds = vqvae.config.sampling_rate, takes.shape[-1] / vqvae.config.sampling_rate
    rows = [
        {
            "codec": "original",
            "bytes": float("nan"),
            "payload_bytes": float("nan"),
            **scores(takes, takes, labels, classifier, rate),
        }
    ]
    files = compress_many(vqvae, prior, takes, speaker_ids=speakers)
    decoded = decompress_many(vqvae, prior, files)
    rows.append(
        {
            "codec": "hf_vqvae",
            "bytes": float(np.mean([len(f) for f in files])),
            "payload_bytes": float(np.mean([len(f) - HEADER_BYTES for f in files])),
            **scores(decoded, takes, labels, classifier, rate),
        }
    )
    for bitrate in OPUS_BITRATES:
        coded = [opus_round_trip(take[0].numpy(), rate, bitrate) for take in takes]
        opus_decoded = torch.tensor(np.stack([c[2] for c in coded]))[:, None]
        rows.append(
            {
                "codec": f"Opus {bitrate // 1000} kbit/s",
                "bytes": float(np.mean([c[0] for c in coded])),
                "payload_bytes": float(np.mean([c[1] for c in coded])),
                **scores(opus_decoded, takes, labels, classifier, rate),
            }
        )
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "speech_compression.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"CPU: {cpu_model()}; {len(takes)} FSDD validation takes, {seconds:.2f} s each at {rate} Hz")
    print(
        "| codec | bytes per take | without headers | kbit/s (without headers) | log-mel distance | digit heard |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        kbits = 8 * row["payload_bytes"] / seconds / 1000
        print(
            f"| {row['codec']} | {row['bytes']:.1f} | {row['payload_bytes']:.1f} | {kbits:.2f} | "
            f"{row['log_mel_distance']:.3f} | {100 * row['digit_accuracy']:.1f}% |"
        )
    plot(rows, seconds, output / "speech_rate_distortion.png")


def plot(rows: list[dict], seconds: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    coded = [row for row in rows if row["codec"] != "original"]
    for axis, key, name in (
        (axes[0], "log_mel_distance", "log-mel distance (lower is better)"),
        (axes[1], "digit_accuracy", "digit heard"),
    ):
        opus = [row for row in coded if row["codec"].startswith("Opus")]
        axis.plot(
            [8 * r["payload_bytes"] / seconds / 1000 for r in opus],
            [r[key] for r in opus],
            "o-",
            label="Opus",
        )
        ours = next(row for row in coded if row["codec"] == "hf_vqvae")
        axis.plot(
            [8 * ours["payload_bytes"] / seconds / 1000],
            [ours[key]],
            "r*",
            markersize=14,
            label="hf_vqvae (vqvae-fsdd)",
        )
        axis.set_xlabel("kbit/s without container headers")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
