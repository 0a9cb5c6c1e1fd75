"""What the final answer must be: JSON that a schema accepts (None anywhere: free text).

    session.reply(messages, answer_format=AnswerFormat(schema, name="answer"))
    session.reply(messages, answer_format=ANY_JSON_OBJECT)

engine.structured holds the answer to `schema` with constrained decoding; a shown format is also
described to the model under `# Response Formats` in the developer message (engine.harmony), as
the harmony guide writes it. OpenAI's `response_format` is the server's to read
(server/openai_format.answer_format_from_openai); the app builds one from its answer-schema setting.
No MLX here: the app's settings may import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnswerFormat:
    """The final answer is JSON that `schema` accepts."""

    schema: dict                     # a JSON Schema object
    name: str = "response"           # its heading under `# Response Formats`
    description: str | None = None   # a `// comment` above the schema there
    shown: bool = True               # described to the model (False: only enforced)

    def __post_init__(self):
        if not isinstance(self.schema, dict):
            raise ValueError("An answer format's schema must be a JSON Schema object.")


# Any JSON object, not described to the model (OpenAI's json_object: the model sees no section).
ANY_JSON_OBJECT = AnswerFormat({"type": "object"}, shown=False)
