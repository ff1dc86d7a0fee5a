"""Course subscriptions: a course takes at most its capacity of students, and a student takes
at most ``MAX_COURSES`` courses. The two rules span courses and students; no aggregate holds
both. A subscription carries both tags (``course:<id>``, ``student:<id>``), and the decision
combines four small projections: does the course exist, its capacity, how many it has, how many
courses the student has (and whether this is one of them)."""

from __future__ import annotations

import eventkeep
from eventkeep import DecisionProjection, DecisionState, Query, QueryItem
from eventkeep.store import Writer

__all__ = [
    "MAX_COURSES",
    "CourseCapacityChanged",
    "CourseDefined",
    "CourseError",
    "StudentSubscribed",
    "change_capacity",
    "course_capacity",
    "define_course",
    "student_courses",
    "subscribe",
    "subscriptions_of_course",
]

MAX_COURSES = 5
"""Most courses one student takes."""


class CourseDefined(eventkeep.Event):
    __event_type__ = "dcb.CourseDefined"
    __tags__ = ("course:{course_id}",)
    course_id: str
    capacity: int


class CourseCapacityChanged(eventkeep.Event):
    __event_type__ = "dcb.CourseCapacityChanged"
    __tags__ = ("course:{course_id}",)
    course_id: str
    capacity: int


class StudentSubscribed(eventkeep.Event):
    __event_type__ = "dcb.StudentSubscribed"
    __tags__ = ("student:{student_id}", "course:{course_id}")
    student_id: str
    course_id: str


class CourseError(Exception):
    """A command the rules refuse."""


def course_capacity(course_id: str) -> DecisionProjection[int | None]:
    """The course's capacity; None while it is not defined."""
    query = Query(
        [QueryItem(types=[CourseDefined, CourseCapacityChanged], tags=[f"course:{course_id}"])]
    )
    return DecisionProjection(query, None, lambda _, event: event.capacity)  # type: ignore[union-attr]


def subscriptions_of_course(course_id: str) -> DecisionProjection[int]:
    query = Query([QueryItem(types=[StudentSubscribed], tags=[f"course:{course_id}"])])
    return DecisionProjection(query, 0, lambda count, _: count + 1)


def student_courses(student_id: str) -> DecisionProjection[frozenset[str]]:
    query = Query([QueryItem(types=[StudentSubscribed], tags=[f"student:{student_id}"])])
    return DecisionProjection(
        query,
        frozenset(),
        lambda courses, event: courses | {event.course_id},  # type: ignore[union-attr]
    )


def define_course(writer: Writer, course_id: str, capacity: int) -> eventkeep.AppendResult:
    def decide(state: DecisionState) -> list[eventkeep.Event]:
        if state.capacity is not None:
            raise CourseError(f"course {course_id!r} exists already")
        return [CourseDefined(course_id=course_id, capacity=capacity)]

    result = eventkeep.execute_decision(writer, decide, capacity=course_capacity(course_id))
    assert result is not None
    return result


def change_capacity(writer: Writer, course_id: str, capacity: int) -> eventkeep.AppendResult | None:
    def decide(state: DecisionState) -> list[eventkeep.Event]:
        if state.capacity is None:
            raise CourseError(f"course {course_id!r} does not exist")
        if state.capacity == capacity:
            return []
        if capacity < state.subscribed:
            raise CourseError(f"course {course_id!r} has {state.subscribed} students already")
        return [CourseCapacityChanged(course_id=course_id, capacity=capacity)]

    return eventkeep.execute_decision(
        writer,
        decide,
        capacity=course_capacity(course_id),
        subscribed=subscriptions_of_course(course_id),
    )


def subscribe(writer: Writer, student_id: str, course_id: str) -> eventkeep.AppendResult:
    def decide(state: DecisionState) -> list[eventkeep.Event]:
        if state.capacity is None:
            raise CourseError(f"course {course_id!r} does not exist")
        if course_id in state.courses:
            raise CourseError(f"student {student_id!r} is subscribed to {course_id!r} already")
        if state.subscribed >= state.capacity:
            raise CourseError(f"course {course_id!r} is full")
        if len(state.courses) >= MAX_COURSES:
            raise CourseError(f"student {student_id!r} takes {MAX_COURSES} courses already")
        return [StudentSubscribed(student_id=student_id, course_id=course_id)]

    result = eventkeep.execute_decision(
        writer,
        decide,
        capacity=course_capacity(course_id),
        subscribed=subscriptions_of_course(course_id),
        courses=student_courses(student_id),
    )
    assert result is not None
    return result
