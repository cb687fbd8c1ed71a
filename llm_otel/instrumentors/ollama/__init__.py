"""GenAI spans for the ``ollama`` client: :class:`OllamaInstrumentor` (the ``llm_otel_ollama`` entry point).

``instrumentor.py`` patches ``Client._request`` / ``AsyncClient._request`` and holds the per-call wrappers;
``request.py`` and ``response.py`` read a call's request body and response.
"""

from .instrumentor import OllamaInstrumentor

__all__ = ["OllamaInstrumentor"]
