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
  The follow-up's time splits into context (what retrieval and selection are for the first question:
  here only wrapping the new events), prompt (tokenize, lay out, gather visual rows), forward (the
  prefill, CUDA-graph replays where llm.prefill_graphs serves it) and the first token's sampling; the
  same follow-up with the prefill graphs off is timed too (`followup_eager_ttft_s`).

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

from benchmarks._llm_setup import (
    ExactSearch,
    Plan,
    baseline_event,
    build_memory,
    build_retrieval,
    build_runner,
    make_plan,
)
from benchmarks.harness import machine, ratio, stopwatch
from compressor.records import Event

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
    graphed_groups: int = 0  # prefill groups served by the bucketed / CUDA-graph path
    groups: int = 0


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
        "prefill_s": answer.ttft_s - (t_select - started),  # all after selection: the parts below
        **answer.ttft_parts_s,
    }
    return _ours(answer, selection.tokens_selected, breakdown, new_events)


def _ours(answer: Any, tokens: int, breakdown: dict[str, float], new_events: int) -> Ours:
    return Ours(
        answer.ttft_s,
        tokens,
        answer.kv_tokens,
        answer.decode_tok_s,
        answer.prefill_tokens,
        {k: round(v, 4) for k, v in breakdown.items()},
        new_events,
        answer.graphed_groups,
        answer.prefill_groups,
    )


def ask_live_followup(plan: Plan, runner: Any, session: Any, new_events: list[Event], question: str) -> Ours:
    """Events that arrived since the last question, whole, then the question: no retrieval needed."""
    from llm import ContextEvent

    started = time.perf_counter()
    context = [ContextEvent.whole(e) for e in new_events]
    t_context = time.perf_counter()
    answer = runner.ask(session, question, context, max_new_tokens=plan.new_tokens, started_s=started)
    breakdown = {
        "context_s": t_context - started,  # no retrieval or selection: the new events go in whole
        "prefill_s": answer.ttft_s - (t_context - started),  # to the first token: the parts below
        **answer.ttft_parts_s,
    }
    return _ours(answer, sum(e.tokens.shape[0] for e in new_events), breakdown, len(new_events))


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


def profile_question(path: str, bench: Any) -> None:
    """One more question and its live follow-up, each under torch.profiler: the busiest ops by device
    and by CPU time, and the device's busy time against the wall time, go to `path`."""
    from torch.profiler import ProfilerActivity, profile

    runner = bench.runner
    is_cuda = runner.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if is_cuda else [])
    with open(path, "w") as f, runner.session() as s:
        for name, ask in (
            ("question", lambda: bench.ask(s, QUESTION)),
            ("follow-up", lambda: ask_live_followup(bench.plan, runner, s, bench.live, FOLLOW_UP)),
        ):
            with profile(activities=activities) as prof:
                answer = ask()
            table = prof.key_averages()
            busy_us = sum(getattr(e, "self_device_time_total", 0.0) for e in table)
            f.write(
                f"==== {name}: ttft {answer.ttft_s * 1000:.1f} ms, device busy {busy_us / 1000:.1f} ms "
                f"(whole call, decode included), breakdown {answer.breakdown}\n"
            )
            for key in ("cuda_time_total", "cpu_time_total"):
                if key == "cuda_time_total" and not is_cuda:
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


@dataclass
class Bench:
    """Everything the stages share."""

    plan: Plan
    runner: Any
    retrieval: Any
    index: ExactSearch
    events: list[Event]
    live: list[Event]
    selection: Any
    repeats: int

    def ask(self, session: Any, question: str, plan: Plan | None = None) -> Ours:
        return ask_ours(
            plan or self.plan,
            self.runner,
            self.retrieval,
            self.index,
            self.events,
            session,
            question,
            self.selection,
        )


def setup(args: argparse.Namespace) -> Iterator[dict[str, Any] | Bench]:
    from compressor.config import SelectionSettings

    plan = make_plan(args)
    settings = getattr(args, "settings", None)
    with stopwatch() as sw:
        runner = build_runner(plan, settings.llm if settings is not None else None, capacity=8192)
        retrieval, question_tokenizer = build_retrieval(plan)
    yield {
        "bench": "llm",
        "stage": "models",
        "seconds": round(sw.seconds, 2),
        "question_tokenizer": question_tokenizer,
    }
    with stopwatch() as sw:
        events, embeddings = build_memory(plan, runner.engine.embed.weight.shape[1], retrieval.dim)
        index = ExactSearch(embeddings[: plan.grids], runner.device)
    yield {"bench": "llm", "stage": "memory", "events": plan.grids, "seconds": round(sw.seconds, 2)}
    selection = settings.compressor.selection if settings is not None else SelectionSettings()
    repeats = args.repeats or (3 if args.quick else 5)
    bench = Bench(
        plan, runner, retrieval, index, events[: plan.grids], events[plan.grids :], selection, repeats
    )
    with stopwatch() as sw:  # compile + capture the decode step and the prefill shapes, first-call kernels
        runner.warmup()
        with runner.session() as s:  # the timed questions: prefill graphs are captured per shape
            bench.ask(s, QUESTION)
            ask_live_followup(plan, runner, s, bench.live, FOLLOW_UP)
            bench.ask(s, REASK)
    yield {
        "bench": "llm",
        "stage": "warmup",
        "seconds": round(sw.seconds, 2),
        "decode_mode": runner.decode_mode,
        "prefill_mode": runner.prefill_mode,
        "prefill_graphs": runner.prefill_graph_counts(),
    }
    yield bench


def stage_ours(bench: Bench) -> dict[str, Any]:
    """Question, live follow-up and a re-retrieving follow-up in one session, `repeats` sessions."""
    _peak_gib(bench.runner.device)
    rounds = []
    for _ in range(bench.repeats):
        with bench.runner.session() as session:
            first = bench.ask(session, QUESTION)
            follow = ask_live_followup(bench.plan, bench.runner, session, bench.live, FOLLOW_UP)
            again = bench.ask(session, REASK)
        rounds.append((first, follow, again))
    ours, follow, again = (median_of([r[i] for r in rounds]) for i in range(3))
    return {
        "ours": ours,
        "follow": follow,
        "again": again,
        "peak": _peak_gib(bench.runner.device),
        "ttft_all_s": [round(r[0].ttft_s, 4) for r in rounds],
    }


def stage_followup_eager(bench: Bench) -> Ours:
    """The same question and live follow-up on the same model with the prefill graphs off (decode step
    captured without compiling: the follow-up's first token comes from its prefill alone)."""
    from llm import Runner

    fields = {"prefill_graphs": "none", "compile_decode": "cudagraph"}
    runner = Runner(
        bench.runner.settings.model_copy(update=fields),
        model=bench.runner.model,
        tokenizer=bench.runner.tokenizer,
    )
    eager = replace(bench, runner=runner)
    runs = []
    for i in range(bench.repeats + 1):  # the first is a warm-up
        with runner.session() as s:
            eager.ask(s, QUESTION)
            follow = ask_live_followup(bench.plan, runner, s, bench.live, FOLLOW_UP)
        if i:
            runs.append(follow)
    return median_of(runs)


def stage_variant(bench: Bench, events: int) -> dict[str, Any]:
    alt = replace(bench.plan, events=events)
    with bench.runner.session() as s:
        bench.ask(s, "warm-up question", alt)
    timed = []
    for _ in range(bench.repeats):
        with bench.runner.session() as s:
            timed.append(bench.ask(s, QUESTION, alt))
    v = median_of(timed)
    return {
        "events_retrieved": alt.events,
        "budget_tokens": alt.budget,
        "ours_tokens": v.tokens,
        "ours_ttft_s": round(v.ttft_s, 4),
        "breakdown": v.breakdown,
        "kv_tokens": v.kv_tokens,
    }


def stage_baseline(bench: Bench) -> dict[str, Any]:
    event = baseline_event(bench.events)
    stock_baseline(bench.runner, event, 2)  # warm-up of the stock path
    _peak_gib(bench.runner.device)
    runs = [
        stock_baseline(bench.runner, event, bench.plan.baseline_new_tokens)
        for _ in range(min(bench.repeats, 3))
    ]
    return {
        "ttft_s": float(np.median([r[0] for r in runs])),
        "prompt_tokens": runs[0][1],
        "visual_tokens": event.tokens.shape[0],
        "decode_tok_s": float(np.median([r[2] for r in runs])),
        "peak": _peak_gib(bench.runner.device),
        "engine_ttft_s": our_engine_on_baseline(bench.runner, event),
    }


def run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    bench = None
    for record in setup(args):
        if isinstance(record, Bench):
            bench = record
        else:
            yield record
    assert bench is not None
    ours = stage_ours(bench)
    yield {
        "bench": "llm",
        "stage": "ours",
        "ttft_s": round(ours["ours"].ttft_s, 4),
        "ttft_all_s": ours["ttft_all_s"],
        "breakdown": ours["ours"].breakdown,
        "followup_ttft_s": round(ours["follow"].ttft_s, 4),
        "followup_breakdown": ours["follow"].breakdown,
    }
    ours["follow_eager"] = stage_followup_eager(bench)
    yield {
        "bench": "llm",
        "stage": "followup_eager",
        "followup_eager_ttft_s": round(ours["follow_eager"].ttft_s, 4),
        "breakdown": ours["follow_eager"].breakdown,
    }
    if args.profile:
        profile_question(args.profile, bench)
    variants = [stage_variant(bench, args.variant_events)] if args.variant_events else []
    for v in variants:
        yield {"bench": "llm", "stage": "variant", **v}
    from llm import ContextEvent

    modes = decode_by_mode(
        bench.runner, [ContextEvent.whole(e) for e in bench.live], bench.plan.baseline_new_tokens
    )
    yield {"bench": "llm", "stage": "decode_modes", **modes}
    base = stage_baseline(bench)
    yield {
        "bench": "llm",
        "stage": "baseline",
        "ttft_s": round(base["ttft_s"], 4),
        "prompt_tokens": base["prompt_tokens"],
        "our_engine_ttft_s": round(base["engine_ttft_s"], 4),
    }
    yield summary(bench, ours, base, variants, modes)


def summary(
    bench: Bench, ours_stage: dict[str, Any], base: dict[str, Any], variants: list[Any], modes: dict[str, Any]
) -> dict[str, Any]:
    plan, runner = bench.plan, bench.runner
    ours, follow, again = ours_stage["ours"], ours_stage["follow"], ours_stage["again"]
    per_token = runner.engine.new_cache(1).bytes_per_token
    return {
        "bench": "llm",
        "model": f"Qwen2.5-VL-{plan.preset} config, random {plan.dtype} weights",
        "device": torch.cuda.get_device_name(0) if plan.device == "cuda" else "cpu",
        "baseline_tokens": base["visual_tokens"],
        "ours_tokens": ours.tokens,
        "baseline_ttft_s": round(base["ttft_s"], 4),
        "ours_ttft_s": round(ours.ttft_s, 4),
        "ttft_speedup": ratio(base["ttft_s"], ours.ttft_s, 2),
        "baseline_kv_bytes": base["prompt_tokens"] * per_token,
        "ours_kv_bytes": ours.kv_tokens * per_token,
        "kv_ratio": ratio(ours.kv_tokens, base["prompt_tokens"], 3),
        "baseline_decode_tok_s": round(base["decode_tok_s"], 1),
        "ours_decode_tok_s": round(ours.decode_tok_s, 1) if ours.decode_tok_s else None,
        "followup_ttft_s": round(follow.ttft_s, 4),
        "followup_over_ours": ratio(follow.ttft_s, ours.ttft_s, 3),
        "ours_breakdown": ours.breakdown,
        "ours_ttft_all_s": ours_stage["ttft_all_s"],
        "followup": f"{follow.new_events} new live events ({follow.tokens} tokens) + the question, "
        f"{follow.prefill_tokens} tokens prefilled over the session's pruned KV "
        f"({follow.graphed_groups} of {follow.groups} prefill groups by CUDA graph / bucketed path)",
        "followup_breakdown": follow.breakdown,
        "followup_eager_ttft_s": round(ours_stage["follow_eager"].ttft_s, 4),
        "followup_eager_breakdown": ours_stage["follow_eager"].breakdown,
        "prefill_mode": runner.prefill_mode,
        "prefill_graphs": runner.prefill_graph_counts(),
        "reretrieval_followup_ttft_s": round(again.ttft_s, 4),
        "reretrieval_new_events": again.new_events,
        "reretrieval_breakdown": again.breakdown,
        "variants": variants,
        "baseline_prompt_our_engine_ttft_s": round(base["engine_ttft_s"], 4),
        "budget_tokens": plan.budget,
        "events_retrieved": plan.events,
        "kv_keep_ratio": plan.keep_ratio,
        "repeats": bench.repeats,
        "memory_events": len(bench.events),
        "memory_tokens": sum(e.tokens.shape[0] for e in bench.events),
        "search": "exact inner product, torch on the model's device (faiss not used)",
        "decode_mode": runner.decode_mode,
        "other_decode_modes": modes,
        "baseline": "stock transformers forward + DynamicCache, SDPA, one call per token",
        "peak_gib": {"ours": ours_stage["peak"], "baseline": base["peak"]},
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
