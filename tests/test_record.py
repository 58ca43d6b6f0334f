"""Records share pydantic's set of given fields until an assignment would change it."""

from __future__ import annotations

from agentflow import Message, Usage


def test_records_of_one_shape_share_their_given_fields() -> None:
    a, b = Message.user("a"), Message.user("b")
    assert a.model_fields_set is b.model_fields_set == {"role", "content"}
    assert Message.system("c").model_fields_set is a.model_fields_set


def test_an_assignment_changes_only_its_own_record() -> None:
    a, b = Usage(requests=1), Usage(requests=2)
    a.cost = 0.5
    assert a.model_fields_set == {"requests", "cost"}
    assert b.model_fields_set == {"requests"}
    assert Usage(requests=3).model_fields_set == {"requests"}
    b.requests = 4  # already given: nothing to unshare, and nothing changes for others
    assert Usage(requests=5).model_fields_set == {"requests"}


def test_copies_and_exclude_unset_behave_as_pydantics() -> None:
    a = Message.user("a")
    copy = a.model_copy(update={"name": "x"})
    assert copy.model_fields_set == {"role", "content", "name"}
    assert a.model_fields_set == {"role", "content"}
    assert a.model_dump(exclude_unset=True) == {"role": "user", "content": "a"}
