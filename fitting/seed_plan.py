"""``python -m fitting.seed_plan``: the seed-plan profiles CLI (the code is :mod:`fitting.data.seed_plan`)."""

import sys

from fitting.data.seed_plan import main

if __name__ == "__main__":
    sys.exit(main())
