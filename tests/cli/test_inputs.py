"""Parsing what users type and the files they give, before anything is enqueued."""

from __future__ import annotations

import pytest

from worker.cli.inputs import checked, new_job_id, parse_assignments
from worker.cli.output import BadInput
from worker.registry import CREATE_PROFILE, GENERATE_PROFILES, RECORD_METRIC


def assignments(*items: str) -> dict[str, str]:
    return parse_assignments(items)


def test_assignments_keep_text_after_the_first_equals_sign():
    assert assignments("bio=a=b, c", "full-name=Ada L") == {"bio": "a=b, c", "full_name": "Ada L"}


def test_an_empty_value_is_a_value():
    assert assignments("bio=") == {"bio": ""}


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ("bio", "expected FIELD=VALUE"),
        ("=x", "expected FIELD=VALUE"),
        ("id=3", "read-only"),
        ("version=9", "read-only"),
        ("updated_at=2024-01-01", "read-only"),
        ("nickname=x", "unknown field"),
    ],
)
def test_bad_assignments_are_refused(item, problem):
    with pytest.raises(BadInput, match=problem) as refused:
        assignments(item)
    assert refused.value.code == 2


def test_a_field_set_twice_is_refused():
    with pytest.raises(BadInput, match="bio: given more than once"):
        assignments("bio=a", "bio=b")


def test_checked_names_the_option_the_user_typed():
    raw = {"username": "ada", "email": "nope", "full_name": ""}
    with pytest.raises(BadInput) as refused:
        checked(CREATE_PROFILE, raw, "job")
    assert "--email: value is not a valid email address" in refused.value.message
    assert "--full-name: String should have at least 1 character" in refused.value.message


def test_checked_names_arguments_by_their_metavar():
    raw = {"run_id": "one", "name": "loss", "step": "-3", "value": "nan"}
    with pytest.raises(BadInput) as refused:
        checked(RECORD_METRIC, raw, "job")
    assert "RUN_ID: Input should be a valid integer" in refused.value.message
    assert "STEP: Input should be greater than or equal to 0" in refused.value.message
    assert "VALUE: Input should be a finite number" in refused.value.message


def test_checked_uses_the_job_labels_and_leaves_defaults_to_the_worker():
    with pytest.raises(BadInput, match="--job-id: String should have at most 64"):
        checked(GENERATE_PROFILES, {"count": 5, "key": "k" * 65}, "job")
    # chunk_size is the worker's to fill in: checked with a default, not sent.
    assert checked(GENERATE_PROFILES, {"count": "5", "key": "k"}, "k") == {"count": 5, "key": "k"}


def test_job_ids_default_to_a_new_uuid_and_refuse_blanks():
    assert len(new_job_id(None)) == 32
    assert new_job_id(None) != new_job_id(None)
    for bad in ("", "a b", "x" * 151):
        with pytest.raises(BadInput, match="--job-id"):
            new_job_id(bad)


def test_job_ids_may_hold_markup_but_no_control_characters():
    assert new_job_id("[/]x") == "[/]x"
    assert (
        new_job_id("[link=https://evil.example]x[/link]") == "[link=https://evil.example]x[/link]"
    )
    for bad in ("a\x1bb", "a\rb", "a\x7f", "a\x9bb", "a\u202eb"):
        with pytest.raises(BadInput, match=r"^--job-id .*: control and bidi characters"):
            new_job_id(bad)
