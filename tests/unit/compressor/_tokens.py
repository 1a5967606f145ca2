"""Synthetic token sequences for the merge tests (CPU and GPU)."""

from __future__ import annotations

import numpy as np


def drifting_tokens(rng, t, h, w, d, steps_deg=(0, 0, 5, 10, 20, 45, 90)):
    """[t, h, w, d] float32 tokens that turn in a plane at each position, by a random multiple of
    5 degrees per grid, at random norms. Every cosine between two tokens at a position is then
    cos(k * 5 deg): thresholds 0.8, 0.9 and 0.95 stay 5e-3 or more from all of them, so the
    kernel's dot products (summed in another order) decide exactly as the torch ones."""
    plane, _ = np.linalg.qr(rng.standard_normal((h, w, d, 2)))  # [h, w, d, 2] orthonormal pairs
    angle = np.deg2rad(np.cumsum(rng.choice(steps_deg, size=(t, h, w)), axis=0))[..., None]
    tokens = np.cos(angle) * plane[..., 0] + np.sin(angle) * plane[..., 1]
    return (tokens * rng.uniform(0.5, 2.0, (t, h, w, 1))).astype(np.float32)
