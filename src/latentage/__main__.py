"""`python -m latentage` (and `torchrun -m latentage …`) is the `latentage` command."""

import sys

from latentage.cli import main

sys.exit(main())
