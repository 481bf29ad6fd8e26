"""``python -m fitting.public_logs``: the public-log converter CLI (the code is :mod:`fitting.data.public_logs`)."""

import sys

from fitting.data.public_logs import main

if __name__ == "__main__":
    sys.exit(main())
