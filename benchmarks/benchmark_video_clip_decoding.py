"""Cost of taking one training clip from a long video file: converting only the clip's frames to RGB (what
`VideoPreprocessor` does; the file is still decoded whole, to count its frames) against converting every frame
first.

    python benchmarks/benchmark_video_clip_decoding.py [--seconds 20] [--height 480] [--width 640]

Writes a synthetic MP4 (MPEG-4 Part 2, `--fps` frames per second) to a temporary folder, then takes the same
centred 16-frame clip at 8 fps both ways, each in a fresh process whose growth of peak resident memory is
reported. Only the printed ratios mean anything: absolute times depend on the CPU, which differs from run to run.
"""

import argparse
import multiprocessing
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
from machine import set_threads

from hf_vqvae.data import VideoPreprocessor, decode_video


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--clip_frames", type=int, default=16)
    parser.add_argument("--clip_fps", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per way; the fastest counts")
    return parser.parse_args()


def write_video(path: Path, seconds: float, fps: int, height: int, width: int) -> int:
    """A moving random texture, so that every frame differs; returns the number of frames."""
    num_frames = round(seconds * fps)
    texture = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.roll(texture, index, axis=1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return num_frames


def take_clip(path: str, whole_file_first: bool, clip_frames: int, clip_fps: float) -> np.ndarray:
    """The centred clip, by decoding the whole file first or only up to the clip's last frame."""
    chooser = VideoPreprocessor(clip_frames, (1, 1), fps=clip_fps).clip_frame_indices
    if whole_file_first:
        frames, fps = decode_video(path)
        return frames[chooser(len(frames), fps)]
    return decode_video(path, chooser)[0]


def measure(repeats: int, *clip_args) -> tuple[float, float, np.ndarray]:
    """Run in a fresh process: fastest wall-clock seconds, growth of peak resident MiB, and the clip."""
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        clip = take_clip(*clip_args)
        seconds.append(time.perf_counter() - start)
    return min(seconds), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024, clip


def measure_in_fresh_process(*args) -> tuple[float, float, np.ndarray]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, *args).result()


def main() -> None:
    args = parse_args()
    machine = set_threads(None)  # decoding runs in FFmpeg, not torch
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "long.mp4")
        num_frames = write_video(Path(path), args.seconds, args.fps, args.height, args.width)
        clip = (args.clip_frames, args.clip_fps)
        whole_seconds, whole_peak, whole_clip = measure_in_fresh_process(args.repeats, path, True, *clip)
        clip_seconds, clip_peak, clip = measure_in_fresh_process(args.repeats, path, False, *clip)
    print(machine)
    print(
        f"{num_frames} frames of {args.width}x{args.height} at {args.fps} fps; a centred clip of "
        f"{args.clip_frames} frames at {args.clip_fps:g} fps"
    )
    print(f"whole file first: {whole_seconds:6.2f} s, peak memory +{whole_peak:7.1f} MiB")
    print(f"clip only:        {clip_seconds:6.2f} s, peak memory +{clip_peak:7.1f} MiB")
    memory_ratio = (
        f"{whole_peak / clip_peak:.1f}x" if clip_peak > 0 else "n/a (clip only did not grow the peak)"
    )
    print(f"whole / clip: time {whole_seconds / clip_seconds:.1f}x, memory {memory_ratio}")
    print(f"same clip both ways: {np.array_equal(whole_clip, clip)}")


if __name__ == "__main__":
    main()
