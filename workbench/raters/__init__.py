"""Rater backends and what they share: the backend registry, rater configuration and identity, read-outs.

backend.py       RaterBackend, RaterOptions, @register_backend, the registry
backends/        the built-in backends, one module each (wordfreq.py is the smallest)
config.py        a rater resolved against the store, its identity hash, its row
llm.py           language-model options and prompt resolution (few-shot examples)
trained.py       baseline options and training data
server.py        backends behind an OpenAI-compatible server: options, price, estimate
http.py          one request per item, many in flight, retries (chat and text completions)
openai_chat.py   the chat completions request and read-out (openai, openai-batch)
local_files.py   the local model's files: packaged GGUF, fingerprint, conversion, cache
local_model.py   the local model's inference: exact next-token distributions
readout.py, prompts.py, pricing.py, baselines.py

raters/ imports nothing from jobs/ or study/: the job runner (jobs/) and the
study (study/) sit above it.
"""
