"""``python -m jaqc`` runs the CLI (also under torchrun)."""

import sys

from jaqc.cli import main

sys.exit(main())
