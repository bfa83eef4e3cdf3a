"""What a worker writes stays bounded whatever it was sent: messages, results, payloads."""

from __future__ import annotations

import orjson
import pytest
from arq.jobs import deserialize_job_raw, serialize_job, serialize_result

from worker.registry import RECORD_METRIC, RECORD_METRICS
from worker.runtime.delivery import validate
from worker.runtime.failures import InvalidPayload, _fail
from worker.serialization import (
    MAX_RESULT_BYTES,
    JobError,
    OversizedPayload,
    UnreadablePayload,
    arguments_omitted,
    deserialize,
    job_deserializer,
    serialize,
    why_unreadable,
)
from worker.text import MAX_MESSAGE_CHARS, capped

LIMIT = 64 * 1024


def job_bytes(payload: object) -> bytes:
    return serialize_job(
        "record_metrics", (payload,), {}, 1, 1_700_000_000_000, serializer=serialize
    )


def result_bytes(args: tuple[object, ...], result: object) -> bytes:
    data = serialize_result(
        "record_metrics",
        args,
        {},
        1,
        0,
        False,
        result,
        0,
        1,
        "ref",
        "q",
        "id",
        serializer=serialize,
    )
    assert data is not None
    return data


def test_capped_keeps_short_text_and_says_how_much_it_cut():
    assert capped("short") == "short"
    cut = capped("x" * 5000)
    assert cut.startswith("x" * MAX_MESSAGE_CHARS)
    assert cut.endswith("… (3,000 more characters)")


def test_a_job_under_the_limit_is_parsed_as_usual():
    raw = job_bytes({"run_id": 1, "points": []})
    assert deserialize_job_raw(raw, deserializer=job_deserializer(LIMIT))[1] == [
        {"run_id": 1, "points": []}
    ]


def test_a_job_over_the_limit_reaches_the_runner_as_a_marker_without_being_parsed():
    raw = job_bytes({"run_id": 1, "points": ["x" * LIMIT]})
    function, args, kwargs, job_try, enqueued = deserialize_job_raw(
        raw, deserializer=job_deserializer(LIMIT)
    )
    assert (function, kwargs, job_try, enqueued) == ("record_metrics", {}, 1, 1_700_000_000_000)
    assert args == [OversizedPayload(len(raw), LIMIT)]
    with pytest.raises(InvalidPayload, match="over the 65,536-byte limit"):
        validate(RECORD_METRICS, args[0])


def test_an_oversized_blob_that_is_not_an_arq_job_is_refused_outright():
    with pytest.raises(ValueError, match="over the 65,536-byte limit"):
        job_deserializer(LIMIT)(b"[" + b"1," * LIMIT + b"1]")


def test_a_failure_keeps_a_capped_message_in_its_result():
    data = deserialize(result_bytes((), ValueError("e" * 100_000)))
    assert isinstance(data["r"], JobError)
    assert data["r"].type_name == "ValueError"
    assert len(data["r"].message) < MAX_MESSAGE_CHARS + 40


def test_a_large_result_drops_the_copy_of_the_job_arguments():
    payload = {
        "run_id": 1,
        "points": [{"name": "loss", "step": n, "value": 0.5} for n in range(5000)],
    }
    raw = result_bytes((payload,), {"inserted": 5000})
    assert len(raw) <= MAX_RESULT_BYTES
    data = deserialize(raw)
    assert data["r"] == {"inserted": 5000}
    assert arguments_omitted(data["a"])


def test_a_small_result_keeps_its_arguments():
    data = deserialize(result_bytes(({"run_id": 1},), {"inserted": 1}))
    assert data["a"] == [{"run_id": 1}]
    assert not arguments_omitted(data["a"])


def test_a_refused_payload_leaves_no_copy_in_its_result():
    raw = result_bytes((OversizedPayload(70_000_000, LIMIT),), ValueError("refused"))
    assert len(raw) < 1000
    assert "70,000,000" in orjson.loads(raw)["a"][0]["__omitted__"]


def test_an_invalid_payload_names_ten_problems_and_counts_the_rest():
    bad = [{"name": "", "step": -1, "value": "x"}] * 100
    with pytest.raises(InvalidPayload) as error:
        validate(RECORD_METRICS, {"run_id": 1, "points": bad})
    message = str(error.value)
    assert message.count("points.") == 10
    assert message.endswith("and 290 more problems")
    assert len(message) <= MAX_MESSAGE_CHARS + 80


def test_a_huge_unknown_key_is_not_echoed_whole():
    with pytest.raises(InvalidPayload) as error:
        validate(RECORD_METRIC, {"k" * 1_000_000: 1})
    assert len(str(error.value)) < 1000


@pytest.mark.parametrize("error", [KeyError("k" * 10_000), RuntimeError("r" * 10_000)])
def test_a_long_failure_is_cut_short_but_keeps_its_type_and_traceback(error):
    with pytest.raises(type(error)) as raised:
        _fail(error)
    assert len(str(raised.value)) < MAX_MESSAGE_CHARS + 100
    assert "more characters" in str(raised.value)
    assert raised.value.__traceback__ is not None


def test_a_failure_whose_message_cannot_be_replaced_becomes_a_job_error():
    class Stubborn(Exception):
        def __str__(self) -> str:
            return "s" * 10_000

    with pytest.raises(JobError) as raised:
        _fail(Stubborn())
    assert raised.value.type_name == "Stubborn"
    assert len(raised.value.message) < MAX_MESSAGE_CHARS + 100


@pytest.mark.parametrize(
    "envelope",
    [
        {"t": "x", "f": "record_metric", "a": [], "k": {}, "et": 1},
        {"t": 1, "f": ["record_metric"], "a": [], "k": {}, "et": 1},
        {"t": True, "f": "record_metric", "a": [], "k": {}, "et": 1},
    ],
)
def test_a_job_whose_envelope_arq_would_trip_on_is_refused_as_undecodable(envelope):
    with pytest.raises(ValueError, match="not an arq job"):
        job_deserializer(LIMIT)(orjson.dumps(envelope))


@pytest.mark.parametrize(
    "envelope",
    [
        {"t": 1, "f": "record_metric", "a": {}, "k": {}, "et": 1},
        {"t": 1, "f": "record_metric", "a": [], "k": [], "et": 1},
        {"t": 1, "f": "record_metric", "a": [], "k": {}, "et": "soon"},
        {"t": 1, "f": "record_metric", "a": [], "k": {}},
    ],
)
def test_a_bad_envelope_that_names_its_function_reaches_it_as_a_marker_it_refuses(envelope):
    job = job_deserializer(LIMIT)(orjson.dumps(envelope))
    assert (job["f"], job["t"], job["k"]) == ("record_metric", None, {})
    [marker] = job["a"]
    assert isinstance(marker, UnreadablePayload)
    with pytest.raises(InvalidPayload, match="not an arq job: its f, a, k, t or et"):
        validate(RECORD_METRIC, marker)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"t":1,"f":"record_metric","a":[{"v":NaN}],"k":{},"et":5}', "the job is not JSON"),
        (b'{"t":1,"f":"record_metric","a":[\x80\x04],"k":{},"et":5}', "the job is not JSON"),
    ],
)
def test_a_job_that_is_not_json_reaches_its_function_as_a_marker(raw, says):
    job = job_deserializer(LIMIT)(raw)
    assert (job["f"], job["et"]) == ("record_metric", 5)
    with pytest.raises(InvalidPayload, match=says):
        validate(RECORD_METRIC, job["a"][0])


def test_a_pickle_is_never_loaded_and_says_so():
    import pickle

    raw = pickle.dumps({"f": "record_metric"})
    with pytest.raises(orjson.JSONDecodeError):  # for the worker to refuse, unread
        job_deserializer(LIMIT)(raw)
    assert "a pickle" in why_unreadable(raw, ValueError("x"))


def test_a_well_formed_envelope_passes():
    job = {"t": None, "f": "record_metric", "a": [{}], "k": {}, "et": 1}
    assert job_deserializer(LIMIT)(orjson.dumps(job))["f"] == "record_metric"
