"""`python -m lesson_code ...`: see lesson_code/cli.py."""

import sys

from lesson_code.cli import main

sys.exit(main())
