"""Text tokenizers: Qwen's own by model id, or an offline byte-level BPE with Qwen's special ids.

No tokenizer files exist offline, so tests and offline runs use a small byte-level BPE trained
in code on a fixed corpus (deterministic, milliseconds), with Qwen2.5-VL's special tokens mapped
to the config's ids. It is a real tokenizer (the `tokenizers` library's BPE), not Qwen's: text
quality from it means nothing, token ids round-trip. Ids the offline vocabulary lacks (a random
model emits them) decode as `<id>` so that streamed text stays visible.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

from .errors import ModelLoadError

QWEN_SPECIAL_IDS: dict[str, int] = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}

_CORPUS = (
    "What happened in the video? Describe the scene. When did the person enter the room? "
    "A red box moves to the left while a blue box moves to the right. The door opens at 00:12. "
    "Which event shows a car? Answer with the option's letter from the given choices directly. "
    "The answer is A. The answer is B. The answer is C. The answer is D. Yes. No. "
    "You are a helpful assistant. camera lecture slide street parking lot person walks runs stops "
    "minutes seconds hours before after during between first last then finally because "
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 30 40 50 59 60 : - , . ? ! ( ) [ ] "
)


class TextTokenizer(Protocol):
    """What the runner needs of a tokenizer: plain text in, ids out, and back."""

    eos_ids: frozenset[int]

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class OfflineTokenizer:
    """Byte-level BPE built in code; Qwen's special tokens keep Qwen's ids."""

    def __init__(self, vocab_size: int = 2048) -> None:
        self._tok = _build_offline(vocab_size)
        self.vocab_size = self._tok.get_vocab_size()
        self._special_by_id = {i: s for s, i in QWEN_SPECIAL_IDS.items()}
        self._known = set(self._tok.get_vocab().values())
        self.eos_ids = frozenset({QWEN_SPECIAL_IDS["<|im_end|>"], QWEN_SPECIAL_IDS["<|endoftext|>"]})

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text).ids)

    def decode(self, ids: Sequence[int]) -> str:
        out: list[str] = []
        run: list[int] = []
        for i in ids:
            if i in self._known and i not in self._special_by_id:
                run.append(int(i))
                continue
            if run:
                out.append(self._tok.decode(run))
                run = []
            if i not in self._special_by_id:
                out.append(f"<{int(i)}>")
        if run:
            out.append(self._tok.decode(run))
        return "".join(out)


@functools.lru_cache(maxsize=4)
def _build_offline(vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    trainer_tok.train_from_iterator([_CORPUS] * 4, trainer)
    vocab = dict(trainer_tok.get_vocab())
    vocab.update(QWEN_SPECIAL_IDS)
    merges = _merges_of(trainer_tok)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(QWEN_SPECIAL_IDS))
    return tok


def _merges_of(tok: Any) -> list[tuple[str, str]]:
    import json

    raw = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in raw]  # type: ignore[misc]


class HFTokenizer:
    """Qwen's own tokenizer, loaded by model id (real deployments)."""

    def __init__(self, model_id: str) -> None:
        try:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(model_id)
        except Exception as exc:  # hub or file errors come in many types
            raise ModelLoadError(f"cannot load the tokenizer of {model_id!r}: {exc}") from exc
        ids = {self._tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        self.eos_ids = frozenset(i for i in ids if isinstance(i, int) and i >= 0)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=True))


class StreamDecoder:
    """Turns generated ids into text pieces without re-decoding the whole answer each step.

    A piece is emitted only once its bytes form whole characters (byte-level BPE can split one
    character across tokens), so a piece never ends in U+FFFD.
    """

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self._tok = tokenizer
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        before = self._tok.decode(self.ids[self._prefix : self._read])
        after = self._tok.decode(self.ids[self._prefix :])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""
        self._prefix, self._read = self._read, len(self.ids)
        return after[len(before) :]

    @property
    def text(self) -> str:
        return self._tok.decode(self.ids)
