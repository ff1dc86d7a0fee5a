"""``python -m benchmarks``: run the whole harness (see ``benchmarks/README.md``)."""

import sys

from benchmarks.run import main

if __name__ == "__main__":
    sys.exit(main())
