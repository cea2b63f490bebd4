"""Speed of sampling speech with a released model: seconds of wall clock per second of audio, for a batch of clips
drawn through the vq-sample pipeline (prior, then decoder), with and without guidance, side by side in one process.

    python benchmarks/benchmark_speech_sampling.py [--model model_cards/vqvae-fsdd] [--batch_size 8] [--repeats 3]

The speech issue's target is a one-second clip in at most 5 s on 2 CPU cores at batch 8; the released prior's
clips are `sample_size / sampling_rate` seconds long (0.512 s for FSDD), so the time of one batch is scaled to one
second of audio. Runs alternate between the settings and each reports its fastest run; the ratio between them is
what compares across machines.
"""

import argparse
import time

import torch
from machine import set_threads
from transformers import pipeline

import hf_vqvae  # noqa: F401  (registers the vq-sample task)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="model_cards/vqvae-fsdd")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--guidance_scale", type=float, default=None, help="default: the model's own")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each setting; the fastest counts"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    machine = set_threads(args.threads)
    pipe = pipeline("vq-sample", model=args.model)
    pipe.set_progress_bar_config(disable=True)
    config = pipe.model.config
    clip_seconds = config.sample_size[0] / config.sampling_rate
    guided = args.guidance_scale if args.guidance_scale is not None else pipe.prior.default_guidance_scale
    settings = {"unguided (scale 1)": 1.0, f"guided (scale {guided:g})": guided}
    best = dict.fromkeys(settings, float("inf"))
    for repeat in range(args.repeats):
        for name, scale in settings.items():
            start = time.perf_counter()
            pipe(num_samples=args.batch_size, guidance_scale=scale, seed=repeat)
            best[name] = min(best[name], time.perf_counter() - start)
    print(machine)
    print(
        f"{args.model}: batch {args.batch_size} clips of {clip_seconds:.3f} s; fastest of {args.repeats} runs"
    )
    print("| setting | seconds per batch | seconds per second of audio (batch of 8 one-second clips) |")
    print("|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {seconds / clip_seconds:.2f} |")
    unguided, guided_time = best.values()
    print(f"guided / unguided: {guided_time / unguided:.2f}x")


if __name__ == "__main__":
    with torch.no_grad():
        main()
