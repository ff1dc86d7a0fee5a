"""The bank account example: ``import examples.bank`` from the repository root.

The code lives in the installed package, ``src/eventkeep/examples/bank/``, so that
``eventkeep demo`` runs it after ``pip install eventkeep`` too; this package re-exports it.
Read and copy it from there (see README.md here).
"""

from eventkeep.examples.bank import *  # noqa: F403 - a pointer to the shipped example
from eventkeep.examples.bank import __all__ as __all__
