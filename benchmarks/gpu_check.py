"""A five-minute check of the package on a CUDA machine: VQ-VAE training throughput in fp32 and bf16 at the released
CIFAR-10 configuration, a prior training step, and guided and unguided sampling (eager, and with the prior's
compiled static-cache step and a compiled VQ-VAE decoder), printed as one table.

    bash benchmarks/gpu_check.sh             # on a CUDA machine
    python benchmarks/gpu_check.py --device cpu --smoke   # what the test suite runs: every step, tiny sizes

Models are freshly initialised at the released configurations (model_cards/vqvae-cifar10): throughput does not
depend on the weights. Nothing here is asserted; the table goes into the closing note of the run.
"""

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from machine import cpu_model

from hf_vqvae import VQPriorConfig, VQPriorModel, VQVAEConfig, VQVAEModel

RELEASED = Path(__file__).resolve().parents[1] / "model_cards" / "vqvae-cifar10"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--smoke", action="store_true", help="Tiny models and few steps: checks that it runs."
    )
    return parser.parse_args(argv)


def configs(smoke: bool) -> tuple[VQVAEConfig, VQPriorConfig]:
    vqvae = json.loads((RELEASED / "config.json").read_text())
    prior = json.loads((RELEASED / "prior" / "config.json").read_text())
    for fields in (vqvae, prior):
        for key in (
            "auto_map",
            "architectures",
            "dtype",
            "transformers_version",
            "hf_vqvae_version",
            "model_type",
        ):
            fields.pop(key, None)
    if smoke:
        vqvae.update(hidden_channels=16, residual_channels=8, codebook_size=16, embedding_dim=8)
        prior.update(codebook_size=16, hidden_size=32, num_layers=2, num_heads=2)
    return VQVAEConfig(**vqvae), VQPriorConfig(**prior)


def timed(step: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Seconds per call after two warm-up calls, synchronising CUDA."""
    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def training_step(model, batch: dict, dtype: torch.dtype | None, device: torch.device) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("No CUDA device: nothing to check (run with --device cpu --smoke for a dry run).")
        return
    vqvae_config, prior_config = configs(args.smoke)
    batch_size, repeats, samples = (4, 1, 2) if args.smoke else (128, 20, 16)
    rows = []
    vqvae = VQVAEModel(vqvae_config).to(device).train()
    images = torch.rand(batch_size, 3, 32, 32, device=device) * 2 - 1
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        seconds = timed(training_step(vqvae, {"pixel_values": images}, dtype, device), device, repeats)
        rows.append(
            (
                f"VQ-VAE training step, batch {batch_size}, {name}",
                seconds,
                f"{batch_size / seconds:,.0f} images/s",
            )
        )
    prior = VQPriorModel(prior_config).to(device).train()
    codes = torch.randint(
        0, prior_config.codebook_size, (batch_size // 2, *prior_config.code_shape), device=device
    )
    labels = torch.arange(batch_size // 2, device=device) % max(prior_config.num_classes, 1)
    prior_batch = {"codes": codes, "class_labels": labels if prior_config.num_classes else None}
    seconds = timed(training_step(prior, prior_batch, torch.bfloat16, device), device, repeats)
    rows.append(
        (
            f"prior training step, batch {batch_size // 2}, bf16",
            seconds,
            f"{codes.numel() / seconds:,.0f} codes/s",
        )
    )
    rows += sampling_rows(vqvae.eval(), prior.eval(), samples, device, repeats)
    print_table(rows, device)


def sampling_rows(vqvae, prior, samples: int, device: torch.device, repeats: int) -> list[tuple]:
    labels = torch.arange(samples) % max(prior.config.num_classes, 1) if prior.config.num_classes else None
    paths = {
        "eager": (False, vqvae.decode),
        "compiled step and decoder": (True, torch.compile(vqvae.decode, fullgraph=True)),
    }
    rows = []
    for path, (compile, decode_codes) in paths.items():
        for scale in (1.0, 3.0):

            def sample(compile=compile, decode_codes=decode_codes, scale=scale):
                with torch.no_grad():
                    codes = prior.generate(
                        samples, class_labels=labels, guidance_scale=scale, compile=compile
                    )
                    return decode_codes(codes)

            seconds = timed(sample, device, max(1, repeats // 10))
            rows.append(
                (
                    f"sampling {samples} images, guidance {scale:g}, {path}",
                    seconds,
                    f"{samples / seconds:,.1f} images/s",
                )
            )
    return rows


def print_table(rows: list[tuple], device: torch.device) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU: {cpu_model()}"
    print(f"{name}; torch {torch.__version__}")
    print("| what | seconds per call | throughput |\n|---|---|---|")
    for what, seconds, throughput in rows:
        print(f"| {what} | {seconds:.4f} | {throughput} |")


if __name__ == "__main__":
    main()
