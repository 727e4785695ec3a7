"""pcci as the release before blob frames (protocol.BLOB_FRAMES): its hello and welcome
do not name them, so a newer peer must send it results as JSON only. Run as
``python -m old_release master|worker --config PATH``; tests/test_blob_frames.py starts it."""

import sys

from pcci import protocol

protocol.FEATURES = tuple(name for name in protocol.FEATURES if name != protocol.BLOB_FRAMES)

from pcci.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
