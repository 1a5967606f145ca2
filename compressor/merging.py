"""Token merging inside an event (HoliTom / DyCoke style), on top of the RLT and EVS tests.

At each token position (h, w), an event is a sequence of runs: a run starts with a kept token
and absorbs the following tokens at that position that repeat it. A token repeats the run when
  - its pixels are static (every patch it covers passed the RLT test against the last kept patch), or
  - EVS dropped it (it is among the least changed since the previous grid), or
  - its cosine with the run's first token is at least `similarity` (HoliTom's temporal merge; we
    compare with the run's first token, not the previous one, so a slow drift ends the run).
A run becomes one token: the mean of its tokens (HoliTom), at the position of its first token,
with the count of tokens it stands for. The first grid of an event always starts every run.

Runs at any position depend only on that position, so only the cosine test walks the grids in
order; run membership and counts are then a cumulative maximum, a gather and an index_add_. On CUDA
(float32 rows, triton importable) the cosine walk and the run sums are one Triton launch each
(`_merge_kernel`: a program per position walks the grids); elsewhere, and as the reference, torch
walks the grids ([h*w, D] per step) and sums with one `index_add_` per grid. The two paths give
the same runs and bit-identical sums, except that a cosine within ~1e-5 of `similarity` may be
decided either way (the dot products sum in another order). Two host syncs per event size the
output; only the merged tokens come back to the host.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from ._tensors import as_tensor, row_dots, unit_rows
from .errors import CompressorError, CompressorInputError


@dataclass(frozen=True, slots=True, repr=False)
class MergedTokens:
    tokens: np.ndarray  # [N, D] (float32 unless asked otherwise), ordered by (t, h, w)
    positions: np.ndarray  # [N, 3] int32 (t, h, w), t counted from the event's first grid
    counts: np.ndarray  # [N] int32: source tokens each stands for (the run's length in grids)
    merged_static: int  # tokens absorbed because their pixels were static
    merged_evs: int  # ... because EVS dropped them
    merged_similar: int  # ... because they matched the run's first token

    def __repr__(self) -> str:
        n, d = self.tokens.shape
        return f"MergedTokens(tokens=[{n}, {d}], sources={self.counts.sum()})"


def merge_event_tokens(
    tokens: np.ndarray | torch.Tensor,
    *,
    is_static: np.ndarray | torch.Tensor | None = None,
    is_evs_kept: np.ndarray | torch.Tensor | None = None,
    similarity: float | None = None,
) -> MergedTokens:
    """tokens: [T, h, w, D] (numpy, or a tensor on any device); is_static, is_evs_kept: [T, h, w]
    bool (None: no such test). Merged tokens come back as float32."""
    if tokens.ndim != 4:
        raise CompressorInputError(f"tokens must be [T, h, w, D], got {tuple(tokens.shape)}")
    t_grids, h, w, d = tokens.shape
    units, norms = unit_rows(as_tensor(tokens).reshape(t_grids, h * w, d))
    return merge_unit_tokens(
        list(units), norms, (h, w), is_static=is_static, is_evs_kept=is_evs_kept, similarity=similarity
    )


def merge_unit_tokens(
    units: Sequence[torch.Tensor] | torch.Tensor,
    norms: torch.Tensor,
    grid_hw: tuple[int, int],
    *,
    is_static: np.ndarray | torch.Tensor | None = None,
    is_evs_kept: np.ndarray | torch.Tensor | None = None,
    similarity: float | None = None,
    out_dtype: np.dtype | type = np.float32,
    kernels: bool | None = None,
) -> MergedTokens:
    """`merge_event_tokens` on tokens already split into unit rows and norms (`_tensors.unit_rows`),
    one [h*w, D] tensor per grid (the segmenter computed them once per grid) or all of them stacked
    ([T, h*w, D]: the kernels take that as it is), norms: [T, h*w].
    The merged tokens come back to the host as `out_dtype`. kernels: None picks the Triton
    kernels for float32 rows on CUDA; True forces them (tests run them on the CPU under
    TRITON_INTERPRET=1), False forces the torch code."""
    t_grids, (h, w) = len(units), grid_hw
    for name, mask in (("is_static", is_static), ("is_evs_kept", is_evs_kept)):
        if mask is not None and tuple(mask.shape) != (t_grids, h, w):
            raise CompressorInputError(f"{name} must be [{t_grids}, {h}, {w}], got {tuple(mask.shape)}")
    device = norms.device
    backend = _pick_backend(kernels, device, units[0].dtype)
    stacked = None
    if backend is not None:  # [T, h*w, D]
        stacked = units if isinstance(units, torch.Tensor) else torch.stack(list(units))
    no = torch.zeros((t_grids, h * w), dtype=torch.bool, device=device)
    static = no if is_static is None else as_tensor(is_static).to(device).reshape(t_grids, -1).clone()
    static[0] = False  # the first grid starts every run
    by_evs = no if is_evs_kept is None else ~as_tensor(is_evs_kept).to(device).reshape(t_grids, -1)
    by_evs = by_evs & ~static
    by_evs[0] = False
    repeat = static | by_evs
    if similarity is None:
        by_similarity = no
    elif backend is None:
        by_similarity = _similar_to_run_head(units, repeat, similarity)
    else:
        by_similarity = backend.similar_to_run_head(stacked, repeat, similarity)
    starts = ~(repeat | by_similarity)
    sizes = torch.stack([starts.sum(), static.sum(), by_evs.sum(), by_similarity.sum()]).tolist()
    n_runs, merged_static, merged_evs, merged_similar = (int(x) for x in sizes)  # host sync
    run_of, run_t, run_hw = _runs(starts)
    if backend is None:
        sums = _run_sums(units, norms, run_of, n_runs)
    else:
        sums = backend.run_sums(stacked, norms, starts, run_of, n_runs)
    # not bincount: on CUDA it reads the largest index back to size its output (a host sync)
    flat = run_of.reshape(-1)
    counts = torch.zeros(n_runs, dtype=torch.int64, device=device).index_add_(0, flat, torch.ones_like(flat))
    means = (sums / counts.unsqueeze(1).to(sums.dtype)).to(_torch_dtype(out_dtype))
    positions = torch.stack([run_t, run_hw // w, run_hw % w], dim=1).to(torch.int32)
    return MergedTokens(
        means.cpu().numpy(),
        positions.cpu().numpy(),
        counts.to(torch.int32).cpu().numpy(),
        merged_static,
        merged_evs,
        merged_similar,
    )


def _pick_backend(kernels: bool | None, device: torch.device, dtype: torch.dtype) -> ModuleType | None:
    """The Triton kernels (`_merge_kernel`) where they serve this call, None for the torch code."""
    if kernels is False or (kernels is None and (device.type != "cuda" or dtype != torch.float32)):
        return None
    backend = _triton_kernels()
    if kernels and backend is None:
        raise CompressorError("merge kernels asked for (kernels=True), but triton is not importable")
    if kernels and dtype != torch.float32:
        raise CompressorError(f"merge kernels take float32 unit rows, got {dtype}")
    return backend


@functools.cache
def _triton_kernels() -> ModuleType | None:
    """`_merge_kernel`, imported on first use (importing triton takes a while); None without
    triton. Cached: a failed import would otherwise search the path again every event."""
    try:
        from . import _merge_kernel
    except ImportError:
        return None
    return _merge_kernel


def _run_sums(
    units: Sequence[torch.Tensor] | torch.Tensor, norms: torch.Tensor, run_of: torch.Tensor, n_runs: int
) -> torch.Tensor:
    """[n_runs, D]: each run's sum of units * norms (the tokens), added in grid order."""
    sums = torch.zeros((n_runs, units[0].shape[-1]), dtype=norms.dtype, device=norms.device)
    # One grid per call: within a grid every run gets at most one token, so the GPU's atomic adds
    # never contend (16 grids per call took the H100 bench's merge from 6.1 to 9.2 ms an event: a
    # static run's tokens all land on one row).
    for t in range(len(units)):
        sums.index_add_(0, run_of[t], units[t] * norms[t].unsqueeze(1))
    return sums


def _similar_to_run_head(
    units: Sequence[torch.Tensor] | torch.Tensor, repeat: torch.Tensor, similarity: float
) -> torch.Tensor:
    """[T, P] bool: token (t, p) repeats its run by cosine with the run's first token.

    units: T x [P, D] unit rows; repeat: [T, P], already merged by pixels or EVS (such a token
    neither tests nor restarts the run). The one sequential part: a run's head is known only once
    the grids before it are decided. No host sync inside.
    """
    free = ~repeat  # [T, P]: tokens that test (and may restart) their run
    rows = [torch.zeros_like(repeat[0])]
    head = units[0]  # [P, D]: unit row of each position's open run
    for t in range(1, len(units)):
        similar = (row_dots(units[t], head) >= similarity).logical_and_(free[t])
        rows.append(similar)
        head = torch.where((similar | repeat[t]).unsqueeze(1), head, units[t])
    return torch.stack(rows)


def _runs(starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """starts: [T, P] bool, True where a run begins (row 0 all True).

    Returns run_of [T, P] (the run each token belongs to, runs numbered in (t, p) order of their
    first token) and each run's first grid t and position p.
    """
    t_grids, p = starts.shape
    grid = torch.arange(t_grids, device=starts.device).unsqueeze(1).expand(t_grids, p)
    head_t = torch.cummax(torch.where(starts, grid, -1), dim=0).values  # [T, P]: grid of the run's start
    ordinal = torch.cumsum(starts.reshape(-1), dim=0).reshape(t_grids, p) - 1  # run number at its start
    run_of = torch.gather(ordinal, 0, head_t)
    first = torch.nonzero(starts.reshape(-1)).squeeze(1)  # row-major: (t, p) order
    return run_of, first // p, first % p


def _torch_dtype(dtype: np.dtype | type) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype
