"""llm-otel's version, alone in a leaf module.

``llm_otel/__init__.py`` re-exports it; code inside the package (the tracer's instrumentation scope)
imports it from here, never from the ``llm_otel`` package itself, so no module depends back on the
package's ``__init__`` while that may still be running.
"""

__version__ = "0.1.0"
