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

The greedy loop is sequential inside an event but independent across events, so all retrieved
events run it side by side (`pick_tokens_batched`: padded [E, N, D] on the LLM's device, one
top-k and one batched product per step): max_e steps instead of sum_e, with the picks of running
`pick_tokens` event after event.
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


def farthest_points(unit_rows: np.ndarray, k: int, *, first: int = 0) -> list[int]:
    """Indices of k rows picked by max-min cosine distance, starting at `first`, ascending.
    unit_rows: [N, D], unit norm. For a few rows (an event's grids, for its keyframes): numpy, a
    handful of small products, no device round trips."""
    x = np.asarray(unit_rows, dtype=np.float32)
    n = x.shape[0]
    if k >= n:
        return list(range(n))
    if k <= 0:
        return []
    picked = [first]
    distance = 1 - x @ x[first]
    while len(picked) < k:
        distance[picked] = -np.inf
        nxt = int(np.argmax(distance))
        picked.append(nxt)
        distance = np.minimum(distance, 1 - x @ x[nxt])
    return sorted(picked)


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


def pick_tokens_batched(
    tokens: Sequence[np.ndarray | torch.Tensor],
    ks: Sequence[int],
    *,
    relevances: Sequence[np.ndarray | None] | None = None,
    relevance_weight: float = 0.0,
    max_steps: int = 256,
    device: str | torch.device = "cpu",
    max_padded_bytes: int = 1 << 30,
) -> list[np.ndarray]:
    """`pick_tokens` for many events at once: the same picks, in max-k steps instead of sum-k.

    tokens[e]: [N_e, D]; ks[e]: how many to keep; relevances[e]: [N_e] in [0, 1] or None (that
    event then ranks by diversity alone). Events are padded into one [E, N, D] float32 tensor on
    `device` and every step picks for all of them (one top-k, one batched product); events of
    very different sizes, or more than `max_padded_bytes` of them, run in several such groups.
    """
    out: list[np.ndarray | None] = [None] * len(tokens)
    todo = []
    for e, (x, k) in enumerate(zip(tokens, ks, strict=True)):
        n = x.shape[0]
        if k >= n or k <= 0:
            out[e] = np.arange(n if k > 0 else 0, dtype=np.int64)
        else:
            todo.append(e)
    rel = [None] * len(tokens) if relevances is None else list(relevances)
    for group in _padded_groups(todo, [t.shape for t in tokens], max_padded_bytes):
        picks = _max_min_group(
            [tokens[e] for e in group],
            [int(ks[e]) for e in group],
            [rel[e] for e in group],
            relevance_weight,
            max_steps,
            torch.device(device),
        )
        for e, kept in zip(group, picks, strict=True):
            out[e] = kept
    return out  # type: ignore[return-value]


def _padded_groups(todo: list[int], shapes: list[tuple[int, ...]], max_padded_bytes: int) -> list[list[int]]:
    """Events by size, cut into groups whose padded float32 [E, N_max, D] fits max_padded_bytes."""
    groups: list[list[int]] = []
    for e in sorted(todo, key=lambda e: shapes[e][0]):
        n, d = shapes[e][0], shapes[e][1]
        if groups and (len(groups[-1]) + 1) * n * d * 4 <= max_padded_bytes:
            groups[-1].append(e)
        else:
            groups.append([e])
    return groups


def _max_min_group(
    tokens: list[np.ndarray | torch.Tensor],
    ks: list[int],
    relevances: list[np.ndarray | None],
    relevance_weight: float,
    max_steps: int,
    device: torch.device,
) -> list[np.ndarray]:
    """The greedy max-min of `pick_tokens` for E events side by side (0 < k_e < N_e for each)."""
    e_count, n_max = len(tokens), max(t.shape[0] for t in tokens)
    x, valid = _padded(tokens, n_max, device)  # [E, N, D] unit rows, [E, N]
    mean = torch.nn.functional.normalize(x.sum(dim=1), dim=-1)  # [E, D]: each event's mean direction
    distance = 1 - torch.bmm(x, mean.unsqueeze(2)).squeeze(2)  # [E, N]: seed = novelty w.r.t. the mean
    rel = torch.zeros((e_count, n_max), dtype=torch.float32)
    weight = torch.zeros((e_count, 1), dtype=torch.float32)
    for e, r in enumerate(relevances):
        if r is not None:
            rel[e, : r.shape[0]] = torch.as_tensor(r, dtype=torch.float32)
            weight[e] = relevance_weight
    rel, weight = rel.to(device), weight.to(device)
    per_step = [-(-k // max_steps) for k in ks]
    steps = max(-(-k // p) for k, p in zip(ks, per_step, strict=True))
    width = max(per_step)
    # picks[e, s]: how many event e keeps at step s (decided up front: no host sync in the loop)
    quota = torch.tensor(
        [[max(0, min(p, k - s * p)) for s in range(steps)] for k, p in zip(ks, per_step, strict=True)]
    ).to(device)
    rank = torch.arange(width, device=device)
    taken = ~valid
    chosen, used = [], []
    for s in range(steps):
        score = ((1 - weight) * distance + weight * rel).masked_fill(taken, -torch.inf)
        top = torch.topk(score, width, dim=1).indices  # [E, width]
        use = rank < quota[:, s : s + 1]  # [E, width]
        taken = taken | torch.zeros_like(taken).scatter_(1, top, use)
        picked = x.gather(1, top.unsqueeze(2).expand(-1, -1, x.shape[2]))  # [E, width, D]
        to_step = (1 - torch.bmm(x, picked.transpose(1, 2))).masked_fill(~use.unsqueeze(1), torch.inf)
        to_step = to_step.amin(dim=2)  # [E, N]
        distance = to_step if s == 0 else torch.minimum(distance, to_step)
        chosen.append(top)
        used.append(use)
    top_all, use_all = torch.stack(chosen, 1).cpu().numpy(), torch.stack(used, 1).cpu().numpy()
    return [np.sort(top_all[e][use_all[e]]).astype(np.int64) for e in range(e_count)]


def _padded(
    tokens: list[np.ndarray | torch.Tensor], n_max: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, n_max, D] float32 unit rows on device (zero rows past each event's end) and [E, n_max] valid."""
    d = tokens[0].shape[1]
    lengths = torch.tensor([t.shape[0] for t in tokens])
    if all(isinstance(t, np.ndarray) for t in tokens):
        host = np.zeros((len(tokens), n_max, d), dtype=np.result_type(*tokens))  # one copy to the device
        for e, t in enumerate(tokens):
            host[e, : t.shape[0]] = t
        padded = torch.from_numpy(host).to(device)
    else:
        padded = torch.zeros((len(tokens), n_max, d), dtype=torch.float32, device=device)
        for e, t in enumerate(tokens):
            padded[e, : t.shape[0]] = torch.as_tensor(t).to(device, torch.float32)
    x = torch.nn.functional.normalize(padded.float(), dim=-1)
    valid = torch.arange(n_max).unsqueeze(0) < lengths.unsqueeze(1)
    return x, valid.to(device)


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
    event_weights: Sequence[float] | None = None,
) -> Selection:
    """Split `budget_tokens` across the retrieved events and keep tokens inside each.

    question_embedding: [D_ret] unit norm (retrieval space) or None; scores: retrieval cosines.
    event_weights: [N] >= 0 multiplying each event's share beyond the recency floor (audio-guided
    budgets: narrated events weigh more; encoder.text.budget.event_weights).
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
    if event_weights is not None:
        weights = np.asarray(event_weights, dtype=np.float64)
        if weights.shape != (len(events),) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise CompressorInputError(
                f"event_weights must be {len(events)} finite values >= 0, got shape {weights.shape}"
            )
    if events:
        relevance_weights = np.exp((scores - scores.max()) / s.temperature)
        if event_weights is not None:
            relevance_weights = relevance_weights * weights
        alloc += allocate_budget(relevance_weights, capacities - alloc, budget_tokens - int(alloc.sum()))
    chosen = [i for i, k in enumerate(alloc) if k > 0]
    relevances = [token_relevance(events[i], question_embedding) for i in chosen]
    kept = pick_tokens_batched(
        [events[i].tokens for i in chosen],
        [int(alloc[i]) for i in chosen],
        relevances=relevances,
        relevance_weight=s.relevance_weight,
        max_steps=s.diversity_steps,
        device=device,
    )
    selected = [
        SelectedEvent(events[i], kept_i, float(scores[i]), float(alloc[i]) / budget_tokens)
        for i, kept_i in zip(chosen, kept, strict=True)
    ]
    is_wall = all(e.start_wall_s is not None for e in events)
    selected.sort(key=lambda se: (_event_time(se.event, is_wall), se.event.stream_id, se.event.event_id))
    return Selection(selected, budget_tokens, int(capacities.sum()))
