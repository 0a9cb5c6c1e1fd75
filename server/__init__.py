"""A local OpenAI-compatible API over the gpt-oss engine (imports the engine, never Qt).

    python -m server --model FOLDER [--port 8000] [--host 127.0.0.1] [--api-key KEY]
                     [--allow-origin ORIGIN ...] [--max-body BYTES] [--log-requests]

Chat Completions, Responses, Models and a health check. Every request passes server.gate (Host,
Origin, key, content type, size) and every body server.schemas (typed, strict, in /openapi.json). Harmony is underneath: the chain of thought
comes back apart from the answer (`reasoning` / `reasoning_content`, reasoning items), never in
`content`. One model, one engine thread: requests wait their turn in arrival order. A host may
have each answered request recorded (server.request_log: create_app(on_request=...)).
"""
