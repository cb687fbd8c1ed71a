"""``python -m llm_otel.testing [--port 8000]``: run the fake LLM server in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from .server import DEFAULT_REPLY, FakeLLMServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_otel.testing", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="text every model answers with")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server = FakeLLMServer(port=args.port).start()
    server.configure(reply=args.reply)
    print(server.base_url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
