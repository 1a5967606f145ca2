"""Encoder throughput: the Qwen2.5-VL vision tower (stock transformers vs ours) and SigLIP.

Full run (GPU): the Qwen2.5-VL-7B tower shape and SigLIP-so400m, random weights, bf16, frames of
448x448 in batches. One process times, on the same pixels and the same weights: transformers' own
tower forward (per-window SDPA), our forward eager, and ours after warmup() (torch.compile'd
blocks unless --no-compile, CUDA graph), and compares both with the stock tower and with a float32
stock reference. `--quick`: tiny configs on the CPU.

A "frame" is a video frame; Qwen2.5-VL packs two frames into one temporal grid, so frames/s is
twice grids/s. Tower timings start from pixel_values on the device; `*_e2e_fps` start from uint8
frames in host memory (upload, resize/normalise/patchify on the device, tower, tokens back).

Runs without the rest of vidsight: `python -m benchmarks.encode [--quick]` on a machine without
PyAV/Ray/Redis. `encoder_throughput` is for pipeline-level numbers (with static skipping).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmarks.harness import machine, ratio, stopwatch, sync_device
from encoder.config import EncoderSettings
from encoder.qwen_preprocess import preprocess_pairs
from encoder.retrieval import RetrievalEncoder
from encoder.vision_tower import VisionTower


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=None, help="frames per batch (default 64; quick 8)")
    parser.add_argument("--side", type=int, default=448, help="frame side in pixels (multiple of 28)")
    parser.add_argument("--repeats", type=int, default=None, help="timed batches per variant")
    parser.add_argument("--no-compile", action="store_true", help="warm up without torch.compile (GPU)")
    parser.add_argument("--profile", action="store_true", help="top kernels of one stock and one fast call")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock tower (slow at full size)")
    parser.add_argument(
        "--stage", action="store_true", help="also time Encoder.encode with and without skipping"
    )


def run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    quick = bool(args.quick)
    settings = _bench_settings(args, quick)
    frames_n = args.frames or (8 if quick else 64)
    repeats = args.repeats or (2 if quick else 10)
    frames = _random_frames(frames_n, args.side)
    tower = VisionTower.from_settings(settings)
    device = tower.device
    yield {"stage": "setup", "device": str(device), "dtype": str(tower.dtype), "vlm": settings.vlm_model,
           "retrieval": settings.retrieval_model, "frames": frames_n, "side_px": args.side}  # fmt: skip

    tp = tower.layout.temporal_patch_size
    pairs = [frames[i : i + tp] for i in range(0, frames_n, tp)]
    grids = len(pairs)
    pixel_values, grid_hw = preprocess_pairs(pairs, tower.layout, device)
    tflop = grids * tower_tflop_per_grid(tower.visual.config, grid_hw)
    summary: dict[str, Any] = {"bench": "encode", "device": _device_name(device), "model": settings.vlm_model,
                               "frames": frames_n, "grids": grids, "side_px": args.side}  # fmt: skip

    stock_out = None
    if not args.no_stock:
        stock_fps, stock_out = _fps(lambda: tower.stock_forward(pixel_values, grids, grid_hw), frames_n, 1, 2)
        summary["stock_fps"] = stock_fps
        yield {"stage": "stock", "fps": stock_fps, "tflops": _rate(tflop, frames_n, stock_fps)}
    if args.profile:
        yield {
            "stage": "profile_stock",
            "top": _profile(lambda: tower.stock_forward(pixel_values, grids, grid_hw)),
        }

    eager_fps, eager_out = _fps(
        lambda: tower.forward_grids(pixel_values, grids, grid_hw), frames_n, 1, repeats
    )
    yield {"stage": "ours_eager", "fps": eager_fps, "tflops": _rate(tflop, frames_n, eager_fps),
           **_diff(eager_out, stock_out)}  # fmt: skip
    summary.update(ours_eager_fps=eager_fps)

    with stopwatch() as sw:
        tower.warmup(grids, grid_hw)
    warm_fps, warm_out = _fps(lambda: tower.forward_grids(pixel_values, grids, grid_hw), frames_n, 1, repeats)
    diff = _diff(warm_out, stock_out)
    yield {"stage": "ours_warm", "fps": warm_fps, "tflops": _rate(tflop, frames_n, warm_fps),
           "warmup_s": round(sw.seconds, 2), "cuda_graph": settings.use_cuda_graphs and device.type == "cuda",
           "compiled": settings.compile_blocks and device.type == "cuda", **diff}  # fmt: skip
    if args.profile:
        yield {
            "stage": "profile_ours",
            "top": _profile(lambda: tower.forward_grids(pixel_values, grids, grid_hw)),
        }

    if stock_out is not None:
        outputs = {"stock": stock_out, "ours": warm_out}
        yield {"stage": "fp32_reference", **_against_fp32(tower, pixel_values, grid_hw, outputs, summary)}

    e2e_fps, _ = _fps(lambda: [g.tokens.cpu() for g in tower.encode_pairs(pairs)], frames_n, 1, repeats)
    yield {"stage": "ours_e2e", "fps": e2e_fps}
    summary.update(ours_e2e_fps=e2e_fps, tower_tflop_per_frame=round(tflop / frames_n, 4))
    retrieval = RetrievalEncoder.from_settings(settings)
    yield _siglip(retrieval, frames, repeats, summary)
    if args.stage:
        yield _encoder_stage(settings, tower, retrieval, frames, summary)

    summary.update(ours_fps=warm_fps, speedup=ratio(warm_fps, summary.get("stock_fps")),
                   max_abs_diff=diff.get("max_abs_diff"), max_rel_diff=diff.get("max_rel_diff"),
                   min_token_cosine=diff.get("min_token_cosine"), machine=machine())  # fmt: skip
    yield summary


def _siglip(
    retrieval: RetrievalEncoder, frames: list[np.ndarray], repeats: int, summary: dict[str, Any]
) -> dict[str, Any]:
    pixels = retrieval.pixel_values(frames)
    retrieval.embed_pixels(pixels)  # warm-up: kernels, allocator
    siglip_fps, _ = _fps(lambda: retrieval.embed_pixels(pixels), len(frames), 1, repeats)
    e2e_fps, _ = _fps(lambda: retrieval.embed_images(frames), len(frames), 1, repeats)
    summary.update(
        retrieval_model=retrieval.settings.retrieval_model, siglip_fps=siglip_fps, siglip_e2e_fps=e2e_fps
    )
    return {"stage": "siglip", "fps": siglip_fps, "e2e_fps": e2e_fps, "image_size": retrieval.image_size}


@dataclass(frozen=True)
class _BenchFrame:
    """The fields of ingest.Frame that the encoder reads (ingest needs PyAV, absent on GPU hosts)."""

    stream_id: str
    index: int
    pts_s: float
    rgb: np.ndarray
    wall_time_s: float | None = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def _encoder_stage(
    settings: EncoderSettings,
    tower: VisionTower,
    retrieval: RetrievalEncoder,
    frames: list[np.ndarray],
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Encoder.encode (both models, records out) on 4 streams, then with 7 of 8 frames static."""
    from encoder.encoder import Encoder

    encoder = Encoder(settings, tower=tower, retrieval=retrieval)
    clip = [
        _BenchFrame(f"cam{s}", i, i * 0.5, frames[(i + s) % len(frames)]) for i in range(64) for s in range(4)
    ]
    full = encoder_throughput(encoder, clip, batch_frames=len(frames))
    static = [f.index % 8 != 0 for f in clip]  # a mostly static scene: one frame in 8 changes
    skipping = encoder_throughput(encoder, clip, static, batch_frames=len(frames))
    summary.update(stage_fps=full["fps"], stage_static_fps=skipping["fps"])
    return {"stage": "encoder_stage", "all_frames": full, "mostly_static": skipping,
            "static_speedup": ratio(skipping["fps"], full["fps"])}  # fmt: skip


# helpers ---------------------------------------------------------------------------------------


def _bench_settings(args: argparse.Namespace, quick: bool) -> EncoderSettings:
    base = getattr(getattr(args, "settings", None), "encoder", None) or EncoderSettings()
    side = args.side
    if quick:
        return base.model_copy(update={"vlm_model": "tiny", "retrieval_model": "tiny", "device": "cpu",
                                       "fixed_hw_px": (side, side)})  # fmt: skip
    full = {"vlm_model": "7B", "retrieval_model": "so400m", "fixed_hw_px": (side, side),
            "compile_blocks": base.compile_blocks and not args.no_compile}  # fmt: skip
    return base.model_copy(update={**full, "max_batch_frames": max(base.max_batch_frames, args.frames or 64)})


def _random_frames(n: int, side: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]


def _fps(fn: Callable[[], Any], frames: int, warmup: int, repeats: int) -> tuple[float, Any]:
    """Frames per second over `repeats` timed calls (device synced), and the last output."""
    out = None
    for _ in range(warmup):
        out = fn()
    with stopwatch() as sw:
        for _ in range(repeats):
            out = fn()
    return round(frames * repeats / sw.seconds, 2), out


def _diff(ours: torch.Tensor, stock: torch.Tensor | None) -> dict[str, float]:
    if stock is None:
        return {}
    delta = (ours.float() - stock.float()).abs()
    scale = stock.float().abs().max().item()
    cos = torch.nn.functional.cosine_similarity(
        ours.float().flatten(0, 1), stock.float().flatten(0, 1), dim=-1
    )
    return {"max_abs_diff": round(delta.max().item(), 6), "mean_abs_diff": round(delta.mean().item(), 7),
            "max_rel_diff": round(delta.max().item() / max(scale, 1e-12), 6),
            "min_token_cosine": round(cos.min().item(), 6)}  # fmt: skip


def _against_fp32(
    tower: VisionTower,
    pixel_values: torch.Tensor,
    grid_hw: tuple[int, int],
    outputs: dict[str, torch.Tensor],
    summary: dict[str, Any],
    grids: int = 4,
) -> dict[str, Any]:
    """Error of each reduced-precision output against the stock tower in float32 (no TF32).

    Ours is "within bf16 tolerance" when its error is about the stock bf16 tower's own error.
    """
    if tower.dtype == torch.float32:
        return {}
    import copy

    reference_tower = VisionTower.from_module(copy.deepcopy(tower.visual).float(), tower.settings)
    patches = grids * grid_hw[0] * grid_hw[1]
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        reference = reference_tower.stock_forward(pixel_values[:patches], grids, grid_hw)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    record: dict[str, Any] = {"grids": grids}
    for name, out in outputs.items():
        diff = _diff(out[:grids], reference)
        record[name] = diff
        summary[f"{name}_vs_fp32_max_rel_diff"] = diff["max_rel_diff"]
        summary[f"{name}_vs_fp32_min_token_cosine"] = diff["min_token_cosine"]
    del reference_tower
    return record


def _rate(tflop_per_batch: float, frames: int, fps: float) -> float:
    return round(tflop_per_batch / frames * fps, 1)


def tower_tflop_per_grid(config: Any, grid_hw: tuple[int, int]) -> float:
    """Matmul TFLOP of one temporal grid through the tower (attention included, elementwise not)."""
    patches = grid_hw[0] * grid_hw[1]
    width, inner = config.hidden_size, config.intermediate_size
    window = (config.window_size // config.patch_size) ** 2
    embed = 2 * patches * width * 3 * config.temporal_patch_size * config.patch_size**2
    linear = 2 * patches * (4 * width * width + 3 * width * inner)
    full_layers = len(config.fullatt_block_indexes)
    attention = (
        4 * patches * width * (full_layers * patches + (config.depth - full_layers) * min(window, patches))
    )
    units, merged = patches // config.spatial_merge_size**2, width * config.spatial_merge_size**2
    merger = 2 * units * merged * (merged + config.out_hidden_size)
    return float(embed + config.depth * linear + attention + merger) / 1e12


def _profile(fn: Callable[[], Any], top: int = 8) -> list[dict[str, Any]]:
    """The most expensive ops of one call (device time on CUDA, CPU time otherwise)."""
    from torch.profiler import ProfilerActivity, profile

    on_cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    with profile(activities=activities) as prof:
        fn()
        sync_device()
    key = "device_time_total" if on_cuda else "cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0.0), reverse=True)
    wall_ms = max((e.cpu_time_total for e in events), default=0.0) / 1e3
    rows = [
        {"op": e.key[:60], "ms": round(getattr(e, key, 0.0) / 1e3, 2), "calls": e.count} for e in events[:top]
    ]
    return [{"op": "(cpu wall of the call)", "ms": round(wall_ms, 2), "calls": 1}, *rows]


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


# pipeline-level measurement, for the lead ------------------------------------------------------


def encoder_throughput(
    encoder: Any, frames: Sequence[Any], skip: Sequence[bool] | None = None, batch_frames: int = 64
) -> dict[str, Any]:
    """Frames/s of `Encoder.encode` over ingest Frames in batches (`skip` from the compressor).

    The encoder is warmed on the first batch, which is not timed. Returns frames, seconds, fps,
    frames_skipped (embedding carried over) and grids_carried (tower not run for the grid).
    """
    skip = [False] * len(frames) if skip is None else list(skip)
    encoder.encode(frames[:batch_frames], skip[:batch_frames])
    encoder.flush()
    for stream_id in {f.stream_id for f in frames}:
        encoder.forget(stream_id)
    records = []
    start = time.perf_counter()
    for i in range(0, len(frames), batch_frames):
        records += encoder.encode(frames[i : i + batch_frames], skip[i : i + batch_frames])
    records += encoder.flush()
    sync_device()
    seconds = time.perf_counter() - start
    grids_carried = sum(1 for r in records if r.tokens is not None and r.is_encoder_skipped)
    skipped = sum(r.is_encoder_skipped for r in records)
    return {"frames": len(records), "seconds": round(seconds, 3), "fps": round(len(records) / seconds, 2),
            "frames_skipped": skipped, "grids_carried": grids_carried}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks.encode`: the same benchmark without the vidsight CLI and its imports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    add_arguments(parser)
    args = parser.parse_args(argv)
    for record in run(args):
        print(json.dumps(record, default=str) if args.json else record, flush=True)


if __name__ == "__main__":
    main()
