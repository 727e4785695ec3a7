"""pcci as the release before raw chunks (protocol.RAW_CHUNKS): its hello and welcome do
not name them, so a newer peer must send it copy and fetch chunks as base64 in JSON. Run
as ``python -m before_raw_chunks master|worker --config PATH``; tests/test_raw_chunks.py
starts it."""

import sys

from pcci import protocol

protocol.FEATURES = tuple(name for name in protocol.FEATURES if name != protocol.RAW_CHUNKS)

from pcci.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
