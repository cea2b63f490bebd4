"""Sampling speed of the transformer prior against transformers' stock `GPT2LMHeadModel.generate()` with the
same decoder (GPT-2 blocks, same sizes), side by side in one process.

    python benchmarks/benchmark_prior_sampling.py [--num_codes 1024] [--batch_size 8] [--repeats 3]

The prior runs twice: its cached sampler, and `compile=True` (a static key/value cache and a `torch.compile`d
decoding step, compiled during the warm-up). All sample every code from the full softmax (no top-k, temperature 1), with a KV cache, random weights, eval
mode, under `torch.no_grad`. The stock model reads a BOS token (id K) that is suppressed afterwards, so that
its samples stay in the codebook, as the prior's start token does. Runs alternate between the two models and
each reports its fastest run, since other processes on the machine slow some runs down. Only the printed ratio
means anything: absolute rates depend on the CPU, which differs from run to run.
"""

import argparse
import math
import time

import torch
from machine import set_threads
from transformers import GPT2Config, GPT2LMHeadModel, logging

from hf_vqvae.models.prior.configuration_prior import VQPriorConfig
from hf_vqvae.models.prior.modeling_prior import VQPriorModel


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_codes", type=int, default=1024, help="codes per sample (1024 = a 32x32 grid)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--codebook_size", type=int, default=512)
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--num_layers", type=int, default=4)
    parser.add_argument("--num_heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each model; the fastest counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def grid_shape(num_codes: int) -> list[int]:
    """A square grid when `num_codes` is a square (the transformer only sees the raster order anyway)."""
    side = math.isqrt(num_codes)
    return [side, side] if side * side == num_codes else [num_codes]


def build_models(args: argparse.Namespace) -> tuple[VQPriorModel, GPT2LMHeadModel]:
    """The prior and a stock GPT-2 LM with the same decoder sizes, vocabulary K codes + a BOS token."""
    torch.manual_seed(args.seed)
    prior = VQPriorModel(
        VQPriorConfig(
            codebook_size=args.codebook_size,
            code_shape=grid_shape(args.num_codes),
            hidden_size=args.hidden_size,
            num_layers=args.num_layers,
            num_heads=args.num_heads,
        )
    )
    stock = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=args.codebook_size + 1,
            n_positions=args.num_codes + 1,
            n_embd=args.hidden_size,
            n_layer=args.num_layers,
            n_head=args.num_heads,
            bos_token_id=args.codebook_size,
            eos_token_id=None,
            pad_token_id=args.codebook_size,
        )
    )
    return prior.eval(), stock.eval()


def sample_prior(prior: VQPriorModel, args: argparse.Namespace, compile: bool = False) -> torch.Tensor:
    generator = torch.Generator().manual_seed(args.seed)
    return prior.generate(args.batch_size, generator=generator, compile=compile).reshape(args.batch_size, -1)


def sample_prior_compiled(prior: VQPriorModel, args: argparse.Namespace) -> torch.Tensor:
    return sample_prior(prior, args, compile=True)


def sample_stock(stock: GPT2LMHeadModel, args: argparse.Namespace) -> torch.Tensor:
    torch.manual_seed(args.seed)
    bos = torch.full((args.batch_size, 1), args.codebook_size)
    sequences = stock.generate(
        bos,
        attention_mask=torch.ones_like(bos),
        do_sample=True,
        top_k=0,
        max_new_tokens=args.num_codes,
        min_new_tokens=args.num_codes,
        suppress_tokens=[args.codebook_size],
    )
    return sequences[:, 1:]


def timed_run(sample, model, args: argparse.Namespace) -> tuple[float, torch.Tensor]:
    """Seconds of one timed call of `sample(model, args)`, and the codes `(batch, num_codes)` it drew."""
    start = time.perf_counter()
    codes = sample(model, args)
    return time.perf_counter() - start, codes


def main() -> None:
    args = parse_args()
    logging.set_verbosity_error()  # generate's advice on padding does not apply to a lone BOS token
    machine = set_threads(args.threads)
    prior, stock = build_models(args)
    samplers = {
        "prior.generate": (sample_prior, prior),
        "prior.generate(compile=True)": (sample_prior_compiled, prior),
        "GPT2LMHeadModel.generate": (sample_stock, stock),
    }
    seconds = {name: math.inf for name in samplers}
    with torch.no_grad():
        # Warm-up: first calls pay for lazy imports, kernel selection and allocations (and compiling the step).
        for sample, model in samplers.values():
            sample(model, argparse.Namespace(**{**vars(args), "num_codes": 8}))
        for _ in range(args.repeats):
            for name, (sample, model) in samplers.items():
                run_seconds, codes = timed_run(sample, model, args)
                seconds[name] = min(seconds[name], run_seconds)
                assert codes.shape == (args.batch_size, args.num_codes), codes.shape
                assert 0 <= codes.min() and codes.max() < args.codebook_size, "a sample left the codebook"

    rates = {name: args.batch_size * args.num_codes / value for name, value in seconds.items()}
    print(machine)
    print(
        f"decoder: hidden {args.hidden_size}, {args.num_layers} layers, {args.num_heads} heads, "
        f"K={args.codebook_size}, unconditional; random weights, eval, no_grad"
    )
    print(
        f"grid {grid_shape(args.num_codes)} ({args.num_codes} codes), batch {args.batch_size}, "
        f"fastest of {args.repeats} runs each"
    )
    for name, rate in rates.items():
        print(
            f"{name:30s} {rate:8.0f} codes/s  ({seconds[name]:.2f} s, "
            f"{seconds[name] / args.num_codes * 1e3:.2f} ms per step)"
        )
    stock_rate = rates["GPT2LMHeadModel.generate"]
    print(
        f"ours / stock: {rates['prior.generate'] / stock_rate:.2f}x eager cache, "
        f"{rates['prior.generate(compile=True)'] / stock_rate:.2f}x static cache + compiled step"
    )
    eager, compiled = (sample_prior(prior, args, compile) for compile in (False, True))
    print(f"compiled codes identical to eager (same seed): {torch.equal(eager, compiled)}")


if __name__ == "__main__":
    main()
