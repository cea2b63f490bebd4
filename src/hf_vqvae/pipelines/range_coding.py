"""The range coding of one code grid: the probabilities both sides code with, and the shortest payload.

The shortest payload: the range coder's sealed output is a number in the final interval of the codes' probabilities,
written with up to a word more than that interval needs. Any number in the interval decodes to the same codes, so
the encoder keeps the shortest prefix of the output (or that prefix plus one in its last byte) that, read with zero
bytes after it, still decodes to them, checked by decoding it. On 1,000 CIFAR-10 validation images
(benchmarks/benchmark_compression.py) the payload is 1.006x the prior's information content of the codes; the
sealed words were 1.039x.
"""

import numpy as np
import torch

# Zero words put after a payload, so that what it means does not rest on what the decoder reads past the end of
# its array (zeros too, in constriction 0.5): more than the decoder's state takes in past the end of the code.
PAYLOAD_PADDING_WORDS = 2


def range_coder():
    """`constriction` (the `compression` extra), imported when a file is coded."""
    try:
        import constriction
    except ImportError as error:
        raise ImportError(
            "Compression needs the constriction entropy coder: pip install 'hf_vqvae[compression]'."
        ) from error
    return constriction


def code_probabilities(logits: torch.FloatTensor) -> np.ndarray:
    """The coder's model of each row's position: float64 probabilities `(rows, K)` from fp32 logits, computed the
    same way on both sides (numpy, not a threaded kernel)."""
    values = logits.double().cpu().numpy()
    values = np.exp(values - values.max(axis=-1, keepdims=True))
    return values / values.sum(axis=-1, keepdims=True)


def shortest_payload(codes: np.ndarray, tables: np.ndarray) -> bytes:
    """
    The shortest byte string that the range decoder, reading zero bytes after it, decodes to `codes` under
    `tables`: the coder's sealed output, cut back byte by byte while its prefix, or the prefix plus one in its last
    byte, still decodes to `codes` (each candidate is decoded to check it; two lengths in a row without one end the
    search).

    Args:
        codes (`np.ndarray` of shape `(N,)`): one grid's codes in raster order.
        tables (`np.ndarray` of shape `(N, K)`): the probabilities each code was coded with.
    """
    constriction = range_coder()
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(codes.astype(np.int32), constriction.stream.model.Categorical(perfect=False), tables)
    sealed = encoder.get_compressed().astype(">u4").tobytes()
    shortest, misses = sealed, 0
    for length in range(len(sealed) - 1, -1, -1):
        prefix = sealed[:length]
        raised = int.from_bytes(prefix, "big") + 1
        candidates = [prefix] + ([raised.to_bytes(length, "big")] if raised < 256**length else [])
        found = next((payload for payload in candidates if decodes_to(payload, codes, tables)), None)
        if found is None:
            misses += 1
            if misses == 2:
                break
        else:
            shortest, misses = found, 0
    return shortest


def decodes_to(payload: bytes, codes: np.ndarray, tables: np.ndarray) -> bool:
    """Whether `payload` decodes to `codes` under `tables` (a payload that leaves the coder's valid range does
    not), decoded as `decompress` decodes it."""
    constriction = range_coder()
    decoder = constriction.stream.queue.RangeDecoder(padded_words(payload))
    try:
        decoded = decode_codes(decoder, tables)
    except InvalidPayloadError:
        return False
    return np.array_equal(decoded, codes)


class InvalidPayloadError(ValueError):
    """The range decoder met data that no code of its tables leads to."""


def decode_codes(decoder, tables: np.ndarray) -> np.ndarray:
    """The next `len(tables)` codes from a constriction `RangeDecoder`, one per row of probabilities `tables`
    `(n, K)`: the one decoding call that both the encoder's check and `decompress` make, so that they build the
    coder's integer model the same way."""
    constriction = range_coder()
    try:
        return decoder.decode(constriction.stream.model.Categorical(perfect=False), tables)
    except AssertionError as error:  # constriction's signal for invalid data
        raise InvalidPayloadError(str(error)) from error


def padded_words(payload: bytes) -> np.ndarray:
    """A version 2 payload as the range decoder's 32-bit words: zero bytes up to a whole word, then
    `PAYLOAD_PADDING_WORDS` zero words."""
    padded = payload + bytes(-len(payload) % 4 + 4 * PAYLOAD_PADDING_WORDS)
    return np.frombuffer(padded, dtype=">u4").astype(np.uint32)


__all__ = [
    "InvalidPayloadError",
    "code_probabilities",
    "decode_codes",
    "padded_words",
    "range_coder",
    "shortest_payload",
]
