"""``REDIS_URL`` naming a Sentinel-managed primary: read once (``worker.environment``),
handed to arq as its Sentinel settings (``worker.bootstrap``), never told with its password."""

from __future__ import annotations

import pytest

from worker.environment import (
    SentinelUrl,
    UnusableSettings,
    checked_redis_settings,
    redis_address,
    sentinel_url,
)
from worker.ops.enqueue import ReplicaAck
from worker.redis_connection import redis_settings
from worker.settings import Settings

PASSWORD = "pw-hunter2"
URL = f"redis+sentinel://:{PASSWORD}@10.0.0.1:26380,sentinel-b,sentinel-c:5000/jobs-primary/3"


def settings(url: str = URL, **extra: object) -> Settings:
    return Settings(redis_url=url, _env_file=None, **extra)  # type: ignore[call-arg]


def test_the_url_names_the_sentinels_the_master_and_the_database():
    assert sentinel_url(URL) == SentinelUrl(
        sentinels=(("10.0.0.1", 26380), ("sentinel-b", 26379), ("sentinel-c", 5000)),
        master="jobs-primary",
        database=3,
        username=None,
        password=PASSWORD,
    )
    assert sentinel_url("redis+sentinel://s1/mymaster").database == 0  # type: ignore[union-attr]
    assert sentinel_url("redis://127.0.0.1:6379/0") is None


@pytest.mark.parametrize(
    ("url", "told"),
    [
        ("redis+sentinel://s1:26379", "name the master"),
        ("redis+sentinel://s1/m/0/1", "name the master"),
        ("redis+sentinel://s1/m/zero", "must be a number"),
        ("redis+sentinel://s1:port/m", "'s1:port' is not a sentinel"),
        ("redis+sentinel://s1,,s2/m", "'' is not a sentinel"),
        ("redis+sentinel://[::1]:26379/m", "no IPv6"),
        ("redis+sentinel://s1/m?db=2", "no ?options"),
    ],
)
def test_a_url_that_cannot_be_used_says_why(url: str, told: str):
    with pytest.raises(ValueError, match=told.replace("?", r"\?")):
        sentinel_url(url)


def test_arq_is_asked_to_find_the_primary_through_the_sentinels():
    target = redis_settings(settings())
    assert target.sentinel
    assert target.host == [("10.0.0.1", 26380), ("sentinel-b", 26379), ("sentinel-c", 5000)]
    assert (target.sentinel_master, target.database, target.password) == (
        "jobs-primary",
        3,
        PASSWORD,
    )
    assert target.retry is not None  # the same patience as for one server
    assert PASSWORD not in repr(target)


def test_the_address_told_names_master_and_sentinels_without_the_password():
    told = redis_address(settings())
    assert told == ("jobs-primary/3 via sentinels 10.0.0.1:26380,sentinel-b:26379,sentinel-c:5000")


def test_tls_through_sentinel_is_refused_naming_the_setting():
    with pytest.raises(UnusableSettings, match="REDIS_URL is not a Redis URL: TLS through"):
        checked_redis_settings(settings(redis_ssl_ca_certs="/etc/ca.pem"))


def test_enqueue_waits_for_replicas_only_when_asked():
    assert ReplicaAck.of(settings()) is None
    asked = settings(enqueue_replicas=1, enqueue_replica_timeout=0.25)
    assert ReplicaAck.of(asked) == ReplicaAck(replicas=1, timeout_ms=250)
