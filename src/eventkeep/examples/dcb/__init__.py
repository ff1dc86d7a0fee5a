"""Dynamic Consistency Boundaries (https://dcb.events): the specification's canonical cases.

- :mod:`.usernames`: a username is unique (claim, release, claim again).
- :mod:`.courses`: a course has a capacity, and a student takes at most ``MAX_COURSES``
  courses: two rules that span two kinds of entity, with no aggregate holding both.
- :mod:`.invoices`: invoice numbers have no gaps.

Each is a few events with tags, small :class:`eventkeep.DecisionProjection` rules, and
:func:`eventkeep.execute_decision`. See ``docs/dcb.md``.
"""

from eventkeep.examples.dcb.courses import (
    MAX_COURSES,
    CourseCapacityChanged,
    CourseDefined,
    CourseError,
    StudentSubscribed,
    change_capacity,
    define_course,
    subscribe,
)
from eventkeep.examples.dcb.invoices import InvoiceCreated, create_invoice
from eventkeep.examples.dcb.usernames import (
    UsernameClaimed,
    UsernameError,
    UsernameReleased,
    claim_username,
    release_username,
)

__all__ = [
    "MAX_COURSES",
    "CourseCapacityChanged",
    "CourseDefined",
    "CourseError",
    "InvoiceCreated",
    "StudentSubscribed",
    "UsernameClaimed",
    "UsernameError",
    "UsernameReleased",
    "change_capacity",
    "claim_username",
    "create_invoice",
    "define_course",
    "release_username",
    "subscribe",
]
