"""The Qwen2.5-VL language model driven directly over its own modules (gpt-fast style).

We reuse the checkpoint's modules (norms, projections, MLPs, embeddings, lm_head) and write the
loop ourselves, because we need what the stock forward does not offer: explicit mRoPE positions
for a sparse set of visual tokens, a static preallocated cache, group-by-group prefill with
per-layer KV pruning, and a tiny decode step that torch.compile and CUDA graphs can capture.
Exactness against the stock model is tested (tests/unit/llm/test_exactness.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .kvcache import StaticKVCache

# keep(layer, region keys [1, H_kv, R, D], chunk queries [1, H_q, q, D]) -> ascending region rows to keep
KeepFn = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor | None]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class MRope(nn.Module):
    """Multimodal RoPE: frequency bands split into (t, h, w) sections, each rotated by its axis."""

    def __init__(self, inv_freq: torch.Tensor, section: list[int]) -> None:
        super().__init__()
        if sum(section) != inv_freq.shape[0]:
            raise ValueError(f"mrope_section {section} must sum to head_dim/2 = {inv_freq.shape[0]}")
        self.register_buffer("inv_freq", inv_freq.detach().float().clone(), persistent=False)
        self.section = list(section)
        axis = torch.cat([torch.full((n,), i % 3, dtype=torch.long) for i, n in enumerate(section)])
        axis = axis.to(inv_freq.device)
        self.register_buffer("axis", axis, persistent=False)  # [D/2]: which position axis drives each band

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions: [3, L] int -> cos, sin: [L, D]."""
        inv_freq, axis = self.get_buffer("inv_freq"), self.get_buffer("axis")
        freqs = positions[..., None].float() * inv_freq  # [3, L, D/2]
        banded = freqs.gather(0, axis.view(1, 1, -1).expand(1, freqs.shape[1], -1))[0]  # [L, D/2]
        emb = torch.cat((banded, banded), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


class TextEngine(nn.Module):
    """Prefill and decode over a Qwen2.5-VL language model's own modules."""

    def __init__(self, hf_model: Any, *, attention: str = "sdpa") -> None:
        super().__init__()
        lm = hf_model.model.language_model
        cfg = lm.config
        self.layers = lm.layers
        self.norm = lm.norm
        self.embed = lm.embed_tokens
        self.lm_head = hf_model.lm_head
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv_heads = int(cfg.num_key_value_heads)
        self.head_dim = int(cfg.hidden_size) // self.n_heads
        self.scale = self.head_dim**-0.5
        self.rope = MRope(lm.rotary_emb.inv_freq, _mrope_section(lm))
        self.flash = _flash_fn() if attention == "flash" else None

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def new_cache(self, capacity: int) -> StaticKVCache:
        return StaticKVCache(
            len(self.layers), self.n_kv_heads, self.head_dim, capacity, self.dtype, self.device
        )

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: [..., H] of the last position -> [..., V] float32."""
        return self.lm_head(self.norm(hidden)).float()

    # ------------------------------------------------------------------ prefill

    @torch.inference_mode()
    def prefill_chunk(
        self,
        embeds: torch.Tensor,
        positions: torch.Tensor,
        cache: StaticKVCache,
        keep: KeepFn | None = None,
        keep_from: int | None = None,
    ) -> tuple[torch.Tensor, int]:
        """Run a chunk of q new tokens after the cache's rows; every layer writes its K/V, then keeps
        only the rows `keep` picks out of the region [keep_from, end) (default: this chunk), compacted
        to the region's front. embeds: [1, q, H]; positions: [3, q].
        Returns the last token's hidden state [1, H] and the region's kept row count."""
        past, q = cache.length, embeds.shape[1]
        start = past if keep_from is None else keep_from
        cache.reserve(q)
        cos, sin = self.rope(positions, embeds.dtype)
        x = embeds
        kept = past + q - start
        for i in range(len(self.layers)):
            qs, ks, vs = self.pre_attention(i, x, cos, sin)
            x = self.post_attention(i, x, self.attend_cached(i, qs, ks, vs, cache, past))
            if keep is None:
                continue
            k_cache, v_cache = cache.k[i], cache.v[i]
            region_k = k_cache[:, :, start : past + q]
            rows = keep(i, region_k, qs)
            if rows is not None:
                kept = int(rows.shape[0])
                k_cache[:, :, start : start + kept] = region_k[:, :, rows]
                v_cache[:, :, start : start + kept] = v_cache[:, :, start : past + q][:, :, rows]
        cache.length = start + kept
        return x[:, -1], kept

    # The three parts of a prefill layer. Split so that the parts without the cache can be captured as
    # CUDA graphs at a padded length (prefill_graphs.py) while attention runs eagerly at the exact one.

    def pre_attention(
        self, i: int, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layer i up to attention. x: [1, q, H] -> q: [1, H_q, q, D], k, v: [1, H_kv, q, D], RoPE applied."""
        return self.layer_pre_attention(self.layers[i], x, cos, sin)

    def layer_pre_attention(
        self, layer: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`pre_attention` of a layer given as a module: one torch.compile'd function then serves
        every layer (the index would be a constant it specialises on)."""
        return self._qkv(layer.self_attn, layer.input_layernorm(x), cos, sin)

    def attend_cached(
        self,
        i: int,
        qs: torch.Tensor,
        ks: torch.Tensor,
        vs: torch.Tensor,
        cache: StaticKVCache,
        past: int,
    ) -> torch.Tensor:
        """Write the chunk's K/V at cache rows [past, past + q) of layer i and attend over rows [0, past + q).
        Returns [1, H_q, q, D]."""
        q = qs.shape[2]
        k_cache, v_cache = cache.k[i], cache.v[i]
        k_cache[:, :, past : past + q] = ks
        v_cache[:, :, past : past + q] = vs
        return self._attend(qs, k_cache[:, :, : past + q], v_cache[:, :, : past + q], past)

    def post_attention(self, i: int, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Layer i after attention. x: [1, q, H]; attended: [1, H_q, q, D] -> [1, q, H]."""
        return self.layer_post_attention(self.layers[i], x, attended)

    def layer_post_attention(self, layer: Any, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        b, q, _ = x.shape
        x = x + layer.self_attn.o_proj(attended.transpose(1, 2).reshape(b, q, -1))
        return x + layer.mlp(layer.post_attention_layernorm(x))

    def _qkv(
        self, attn: Any, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, q, _ = h.shape
        qs = attn.q_proj(h).view(b, q, self.n_heads, self.head_dim).transpose(1, 2)
        ks = attn.k_proj(h).view(b, q, self.n_kv_heads, self.head_dim).transpose(1, 2)
        vs = attn.v_proj(h).view(b, q, self.n_kv_heads, self.head_dim).transpose(1, 2)
        qs = qs * cos + rotate_half(qs) * sin
        ks = ks * cos + rotate_half(ks) * sin
        return qs, ks, vs

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: int) -> torch.Tensor:
        """Causal attention of q new rows over past + q rows (all past rows visible)."""
        if self.flash is not None and q.is_cuda:
            out = self.flash(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True)
            return out.transpose(1, 2)  # flash-attn aligns the causal mask bottom-right
        if past == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale, enable_gqa=True)
        from torch.nn.attention.bias import causal_lower_right

        # Grouped K/V as they are: on CUDA this is one flash call (bottom-right causal, GQA native);
        # repeating K/V to every query head first cost ~35 us of copies per layer (H100, 7B, 2K rows).
        mask = causal_lower_right(q.shape[2], k.shape[2])
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale, enable_gqa=True)

    # ------------------------------------------------------------------ decode

    def decode_step(
        self,
        token: torch.Tensor,
        position: torch.Tensor,
        slot: torch.Tensor,
        k: list[torch.Tensor],
        v: list[torch.Tensor],
    ) -> torch.Tensor:
        """One token. token: [1, 1] int64; position: [3, 1] int64; slot: [1] int64 (its cache row);
        k, v: the cache's per-layer tensors [1, H_kv, S, D], written in place at `slot`.
        Returns logits [1, V] float32. No host syncs and no shape that depends on values:
        torch.compile and CUDA graphs capture it."""
        x = self.embed(token)
        cos, sin = self.rope(position, x.dtype)
        valid = torch.arange(k[0].shape[2], device=x.device) <= slot  # [S]: rows up to this one
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            qs, ks, vs = self._qkv(attn, layer.input_layernorm(x), cos, sin)
            k[i][:, :, slot] = ks
            v[i][:, :, slot] = vs
            out = self._decode_attend(qs, k[i], v[i], valid)
            x = x + attn.o_proj(out.reshape(1, 1, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.logits(x[:, -1])

    def _decode_attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """q: [1, H_q, 1, D]; k, v: [1, H_kv, S, D] -> [1, H_q, D]. Grouped heads share K/V without copies."""
        qg = q.reshape(1, self.n_kv_heads, self.n_heads // self.n_kv_heads, self.head_dim)
        scores = torch.matmul(qg, k.transpose(-1, -2)).float() * self.scale  # [1, H_kv, G, S]
        probs = scores.masked_fill(~valid, float("-inf")).softmax(dim=-1).to(v.dtype)
        return torch.matmul(probs, v).reshape(1, self.n_heads, self.head_dim)


def _mrope_section(lm: Any) -> list[int]:
    section = getattr(lm.rotary_emb, "mrope_section", None)
    if section is None:
        params = getattr(lm.config, "rope_parameters", None) or getattr(lm.config, "rope_scaling", None) or {}
        section = params.get("mrope_section")
    if section is None:
        raise ValueError("the model's config has no mrope_section")
    return [int(s) for s in section]


def _flash_fn() -> Any:
    try:
        from flash_attn import flash_attn_func  # optional; SDPA is the default kernel
    except ImportError:
        return None
    return flash_attn_func
