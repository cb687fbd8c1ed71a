"""Exceptions raised by llm-otel at configuration time (never at call time)."""


class ConfigError(ValueError):
    """A setting has a bad value. The message names the setting and the value."""

    def __init__(self, setting: str, value: object, reason: str) -> None:
        super().__init__(f"llm-otel: invalid {setting}={value!r}: {reason}")
        self.setting = setting
        self.value = value
