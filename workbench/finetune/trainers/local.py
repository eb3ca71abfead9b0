"""The local trainer: LoRA on the local model (finetune/lora.py), checkpointed in the fine-tune's folder.

The job's ``external_id`` is the adapter folder (``.workbench/finetunes/NAME``);
the tuned rater is a ``local`` rater whose model is that folder. Training
resumes from the folder's last checkpoint; ``--restart`` drops the folder.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from workbench.finetune.job import FinetuneReport, FinetuneRun, OnEvent, Prepared, finetune_dir, job_status, update_job
from workbench.finetune.lora import LoraSettings
from workbench.finetune.spec import FinetuneSpec
from workbench.finetune.trainer import Trainer, register_trainer
from workbench.raters.backend import ResolvedRater
from workbench.raters.local.files import DEFAULT_MODEL

LOCAL_PROMPT = "Word: {item}\nRating: "


def local_settings(spec: FinetuneSpec, resolved: ResolvedRater) -> LoraSettings:
    assert resolved.prompt is not None
    text = resolved.prompt.text
    # the local backend reads the number after "Rating: ": train on exactly the prompt it will rate with
    prompt = text if text[-1:].isspace() else text + " "
    t = spec.local
    return LoraSettings(objective=t.objective, prompt=prompt, r=t.r, alpha=t.alpha, dropout=t.dropout,
                        learning_rate=t.learning_rate, epochs=t.epochs, batch_size=t.batch_size, label_sd=t.label_sd,
                        seed=t.seed, base_model=resolved.spec.model or DEFAULT_MODEL)  # fmt: skip


@register_trainer("local")
class LocalTrainer(Trainer):
    """LoRA on the local model; the tuned rater reads the expected value after the prompt."""

    rater_backend = "local"
    default_model = DEFAULT_MODEL

    def rater_fields(self, spec: FinetuneSpec, fields: dict[str, Any]) -> None:
        fields["prompt"] = spec.prompt or (fields.get("prompt") or LOCAL_PROMPT)
        fields["readout"] = "expected"

    def settings(self, spec: FinetuneSpec, rater: ResolvedRater) -> dict[str, Any]:
        return local_settings(spec, rater).key()

    def check_ready(self) -> None:
        from workbench.extras import check

        check("torch", "transformers", "peft", "safetensors", needed_for="A local fine-tune")

    def forget(self, run: FinetuneRun) -> None:
        import shutil

        shutil.rmtree(finetune_dir(run), ignore_errors=True)

    def train(self, engine: Engine, run: FinetuneRun, prep: Prepared, job_id: int, say: OnEvent) -> None:
        import threading
        import time

        from workbench.finetune.lora import train_lora, training_status
        from workbench.raters.local.files import adapter_fingerprint

        folder = finetune_dir(run)
        update_job(engine, job_id, external_id=str(folder))
        settings = local_settings(prep.spec, prep.rater)
        state = training_status(folder)
        if state["state"] == "stopped" and state.get("checkpoint_step"):
            say(f"{prep.name}: resuming training from the checkpoint at step {state['checkpoint_step']}.")
        last = [0.0]
        stop = threading.Event()

        def on_step(e: dict[str, Any]) -> None:
            now = time.monotonic()
            if now - last[0] > 10 or e["step"] == e["total"]:
                last[0] = now
                say(f"{prep.name}: step {e['step']}/{e['total']}, loss {e['loss']:.4f}, {e['seconds']:.0f} s")
                if job_status(engine, job_id) == "cancelled":  # `workbench finetune cancel` from another shell
                    stop.set()

        result = train_lora(prep.train, prep.points, folder, settings, checkpoint_every=prep.spec.local.checkpoint_every,
                            device=prep.spec.local.device, on_step=on_step, stop=stop)  # fmt: skip
        if stop.is_set():
            say(f"{prep.name}: cancelled at step {result.steps} (checkpoint kept; --restart trains from scratch).")
            return
        update_job(engine, job_id, status="succeeded",
                   config={"result_model": str(folder), "adapter": adapter_fingerprint(folder), "steps": result.steps,
                           "seconds": round(result.seconds, 1), "peak_memory_mb": result.peak_memory_mb,
                           "final_loss": result.final_loss, "device": result.device})  # fmt: skip
        say(f"{prep.name}: trained ({result.steps} steps, final loss {result.final_loss}); adapter in {folder}.")

    def status_details(self, report: FinetuneReport) -> dict[str, Any]:
        if not report.external_id:
            return {}
        from workbench.finetune.lora import training_status

        return {"training": training_status(report.external_id)}
