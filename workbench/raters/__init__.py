"""Rater backends and what they share: the backend registry, rater configuration and identity, read-outs.

backend.py       RaterBackend, RaterOptions, @register_backend, the registry
backends/        the built-in backends, one module each: a registration (the engines are in openai/, local/)
config.py        a rater resolved against the store, its identity hash, its row
llm.py           language-model options and prompt resolution (few-shot examples)
trained.py       baseline options and training data
openai/          the OpenAI-style transport: the one door for responses (wire.py), pacing, the aiohttp
                 hot path (http.py), the official client (client.py), the model list, the server
                 backends' options, the chat and completions bodies, the Batch lifecycle
local/           the local model: its files (and adapter folders), the model, LoRA adapters, the backend
readout.py, prompts.py, pricing.py, baselines.py

raters/ imports nothing from jobs/ or study/: the job runner (jobs/) and the
study (study/) sit above it.
"""
