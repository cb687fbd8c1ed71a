"""GenAI spans for the ``openai`` client: :class:`OpenAIInstrumentor` (the ``llm_otel_openai`` entry point).

``instrumentor.py`` patches the client and holds the per-call wrappers; ``request.py`` and ``response.py``
read a call's request and response; ``raw_responses.py`` proxies ``with_raw_response`` /
``with_streaming_response`` results.
"""

from .instrumentor import OpenAIInstrumentor

__all__ = ["OpenAIInstrumentor"]
