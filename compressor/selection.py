"""Query-time token selection: spend a token budget on the retrieved events that matter.

1. Split the budget across events by relevance (QuoTA-style: each event's share follows a softmax
   of its retrieval score), capped by what each event holds, the excess flowing to the others.
   On live streams a floor share goes to the most recent events first, whatever their score.
2. Inside an event, keep tokens greedily by diversity (DivPrune's max-min: the next token is the
   one farthest, in cosine distance, from every token kept so far) mixed with relevance.

How relevance is scored inside an event, honestly: the question embedding lives in the retrieval
encoder's space (SigLIP, D_ret) and the tokens in the LLM's (D_llm); there is no projection between
them. What is in the retrieval space is one pooled embedding per temporal grid
(`Event.grid_embeddings`). A token's relevance is the best cosine between the question and the
grids its run covers ([t, t + count)), min-max scaled inside the event: it says WHEN in the event
the question matches, not WHERE in the frame. Events without grid embeddings, or no question
embedding, fall back to diversity alone. DivPrune seeds with the token whose nearest neighbour is
farthest (all pairwise distances, O(N^2 D)); we seed with the token farthest from the event's mean
token (O(N D)) and then follow its max-min rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .config import SelectionSettings
from .errors import CompressorInputError
from .records import Event, SelectedEvent, Selection


def allocate_budget(weights: np.ndarray, capacities: np.ndarray, budget_tokens: int) -> np.ndarray:
    """[E] int64 tokens per event: proportional to weights, capped by capacities, summing to
    min(budget, sum of capacities). Rounding: largest remainder, ties to the earlier event."""
    weights = np.asarray(weights, dtype=np.float64)
    capacities = np.asarray(capacities, dtype=np.int64)
    alloc = np.zeros(len(weights), np.int64)
    remaining = int(min(budget_tokens, capacities.sum()))
    while remaining > 0:
        room = capacities - alloc
        active = room > 0
        w = np.where(active, weights, 0.0)
        if w.sum() <= 0:  # only zero-weight events have room left: share it evenly
            w = active.astype(np.float64)
        ideal = remaining * w / w.sum()
        capped = active & (ideal >= room)
        if capped.any():
            remaining -= int(room[capped].sum())
            alloc[capped] = capacities[capped]
            continue
        base = np.floor(ideal).astype(np.int64)
        leftover = remaining - int(base.sum())
        order = sorted(np.flatnonzero(active), key=lambda i: (-(ideal[i] - base[i]), i))
        base[order[:leftover]] += 1
        alloc += base
        remaining = 0
    return alloc


def farthest_points(unit_rows: np.ndarray | torch.Tensor, k: int, *, first: int | None = None) -> list[int]:
    """Indices of k rows picked by max-min cosine distance, starting at `first` (default:
    the row farthest from the mean). unit_rows: [N, D], unit norm."""
    x = (
        torch.as_tensor(np.asarray(unit_rows, dtype=np.float32))
        if isinstance(unit_rows, np.ndarray)
        else unit_rows
    )
    return pick_tokens(x, k, first=first).tolist()


def pick_tokens(
    tokens: torch.Tensor,
    k: int,
    *,
    relevance: torch.Tensor | None = None,
    relevance_weight: float = 0.0,
    first: int | None = None,
    max_steps: int = 256,
) -> np.ndarray:
    """[min(k, N)] int64 ascending: greedy max-min diversity mixed with relevance.

    tokens: [N, D]; relevance: [N] in [0, 1]. Each step keeps the token maximising
    (1 - w) * (cosine distance to the nearest kept token) + w * relevance. Up to `max_steps`
    picks this is DivPrune's one-at-a-time greedy; for larger k each step keeps the
    ceil(k / max_steps) best-scoring tokens at once, which bounds the steps (each one an [N, D]
    product) at the price of not re-scoring between the tokens of one step.
    """
    n = tokens.shape[0]
    if k >= n:
        return np.arange(n, dtype=np.int64)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    x = torch.nn.functional.normalize(tokens.float(), dim=-1)
    distance = 1 - x @ torch.nn.functional.normalize(x.mean(0), dim=0)  # seed: novelty w.r.t. the mean
    rel = torch.zeros(n, device=x.device) if relevance is None else relevance.to(x.device, torch.float32)
    taken = torch.zeros(n, dtype=torch.bool, device=x.device)
    per_step = -(-k // max_steps)
    picked: list[torch.Tensor] = []
    remaining = k
    while remaining > 0:
        score = ((1 - relevance_weight) * distance + relevance_weight * rel).masked_fill(taken, -torch.inf)
        if first is not None and not picked:
            step = torch.tensor([first], device=x.device)
        else:
            step = torch.topk(score, min(per_step, remaining)).indices
        picked.append(step)
        taken[step] = True
        to_step = (1 - x @ x[step].T).amin(dim=1)
        distance = to_step if len(picked) == 1 else torch.minimum(distance, to_step)
        remaining -= step.numel()
    return np.sort(torch.cat(picked).cpu().numpy())


def token_relevance(event: Event, question_embedding: np.ndarray | None) -> np.ndarray | None:
    """[N] in [0, 1]: best question cosine over the grids each token's run covers, scaled per event."""
    if question_embedding is None or event.grid_embeddings is None:
        return None
    grids = event.grid_embeddings.astype(np.float64)
    if grids.shape[1] != question_embedding.shape[0]:
        raise CompressorInputError(
            f"question embedding has D={question_embedding.shape[0]}, the event's grid embeddings "
            f"D={grids.shape[1]}: both must come from the retrieval encoder"
        )
    per_grid = grids @ question_embedding.astype(np.float64)  # [T]
    t_local = event.positions[:, 0].astype(np.int64) - event.grid_t0
    best = np.full(t_local.shape[0], -np.inf)
    for offset in range(int(event.counts.max(initial=1))):
        covers = (offset < event.counts) & (t_local + offset < per_grid.shape[0])
        best[covers] = np.maximum(best[covers], per_grid[t_local[covers] + offset])
    span = best.max() - best.min()
    return (best - best.min()) / span if span > 0 else np.zeros_like(best)


def _as_tensor(array: np.ndarray, device: str | torch.device) -> torch.Tensor:
    # Memory-mapped tokens are read-only; torch must not share such a buffer, so copy them.
    tensor = torch.from_numpy(array) if array.flags.writeable else torch.tensor(array)
    return tensor.to(device)


def _event_time(event: Event, is_wall: bool) -> float:
    return float(event.start_wall_s) if is_wall and event.start_wall_s is not None else event.start_pts_s


def select_tokens(
    question_embedding: np.ndarray | None,
    events_with_scores: Sequence[tuple[Event, float]],
    budget_tokens: int,
    *,
    settings: SelectionSettings | None = None,
    is_live: bool = False,
    device: str | torch.device = "cpu",
) -> Selection:
    """Split `budget_tokens` across the retrieved events and keep tokens inside each.

    question_embedding: [D_ret] unit norm (retrieval space) or None; scores: retrieval cosines.
    The result lists events in time order (wall time when every event has one, else pts).
    """
    s = settings or SelectionSettings()
    if budget_tokens < 0:
        raise CompressorInputError(f"budget_tokens must be >= 0, got {budget_tokens}")
    events = [e for e, _ in events_with_scores]
    scores = np.array([float(score) for _, score in events_with_scores], dtype=np.float64)
    capacities = np.array([e.tokens.shape[0] for e in events], dtype=np.int64)
    alloc = np.zeros(len(events), np.int64)
    if is_live and s.recency_floor_share > 0 and s.recent_events > 0 and events:
        ends = [e.end_wall_s if e.end_wall_s is not None else e.end_pts_s for e in events]
        recent = sorted(range(len(events)), key=lambda i: -ends[i])[: s.recent_events]
        floor_weights = np.zeros(len(events))
        floor_weights[recent] = 1.0
        alloc = allocate_budget(
            floor_weights,
            np.where(floor_weights > 0, capacities, 0),
            int(budget_tokens * s.recency_floor_share),
        )
    if events:
        relevance_weights = np.exp((scores - scores.max()) / s.temperature)
        alloc += allocate_budget(relevance_weights, capacities - alloc, budget_tokens - int(alloc.sum()))
    selected = []
    for event, score, k in zip(events, scores, alloc, strict=True):
        if k == 0:
            continue
        relevance = token_relevance(event, question_embedding)
        kept = pick_tokens(
            _as_tensor(event.tokens, device),
            int(k),
            relevance=None if relevance is None else torch.from_numpy(relevance),
            relevance_weight=s.relevance_weight if relevance is not None else 0.0,
            max_steps=s.diversity_steps,
        )
        selected.append(SelectedEvent(event, kept, float(score), float(k) / budget_tokens))
    is_wall = all(e.start_wall_s is not None for e in events)
    selected.sort(key=lambda se: (_event_time(se.event, is_wall), se.event.stream_id, se.event.event_id))
    return Selection(selected, budget_tokens, int(capacities.sum()))
