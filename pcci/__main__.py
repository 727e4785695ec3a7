import sys

# A service (python3 -m pcci worker --config PATH) starts without the CLI's parser.
from .cli.quick_exit import exit_now
from .cli.services import main

# A command leaves without the interpreter's teardown; a service's logging has an atexit
# handler, so a service leaves as sys.exit does (pcci.cli.quick_exit).
exit_now(main(sys.argv[1:]))
