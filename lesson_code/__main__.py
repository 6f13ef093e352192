"""`python -m lesson_code ...`: see lesson_code/cli.py."""

import sys

from lesson_code.cli_errors import missing_package_line

try:
    from lesson_code.cli import main
except ModuleNotFoundError as exc:  # a package the command line imports at start-up is missing
    line = missing_package_line(exc)
    if line is None:
        raise
    print(line, file=sys.stderr)
    sys.exit(1)

sys.exit(main())
