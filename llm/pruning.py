"""Which visual KV rows a layer keeps. Pure tensor functions; text rows are always kept.

- Key norm (QuickPrefill): keep the visual tokens whose keys, over all KV heads, have the
  smallest L2 norm. Query-agnostic, so the pruned cache serves every later question; needs no
  attention weights, so it works with SDPA and FlashAttention. Never by value norm (QuickVideo
  measured -35 points).
- Question window (SnapKV): score each visual row by the attention the last prompt tokens pay
  it, smoothed by a 1-D max pool, and keep the best per group.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def kept_count(n_visual: int, keep_ratio: float) -> int:
    """Visual rows a group keeps: round(n * r), at least one of a non-empty group."""
    if n_visual == 0:
        return 0
    return min(n_visual, max(1, math.floor(n_visual * keep_ratio + 0.5)))


def keynorm_keep(
    keys: torch.Tensor, is_visual: torch.Tensor, n_text: int, n_keep_visual: int
) -> torch.Tensor:
    """keys: [1, H_kv, q, D] (post-RoPE: rotation keeps norms); is_visual: [q] bool.
    Returns the ascending row indices to keep: [n_text + n_keep_visual]."""
    norms = keys.float().square().sum(dim=(0, 1, 3))  # squared L2 over heads and dims: same order as L2
    score = norms.masked_fill(~is_visual, -1.0)
    idx = torch.topk(score, n_text + n_keep_visual, largest=False, sorted=False).indices
    return idx.sort().values


def keynorm_order(keys: torch.Tensor, row_kind: torch.Tensor, n_kept: torch.Tensor) -> torch.Tensor:
    """Static-shape key-norm pruning of a padded chunk (CUDA-graph capturable: no size depends on values).

    keys: [1, H_kv, Q, D]; row_kind: [Q] int64 (0 text, 1 visual, 2 padding); n_kept: [1] int64, the
    chunk's text rows plus the visual rows it keeps. Returns a permutation of the Q rows whose first
    n_kept are the rows `keynorm_keep` keeps, ascending; the rest follow, ascending (they fall past
    the cache's length).

    Ranks come from a [Q, Q] comparison, not a sort: at a few hundred rows that is a handful of
    elementwise kernels, where two argsorts were ~55 us of radix-sort passes per layer (H100). Equal
    norms rank by row index.
    """
    q = keys.shape[2]
    norms = keys.float().square().sum(dim=(0, 1, 3))  # [Q]; squared L2 orders as L2 does
    idx = torch.arange(q, device=keys.device)
    is_visual, is_text = row_kind == 1, row_kind == 0
    before = (norms[None, :] < norms[:, None]) | (
        (norms[None, :] == norms[:, None]) & (idx[None, :] < idx[:, None])
    )
    rank = (before & is_visual[None, :]).sum(dim=1)  # [Q]: visual rows ranked ahead of row i
    kept = is_text | (is_visual & (rank < n_kept - is_text.sum()))
    # kept rows first in row order, then the others in row order
    dest = torch.where(kept, kept.cumsum(0) - 1, kept.sum() + (~kept).cumsum(0) - 1)
    return torch.empty_like(idx).scatter_(0, dest, idx)


def window_scores(
    queries: torch.Tensor, keys: torch.Tensor, scale: float, pool_kernel: int = 7
) -> torch.Tensor:
    """Attention mass the window queries pay each key row, summed over heads and queries, max-pooled.

    queries: [1, H_q, W, D] (the last W prompt tokens, post-RoPE); keys: [1, H_kv, S, D] whose last W
    rows are the window itself (causal inside it). Returns [S] float32.
    """
    _, hq, w, d = queries.shape
    hkv, s = keys.shape[1], keys.shape[2]
    q = queries.reshape(1, hkv, hq // hkv, w, d).float()
    logits = torch.einsum("bhgwd,bhsd->bhgws", q, keys.float()) * scale
    causal = torch.ones(w, s, dtype=torch.bool, device=keys.device).tril(diagonal=s - w)
    probs = logits.masked_fill(~causal, float("-inf")).softmax(dim=-1)
    score = probs.sum(dim=(0, 1, 2, 3))
    return F.max_pool1d(score[None, None], pool_kernel, stride=1, padding=pool_kernel // 2)[0, 0]


def grouped_topk_keep(
    score: torch.Tensor, is_visual: torch.Tensor, group: torch.Tensor, keep_per_group: dict[int, int]
) -> torch.Tensor:
    """Ascending indices: every text row plus, per group g, the keep_per_group[g] best-scored visual rows.
    score, is_visual, group: [S]."""
    parts = [torch.nonzero(~is_visual).flatten()]
    for g, k in keep_per_group.items():
        rows = torch.nonzero(is_visual & (group == g)).flatten()
        if k and rows.numel():
            parts.append(rows[torch.topk(score[rows], k).indices])
    return torch.cat(parts).sort().values
