"""Rating through an OpenAI-style server: the transport every backend that talks to one shares.

    wire.py         the one door every response enters by (read capped, decoded, parsed, redacted), the key
    pacing.py       rpm/tpm and the server's x-ratelimit-* headers
    http.py         the aiohttp hot path: many chat or completions requests in flight, retries
    client.py       the official client (files, Batch, fine-tuning), its responses through wire.py
    model_check.py  the server's model list, checked before anything is sent
    server.py       ServerBackend: options, price, estimate and run of a backend behind such a server
    chat.py         the chat completions body and read-out (openai, openai-batch)
    completions.py  the text completions body and read-out (openai-completions)
    batch.py        the Batch API's lifecycle (openai-batch)

The backends themselves are registered in ``raters/backends/``.
"""
