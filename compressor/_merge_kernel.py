"""Triton kernels for `merging.merge_unit_tokens` on CUDA: the cosine walk and the run sums, one
launch each per event instead of several per grid.

Runs never cross positions, so both kernels give each position (h, w) its own program and walk
the grids in order there; no atomics, no host sync. Imported only where triton is (`merging`
loads it on first use); the torch code in `merging` is the reference and the CPU path.

Agreement with the torch path:
  - run sums are float32 sums in grid order, as `index_add_` one grid at a time makes them, and
    the kernel is built without multiply-add fusion, so they agree bit for bit;
  - the cosine test sums its products in another order than `_tensors.row_dots`, so a cosine
    within ~1e-5 of `similarity` may fall on the other side of it. Such a token is as good merged
    as kept; tests compare the two paths on tokens whose cosines stay clear of the threshold.

Loops are `while` loops: Triton's interpreter (numpy) cannot bound a `range` by a runtime
argument under NumPy >= 2.4, and the CPU tests run these kernels there (TRITON_INTERPRET=1).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_HEAD_BLOCK_D = 2048  # widest D chunk of the cosine walk: one program reads 2 rows per grid
_SUM_BLOCK_D = 256  # D columns per program of the sums: P * D / 256 programs keep the GPU busy


# T varies from event to event: left unspecialised (Triton would compile again for T = 1 and for
# multiples of 16, mid-stream). P and D are the model's, fixed.
@triton.jit(do_not_specialize=["T"])
def _run_head_kernel(units_ptr, repeat_ptr, similar_ptr, T, P, D, similarity, BLOCK_D: tl.constexpr):
    """One program per position p: similar[t, p] for t = 1..T-1, keeping the run head's grid."""
    p = tl.program_id(0)
    offs = tl.arange(0, BLOCK_D)
    head = tl.full([], 0, tl.int64)  # grid of the open run's first token
    t = 1
    while t < T:
        at = t * P + p
        is_free = tl.load(repeat_ptr + at) == 0  # repeats neither test nor restart the run
        row = units_ptr + at.to(tl.int64) * D
        head_row = units_ptr + (head * P + p) * D
        acc = tl.zeros([BLOCK_D], dtype=tl.float32)
        d0 = 0
        while d0 < D:
            # a repeat loads nothing; one comparison, not `& is_free`: Triton 3.9's interpreter
            # types a block & scalar bool as int32 and refuses it as a mask
            mask = d0 + offs < tl.where(is_free, D, 0)
            u = tl.load(row + d0 + offs, mask=mask, other=0.0)
            h = tl.load(head_row + d0 + offs, mask=mask, other=0.0)
            acc += u * h
            d0 += BLOCK_D
        is_similar = is_free & (tl.sum(acc, axis=0) >= similarity)
        tl.store(similar_ptr + at, is_similar.to(tl.uint8))
        head = tl.where(is_free & ~is_similar, t, head)
        t += 1


@triton.jit(do_not_specialize=["T"])
def _run_sums_kernel(units_ptr, norms_ptr, starts_ptr, run_of_ptr, sums_ptr, T, P, D, BLOCK_D: tl.constexpr):
    """Program (p, column block): sums[run] = sum of units * norms over the run's grids at p."""
    p = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = offs < D
    acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    t = 0
    while t < T:
        at = (t * P + p).to(tl.int64)
        u = tl.load(units_ptr + at * D + offs, mask=in_row, other=0.0)
        acc += u * tl.load(norms_ptr + at)
        # the run ends here if the next grid starts a new one (or there is none): write it once
        is_end = tl.load(starts_ptr + at + P, mask=t + 1 < T, other=1) != 0
        run = tl.load(run_of_ptr + at)
        tl.store(sums_ptr + run * D + offs, acc, mask=offs < tl.where(is_end, D, 0))  # as above
        acc = tl.where(is_end, 0.0, acc)
        t += 1


def similar_to_run_head(
    units: torch.Tensor, repeat: torch.Tensor, similarity: float, *, max_block_d: int = _HEAD_BLOCK_D
) -> torch.Tensor:
    """`merging._similar_to_run_head` in one launch. units: [T, P, D] float32 unit rows;
    repeat: [T, P] bool. Returns [T, P] bool (row 0 all False). max_block_d: a power of two
    (tests make it small to walk D in several masked chunks)."""
    t_grids, p, d = units.shape
    similar = torch.zeros((t_grids, p), dtype=torch.uint8, device=units.device)
    if p > 0 and t_grids > 1:
        block_d = min(triton.next_power_of_2(max(d, 1)), max_block_d)
        _run_head_kernel[(p,)](
            units.contiguous(),
            repeat.contiguous().view(torch.uint8),
            similar,
            t_grids,
            p,
            d,
            float(similarity),
            BLOCK_D=block_d,
            num_warps=8,  # few programs (one per position): more loads in flight in each
        )
    return similar.view(torch.bool)


def run_sums(
    units: torch.Tensor,
    norms: torch.Tensor,
    starts: torch.Tensor,
    run_of: torch.Tensor,
    n_runs: int,
    *,
    max_block_d: int = _SUM_BLOCK_D,
) -> torch.Tensor:
    """[n_runs, D] float32: each run's sum of units * norms, in grid order. units: [T, P, D] and
    norms: [T, P] float32; starts: [T, P] bool (row 0 all True); run_of: [T, P] int64, the run of
    each token (`merging._runs`). max_block_d: a power of two, as in `similar_to_run_head`."""
    t_grids, p, d = units.shape
    sums = torch.empty((n_runs, d), dtype=torch.float32, device=units.device)  # each row written once
    if p > 0 and d > 0:
        block_d = min(triton.next_power_of_2(d), max_block_d)
        _run_sums_kernel[(p, triton.cdiv(d, block_d))](
            units.contiguous(),
            norms.contiguous(),
            starts.contiguous().view(torch.uint8),
            run_of.contiguous(),
            sums,
            t_grids,
            p,
            d,
            BLOCK_D=block_d,
            enable_fp_fusion=False,  # acc + u * n rounded twice, as index_add_ of the products does
        )
    return sums
