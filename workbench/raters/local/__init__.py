"""The local model: an open-weight model in this process, exact next-token distributions.

    files.py    its files: the packaged GGUF, a model folder or an adapter folder (the one place that
                decides "is this an adapter"), weights fingerprints, conversion and the cache
    model.py    LocalModel: one base model in torch and its read-outs
    adapter.py  a LoRA adapter merged onto its base; load_model, the one door by any model name
    backend.py  the local backend's options, identity and run

The backend is registered in ``raters/backends/local.py``.
"""
