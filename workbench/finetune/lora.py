"""LoRA fine-tuning of the local model (Gemma 3 270M by default) with peft.

Training data is a list of :class:`Example` (word, gold mean, optional gold
SD). Each example becomes a short prompt (``'Word: dog\\nRating: '`` by default,
filled from :attr:`LoraSettings.prompt`) and one of two objectives:

``text`` (the paper's)
    causal-LM loss on the gold value written with two decimals ("5.41") and a
    newline after the prompt; only the answer's tokens count.
``soft`` (soft labels)
    cross-entropy, at the prompt's last position only, between the model's
    probability of each scale point's token (over the whole vocabulary, so the
    mass off the scale is pushed onto it) and a target distribution: a normal
    density with the gold mean and SD (``label_sd`` where the gold has none)
    evaluated at the scale points and normalised. This trains the expected
    read-out directly and needs the output layer at one position per word.

Training runs on the CPU, or on a GPU when torch sees one (``device``). The
adapter, its settings (``finetune.json``) and the training log (``log.jsonl``,
one line per step) go to the output folder. Every ``checkpoint_every`` steps
the adapter and the optimizer's state are saved to ``checkpoint/`` (written
beside and renamed, so a kill never leaves half a checkpoint); the next start
with the same settings and data **resumes from the last checkpoint** (the
example order of each epoch is a function of the seed, so the resumed run sees
the batches the interrupted one would have). Other settings or data in the
folder are refused unless ``restart=True``, which starts over cleanly.

The tuned model is loaded for rating with :func:`load_tuned`: the base model
with the adapter merged in, a :class:`~workbench.raters.local.model.LocalModel`
whose fingerprint combines the base weights' and the adapter's
(:func:`adapter_fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.errors import WorkbenchError
from workbench.raters.local.adapter import base_folder, fresh_model, load_tokenizer, load_tuned
from workbench.raters.local.files import ADAPTER_FILE, DEFAULT_MODEL, SETTINGS_FILE, adapter_fingerprint

__all__ = ["Example", "LoraSettings", "TrainResult", "adapter_fingerprint", "load_tuned", "train_lora"]

LOG_FILE = "log.jsonl"
DONE_FILE = "done.json"
CHECKPOINT = "checkpoint"
DEFAULT_PROMPT = "Word: {item}\nRating: "
MIN_EXAMPLES = 8

OnStep = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Example:
    item: str
    mean: float
    sd: float | None = None


@dataclass(frozen=True)
class LoraSettings:
    """What decides the adapter (all of it goes into the fingerprint of the training run)."""

    objective: Literal["soft", "text"] = "soft"
    prompt: str = DEFAULT_PROMPT
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 1e-3
    epochs: float = 1.0
    batch_size: int = 16
    weight_decay: float = 0.0
    warmup_steps: int = 10
    label_sd: float = 1.0
    seed: int = 0
    base_model: str = DEFAULT_MODEL
    layers: int | None = None  # LoRA on the top N layers only: the frozen layers below need no backward pass
    autocast: str | None = None  # "bfloat16": matmuls in bfloat16 (CPUs with AVX512-BF16, GPUs); None: float32

    def key(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


@dataclass
class TrainResult:
    folder: Path
    steps: int
    resumed_from: int  # 0: a fresh start
    seconds: float
    peak_memory_mb: float | None
    final_loss: float | None
    device: str
    log: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- targets


def scale_targets(mean: float, sd: float, points: Sequence[float]) -> list[float]:
    """A normal density with this mean and SD at the scale points, normalised to sum to 1."""
    sd = max(float(sd), 1e-3)
    dens = [math.exp(-0.5 * ((p - mean) / sd) ** 2) for p in points]
    total = sum(dens)
    if total <= 0:  # far outside the scale: all on the nearest point
        dens = [1.0 if p == min(points, key=lambda q: abs(q - mean)) else 0.0 for p in points]
        total = 1.0
    return [d / total for d in dens]


def answer_text(value: float) -> str:
    """The paper's answer: the value with two decimals."""
    return f"{value:.2f}"


def check_examples(examples: Sequence[Example], points: Sequence[float], *, where: str = "training set") -> None:
    """Refuse an empty or tiny set, and gold values outside the scale."""
    if len(examples) < MIN_EXAMPLES:
        raise WorkbenchError(f"the {where} has {len(examples)} items with a gold value; fine-tuning needs at least {MIN_EXAMPLES}.")
    lo, hi = min(points), max(points)
    bad = [e for e in examples if not (lo <= e.mean <= hi) or not math.isfinite(e.mean)]
    if bad:
        shown = ", ".join(f"{e.item!r} = {e.mean:g}" for e in bad[:5])
        raise WorkbenchError(
            f"the {where} has {len(bad)} gold values outside the scale {lo:g}-{hi:g} ({shown}): "
            "check the gold dataset's scale (rescale it on import)."
        )


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def data_fingerprint(examples: Sequence[Example]) -> str:
    rows = sorted((e.item, round(e.mean, 6), None if e.sd is None else round(e.sd, 6)) for e in examples)
    return "sha256:" + hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- model


class _Batcher:
    """Tokenised examples and the tensors of a batch."""

    def __init__(self, tokenizer: Any, settings: LoraSettings, points: Sequence[float]):
        self.tok, self.settings, self.points = tokenizer, settings, list(points)
        with_special = tokenizer("a")["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        self.bos = list(with_special[: len(with_special) - len(plain)])
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if settings.objective == "soft":
            self.point_ids = [self._point_tokens(p) for p in self.points]

    def _point_tokens(self, point: float) -> list[int]:
        label = f"{point:g}"
        ids = self.tok(label, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise WorkbenchError(f"the soft objective needs one token per scale point; {label!r} has {len(ids)}: use objective text.")
        out = [ids[0]]
        if len(label) == 1:  # SentencePiece byte fallback token of the digit
            byte = self.tok.convert_tokens_to_ids(f"<0x{ord(label):02X}>")
            if isinstance(byte, int) and byte != self.tok.unk_token_id and byte not in out:
                out.append(byte)
        return out

    def prompt_ids(self, item: str) -> list[int]:
        return self.bos + self.tok(self.settings.prompt.replace("{item}", item), add_special_tokens=False)["input_ids"]

    def text_ids(self, item: str, value: float) -> tuple[list[int], int]:
        """(tokens of prompt + answer + newline, number of prompt tokens)."""
        prompt = self.prompt_ids(item)
        whole = self.bos + self.tok(self.settings.prompt.replace("{item}", item) + answer_text(value) + "\n",
                                    add_special_tokens=False)["input_ids"]  # fmt: skip
        n = len(prompt) if whole[: len(prompt)] == prompt else len(prompt) - 1
        return whole, n

    def batch(self, examples: Sequence[Example], device: str) -> dict[str, Any]:
        import torch

        if self.settings.objective == "soft":
            rows = [self.prompt_ids(e.item) for e in examples]
            starts = [len(r) for r in rows]
        else:
            pairs = [self.text_ids(e.item, e.mean) for e in examples]
            rows, starts = [p[0] for p in pairs], [p[1] for p in pairs]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            mask[b, : len(r)] = 1
        out: dict[str, Any] = {"ids": ids.to(device), "mask": mask.to(device), "lengths": [len(r) for r in rows], "starts": starts}
        if self.settings.objective == "soft":
            sd = self.settings.label_sd
            out["targets"] = torch.tensor([scale_targets(e.mean, e.sd or sd, self.points) for e in examples]).to(device)
        return out


def _logits(model: Any, hidden: Any) -> Any:
    import torch

    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def _loss(model: Any, batcher: _Batcher, batch: dict[str, Any]) -> Any:
    """The objective's loss on one batch (mean over examples)."""
    import torch

    inner = getattr(model, model.base_model_prefix)
    hidden = inner(input_ids=batch["ids"], attention_mask=batch["mask"]).last_hidden_state
    n = hidden.shape[0]
    if batcher.settings.objective == "soft":
        last = torch.tensor([length - 1 for length in batch["lengths"]], device=hidden.device)
        logp = torch.log_softmax(_logits(model, hidden[torch.arange(n, device=hidden.device), last]), dim=-1)
        per_point = torch.stack([torch.logsumexp(logp[:, ids], dim=-1) for ids in batcher.point_ids], dim=-1)
        return -(batch["targets"] * per_point).sum(dim=-1).mean()
    # text: positions whose next token is an answer token
    rows, cols, targets = [], [], []
    for b in range(n):
        for pos in range(batch["starts"][b] - 1, batch["lengths"][b] - 1):
            rows.append(b)
            cols.append(pos)
            targets.append(batch["ids"][b, pos + 1])
    dev = hidden.device
    logits = _logits(model, hidden[torch.tensor(rows, device=dev), torch.tensor(cols, device=dev)])
    return torch.nn.functional.cross_entropy(logits, torch.stack(targets))


# --------------------------------------------------------------------------- training


def _order(n: int, seed: int, epoch: int) -> list[int]:
    import numpy as np

    return [int(i) for i in np.random.default_rng([seed, epoch]).permutation(n)]


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    return max(0.0, (total - step) / max(total - warmup, 1))


def _run_key(settings: LoraSettings, examples: Sequence[Example], points: Sequence[float], base_fp: str) -> dict[str, Any]:
    return {"settings": settings.key(), "data": data_fingerprint(examples), "n": len(examples),
            "points": [float(p) for p in points], "base_weights": base_fp}  # fmt: skip


def train_lora(
    examples: Sequence[Example],
    points: Sequence[float],
    folder: str | os.PathLike[str],
    settings: LoraSettings = LoraSettings(),
    *,
    checkpoint_every: int = 20,
    max_steps: int | None = None,
    device: str | None = None,
    restart: bool = False,
    on_step: OnStep | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train a LoRA adapter on the examples; save it, its settings and the log in folder.

    Resumes from folder/checkpoint when it holds a run with the same settings
    and data; returns at once when that run has finished. max_steps stops early
    (the schedule still spans the whole run). stop: set it to stop at the next
    step after saving a checkpoint.
    """
    from workbench.extras import check

    check("torch", "transformers", "peft", "safetensors", needed_for="A local fine-tune")
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    check_examples(examples, points)
    folder = Path(folder)
    base_dir, base_fp = base_folder(settings.base_model)
    key = _run_key(settings, examples, points, base_fp)
    settings_path, log_path, ckpt = folder / SETTINGS_FILE, folder / LOG_FILE, folder / CHECKPOINT
    if settings_path.is_file():
        previous = json.loads(settings_path.read_text())
        if previous.get("key") != key:
            if not restart:
                raise WorkbenchError(
                    f"{folder} holds a fine-tune with other settings or data: give the fine-tune another name, or start over (restart)."
                )
            shutil.rmtree(folder)
        elif (folder / DONE_FILE).is_file() and not restart:
            done = json.loads((folder / DONE_FILE).read_text())
            return TrainResult(folder, done["steps"], done["steps"], 0.0, done.get("peak_memory_mb"),
                               done.get("final_loss"), done.get("device", "cpu"), _read_log(log_path))  # fmt: skip
        elif restart:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dev = _device(device)
    torch.manual_seed(settings.seed)
    tokenizer = load_tokenizer(base_dir)
    batcher = _Batcher(tokenizer, settings, points)  # checks the scale's tokens before the model loads
    model, tokenizer = fresh_model(base_dir, dev, tokenizer)
    n_layers = int(model.config.num_hidden_layers)
    top = None if settings.layers is None else list(range(max(0, n_layers - settings.layers), n_layers))
    cfg = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                     target_modules=list(settings.target_modules), layers_to_transform=top, task_type="CAUSAL_LM")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' rename of is_gradient_checkpointing, read by peft
        peft_model = get_peft_model(model, cfg)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    per_epoch = math.ceil(len(examples) / settings.batch_size)
    total = max(1, round(per_epoch * settings.epochs))
    start_step = 0
    if (ckpt / "state.pt").is_file() and (ckpt / ADAPTER_FILE).is_file():
        set_peft_model_state_dict(peft_model, load_file(str(ckpt / ADAPTER_FILE), device=dev))
        state = torch.load(ckpt / "state.pt", map_location=dev, weights_only=False)
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start_step = int(state["step"])
        _truncate_log(log_path, start_step)
    else:
        log_path.unlink(missing_ok=True)
    _atomic_write(settings_path, json.dumps({"key": key, "total_steps": total, "device": dev,
                                             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2))  # fmt: skip
    peft_model.train()
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    end = total if max_steps is None else min(total, start_step + max_steps)
    loss_value: float | None = None
    step = start_step
    with log_path.open("a", encoding="utf-8") as log:
        for step in range(start_step, end):
            epoch, offset = divmod(step, per_epoch)
            order = _order(len(examples), settings.seed, epoch)
            chosen = [examples[i] for i in order[offset * settings.batch_size : (offset + 1) * settings.batch_size]]
            lr = settings.learning_rate * _schedule(step, total, settings.warmup_steps)
            for group in opt.param_groups:
                group["lr"] = lr
            with _autocast(settings.autocast, dev):
                loss = _loss(model, batcher, batcher.batch(chosen, dev))  # the LoRA layers sit inside model
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            loss_value = float(loss.detach())
            entry = {"step": step + 1, "epoch": round((step + 1) / per_epoch, 3), "loss": round(loss_value, 5),
                     "lr": lr, "seconds": round(time.perf_counter() - began, 2)}  # fmt: skip
            log.write(json.dumps(entry) + "\n")
            log.flush()
            if on_step:
                on_step({**entry, "total": total})
            finished = step + 1 == end
            if (step + 1) % checkpoint_every == 0 or finished or (stop is not None and stop.is_set()):
                _save_checkpoint(peft_model, opt, ckpt, step + 1)
            if stop is not None and stop.is_set():
                step += 1
                break
        else:
            step = end
    seconds = time.perf_counter() - began
    peak = _peak_memory_mb(dev)
    if step >= total:
        peft_model.save_pretrained(str(folder / ".adapter-tmp"))
        for name in os.listdir(folder / ".adapter-tmp"):
            os.replace(folder / ".adapter-tmp" / name, folder / name)
        shutil.rmtree(folder / ".adapter-tmp", ignore_errors=True)
        _atomic_write(folder / DONE_FILE, json.dumps({"steps": total, "seconds": round(seconds, 1), "peak_memory_mb": peak,
                                                      "final_loss": loss_value, "device": dev,
                                                      "adapter": adapter_fingerprint(folder)}, indent=2))  # fmt: skip
    return TrainResult(folder, step, start_step, seconds, peak, loss_value, dev, _read_log(log_path))


def _autocast(dtype: str | None, device: str):
    import contextlib

    import torch

    if not dtype:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype={"bfloat16": torch.bfloat16, "float16": torch.float16}[dtype])


def _save_checkpoint(peft_model: Any, opt: Any, ckpt: Path, step: int) -> None:
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    tmp = ckpt.with_name(f".{ckpt.name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    state = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(peft_model).items()}
    save_file(state, str(tmp / ADAPTER_FILE))
    torch.save({"optimizer": opt.state_dict(), "step": step, "rng": torch.get_rng_state()}, tmp / "state.pt")
    old = ckpt.with_name(f".{ckpt.name}-old-{uuid.uuid4().hex[:8]}")
    if ckpt.exists():
        os.replace(ckpt, old)
    os.replace(tmp, ckpt)
    shutil.rmtree(old, ignore_errors=True)


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill
            break
    return out


def _truncate_log(path: Path, steps: int) -> None:
    """Keep the log's lines up to the checkpoint's step (the steps after it are run again)."""
    kept = [e for e in _read_log(path) if e.get("step", 0) <= steps]
    _atomic_write(path, "".join(json.dumps(e) + "\n" for e in kept))


def _peak_memory_mb(device: str) -> float | None:
    import torch

    if device.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB
    except ImportError:
        return None


def training_status(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """What a fine-tune folder holds: not started, running or interrupted (with its last step), or done."""
    folder = Path(folder)
    if not (folder / SETTINGS_FILE).is_file():
        return {"state": "not started", "step": 0}
    info = json.loads((folder / SETTINGS_FILE).read_text())
    log = _read_log(folder / LOG_FILE)
    out: dict[str, Any] = {"total_steps": info.get("total_steps"), "step": log[-1]["step"] if log else 0,
                           "loss": log[-1]["loss"] if log else None, "device": info.get("device")}  # fmt: skip
    if (folder / DONE_FILE).is_file():
        out.update(json.loads((folder / DONE_FILE).read_text()), state="done")
    else:
        out["state"] = "stopped"
        ckpt = folder / CHECKPOINT / "state.pt"
        out["checkpoint_step"] = None
        if ckpt.is_file():
            import torch

            out["checkpoint_step"] = int(torch.load(ckpt, map_location="cpu", weights_only=False)["step"])
    return out
