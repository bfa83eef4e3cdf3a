"""Payload validation: what the edge refuses, and that the refusal names the problem."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from domain import schemas

PROFILE = {"username": "ada", "email": "ada@example.com", "full_name": "Ada Lovelace"}


def _problems(error: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {
        ".".join(str(part) for part in item["loc"]): item["msg"]
        for item in error.value.errors(include_url=False)
    }


def _update(changes: dict[str, object]) -> schemas.UpdateProfile:
    return schemas.UpdateProfile.model_validate({"profile_id": 1, "changes": changes})


@pytest.mark.parametrize(
    ("schema", "data"),
    [
        (schemas.CreateProfile, {**PROFILE, "nickname": "x"}),
        (schemas.RecordMetric, {"run_id": 1, "name": "loss", "step": 0, "value": 1, "nickname": 1}),
        (schemas.FinishRun, {"run_id": 1, "status": "completed", "nickname": None}),
        (schemas.GenerateChunk, {"generation_id": 1, "chunk_index": 0, "nickname": 0}),
    ],
)
def test_extra_fields_are_refused_by_name(schema: type[schemas.Payload], data: dict[str, object]):
    with pytest.raises(ValidationError) as caught:
        schema.model_validate(data)
    assert _problems(caught) == {"nickname": "Extra inputs are not permitted"}


def test_unknown_field_in_changes_is_refused_by_name():
    with pytest.raises(ValidationError) as caught:
        _update({"bio": "x", "nickname": "x"})
    assert _problems(caught) == {"changes.nickname": "Extra inputs are not permitted"}


@pytest.mark.parametrize("field", ["id", "version", "created_at", "updated_at"])
def test_read_only_fields_are_refused_with_a_clear_message(field: str):
    with pytest.raises(ValidationError, match=f"read-only field\\(s\\) cannot be set: {field}"):
        _update({"bio": "x", field: 3})


def test_all_read_only_fields_given_are_named():
    with pytest.raises(ValidationError, match="cannot be set: id, version"):
        _update({"version": 2, "id": 9})


def test_empty_changes_are_refused():
    with pytest.raises(ValidationError, match="no field to change"):
        _update({})


def test_null_changes_are_refused_rather_than_silently_ignored():
    with pytest.raises(ValidationError, match="null given for bio, full_name"):
        _update({"full_name": None, "bio": None})


def test_changes_keep_only_the_fields_given():
    assert _update({"bio": ""}).changes.as_dict() == {"bio": ""}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "NaN", "Infinity", "-inf"])
def test_non_finite_metric_values_are_refused(value: object):
    with pytest.raises(ValidationError) as caught:
        schemas.MetricPoint.model_validate({"name": "loss", "step": 0, "value": value})
    assert _problems(caught) == {"value": "Input should be a finite number"}


def test_negative_step_is_refused():
    with pytest.raises(ValidationError) as caught:
        schemas.MetricPoint(name="loss", step=-1, value=0.1)
    assert list(_problems(caught)) == ["step"]


def test_step_beyond_the_integer_column_is_refused():
    with pytest.raises(ValidationError):
        schemas.MetricPoint(name="loss", step=2**31, value=0.1)


def test_naive_recorded_at_is_refused():
    with pytest.raises(ValidationError, match="timezone"):
        schemas.MetricPoint.model_validate(
            {"name": "loss", "step": 0, "value": 1, "recorded_at": "2026-01-01T00:00:00"}
        )


@pytest.mark.parametrize(
    ("schema", "data", "field"),
    [
        (schemas.CreateProfile, {**PROFILE, "bio": "b" * 2001}, "bio"),
        (schemas.CreateProfile, {**PROFILE, "full_name": "f" * 201}, "full_name"),
        (schemas.CreateProfile, {**PROFILE, "username": "u" * 65}, "username"),
        (schemas.CreateExperiment, {"owner_id": 1, "name": "n" * 201}, "name"),
        (schemas.FinishRun, {"run_id": 1, "status": "failed", "reason": "r" * 2001}, "reason"),
        (schemas.MetricPoint, {"name": "m" * 201, "step": 0, "value": 0}, "name"),
        (schemas.GenerateProfiles, {"count": 1, "key": "k" * 65}, "key"),
    ],
)
def test_huge_strings_are_refused(
    schema: type[schemas.Payload], data: dict[str, object], field: str
):
    with pytest.raises(ValidationError) as caught:
        schema.model_validate(data)
    assert list(_problems(caught)) == [field]


def test_huge_metric_batches_are_refused():
    point = {"name": "loss", "step": 0, "value": 0.0}
    with pytest.raises(ValidationError, match="at most 50000"):
        schemas.RecordMetrics.model_validate(
            {"run_id": 1, "points": [point] * (schemas.MAX_BATCH + 1)}
        )


@pytest.mark.parametrize("username", ["ada.lovelace.g1n0", "x.g12n345"])
def test_generated_username_suffix_is_reserved(username: str):
    with pytest.raises(ValidationError, match=r"reserved for generated profiles"):
        schemas.CreateProfile.model_validate({**PROFILE, "username": username})
    with pytest.raises(ValidationError, match=r"reserved for generated profiles"):
        _update({"username": username})


def test_generated_email_suffix_is_reserved():
    with pytest.raises(ValidationError, match=r"reserved for generated profiles"):
        schemas.CreateProfile.model_validate({**PROFILE, "email": "ada.lovelace.g1n0@gmail.com"})
    with pytest.raises(ValidationError, match=r"reserved for generated profiles"):
        _update({"email": "x.g2n7@example.com"})


@pytest.mark.parametrize("username", ["ada.g1", "g1n2", "ada.g1n2x", "ada_g1n2"])
def test_usernames_merely_resembling_the_suffix_are_fine(username: str):
    assert schemas.CreateProfile.model_validate({**PROFILE, "username": username}).username


@pytest.mark.parametrize("username", ["ab", "has space", "semi;colon", ""])
def test_malformed_usernames_are_refused(username: str):
    with pytest.raises(ValidationError) as caught:
        schemas.CreateProfile.model_validate({**PROFILE, "username": username})
    assert list(_problems(caught)) == ["username"]


def test_invalid_email_is_refused():
    with pytest.raises(ValidationError) as caught:
        schemas.CreateProfile.model_validate({**PROFILE, "email": "not-an-email"})
    assert list(_problems(caught)) == ["email"]


@pytest.mark.parametrize("status", ["running", "done", ""])
def test_finish_run_accepts_only_final_statuses(status: str):
    with pytest.raises(ValidationError):
        schemas.FinishRun.model_validate({"run_id": 1, "status": status})


def test_payloads_are_immutable():
    payload = schemas.CreateProfile.model_validate(PROFILE)
    with pytest.raises(ValidationError):
        payload.username = "other"  # type: ignore[misc]


def _batch(points: list[dict[str, object]]) -> dict[str, object]:
    return {"run_id": 1, "points": points}


def test_many_unknown_fields_make_one_error_naming_the_first_few():
    point = {"name": "loss", "step": 0, "value": 1, **{f"k{n}": 0 for n in range(168)}}
    with pytest.raises(ValidationError) as error:
        schemas.MetricPoint.model_validate(point)
    assert error.value.error_count() == 1
    assert "168 unknown fields: k0, k1" in str(error.value)
    assert "and 158 more" in str(error.value)


def test_a_few_unknown_fields_are_named_one_by_one():
    point = {"name": "loss", "step": 0, "value": 1, **{f"k{n}": 0 for n in range(3)}}
    with pytest.raises(ValidationError) as error:
        schemas.MetricPoint.model_validate(point)
    assert set(_problems(error)) == {"k0", "k1", "k2"}


def test_a_flood_of_bad_points_stops_at_the_first_chunk_with_problems():
    good = {"name": "loss", "step": 0, "value": 1}
    bad = {"name": "", "step": -1, "value": "x"}
    points = [good] * 2500 + [bad] * 10_000
    with pytest.raises(ValidationError) as error:
        schemas.RecordMetrics.model_validate(_batch(points))
    problems = _problems(error)
    # Items 2000-2999 are checked (500 bad ones, three problems each); the rest are not.
    assert error.value.error_count() == 500 * 3 + 1
    assert problems["points.2500.name"] == "String should have at least 1 character"
    assert problems["points.3000"] == "this and 9,499 more not checked"
    assert "points.2499.name" not in problems


def test_long_batches_are_validated_in_chunks_with_the_same_result():
    points = [{"name": "loss", "step": n, "value": n / 3} for n in range(schemas.MAX_BATCH)]
    batch = schemas.RecordMetrics.model_validate(_batch(points))
    assert [p["step"] for p in batch.points] == list(range(schemas.MAX_BATCH))
    assert batch.points[-1] == {"name": "loss", "step": 49_999, "value": 49_999 / 3}


def test_a_batch_over_its_length_limit_is_refused_without_checking_items():
    points = [{"bad": True}] * (schemas.MAX_BATCH + 1)
    with pytest.raises(ValidationError) as error:
        schemas.RecordMetrics.model_validate(_batch(points))
    assert error.value.error_count() == 1
    assert "at most 50000 items" in str(error.value)


@pytest.mark.parametrize(
    ("count", "chunk_size", "chunks"),
    [
        (1, schemas.MIN_CHUNK_SIZE, 1),
        (100_000, 100, 1000),
        (schemas.MAX_GENERATE, 10_000, 1000),
        (schemas.MAX_GENERATE, schemas.MAX_CHUNK_SIZE, 200),
    ],
)
def test_a_generation_within_the_limits_is_accepted(count: int, chunk_size: int, chunks: int):
    request = schemas.GenerateProfiles(count=count, chunk_size=chunk_size)
    assert schemas.chunk_count(request.count, request.chunk_size) == chunks


def test_a_chunk_smaller_than_the_workers_minimum_is_refused():
    with pytest.raises(ValidationError) as caught:
        schemas.GenerateProfiles(count=30_000, chunk_size=1)
    assert _problems(caught) == {"chunk_size": "Input should be greater than or equal to 100"}


@pytest.mark.parametrize(
    ("count", "chunk_size", "smallest"),
    [(100_001, 100, "101"), (schemas.MAX_GENERATE, 9_999, "10,000")],
)
def test_more_chunks_than_the_limit_are_refused_naming_the_smallest_chunk_size(
    count: int, chunk_size: int, smallest: str
):
    with pytest.raises(ValidationError) as caught:
        schemas.GenerateProfiles(count=count, chunk_size=chunk_size)
    assert _problems(caught) == {
        "chunk_size": f"Value error, at least {smallest} for {count:,} profiles "
        "(a generation makes at most 1,000 chunk jobs)"
    }
    schemas.GenerateProfiles(count=count, chunk_size=int(smallest.replace(",", "")))


def test_the_workers_chunk_size_setting_has_the_producers_bounds():
    from worker.settings import Settings

    for refused in (schemas.MIN_CHUNK_SIZE - 1, schemas.MAX_CHUNK_SIZE + 1):
        with pytest.raises(ValidationError, match="generation_chunk_size"):
            Settings(generation_chunk_size=refused)
    assert Settings(generation_chunk_size=schemas.MIN_CHUNK_SIZE).generation_chunk_size == 100
