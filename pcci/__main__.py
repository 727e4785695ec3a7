import sys

# A service (python3 -m pcci worker --config PATH) starts without the CLI's parser.
from .cli.services import main

sys.exit(main(sys.argv[1:]))
