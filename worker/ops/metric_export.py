"""Every point of a metric, for one run or several: read a page at a time in one unit of
work (one snapshot), so that memory holds one page whatever the runs' sizes. What ``jobs
runs metrics --all`` prints as it reads, and what any other export would stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domain.metric_queries import MetricPageQuery
    from worker.ops.job_state import Sources


async def every_point(
    sources: Sources, queries: Sequence[MetricPageQuery]
) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """Each query's run and its points as JSON data, in step order, a page at a time. Every
    run is looked up first: an unknown one is refused before any point is handed over."""
    from domain.services import metric_page

    async with sources.unit_of_work() as uow:
        for query in queries:
            await metric_page(uow, query.model_copy(update={"limit": 1}))
        for first in queries:
            page = await metric_page(uow, first)
            yield first.run_id, page.model_dump(mode="json")["points"]
            while page.next_after is not None:
                after = first.model_copy(update={"after_step": page.next_after})
                page = await metric_page(uow, after)
                yield first.run_id, page.model_dump(mode="json")["points"]
