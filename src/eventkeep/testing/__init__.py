"""Testing support shipped with eventkeep: the backend contract suite.

``StoreContract`` is a pytest test base class holding the specification every ``EventStore``
backend must pass, third-party ones included. Needs the ``testing`` extra
(``pip install 'eventkeep[testing]'``) for pytest and hypothesis.
"""

from eventkeep.testing.base import StoreFactory
from eventkeep.testing.contract import StoreContract
from eventkeep.testing.tamper import tamper_event, tamper_sqlite

__all__ = ["StoreContract", "StoreFactory", "tamper_event", "tamper_sqlite"]
