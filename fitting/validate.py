"""``python -m fitting.validate``: the validation CLI (the code is :mod:`fitting.report.validate`)."""

import sys

from fitting.report.validate import main

if __name__ == "__main__":
    sys.exit(main())
