"""Text in pages as the CLI prints it: bidi and control characters shown escaped
(``\\u202e``), in every value a template prints, with no template asking; what a form
sends back (a hidden job id) stays as stored, so that its action still finds the job."""

from __future__ import annotations

import re
from urllib.parse import quote

from tests.web.conftest import run_queue
from worker.bootstrap import open_pool

# Right-to-left override, pop, ESC (a terminal colour), a C1 control and a line separator.
TRICKY = "Ada \u202eecalevoL\u202c \x1b[31mred\x85 \u2028end"
SHOWN = "Ada \\u202eecalevoL\\u202c \\u001b[31mred\\u0085 \\u2028end"


async def test_a_profiles_name_is_shown_escaped_as_the_cli_shows_it(api, settings):
    enqueued = await api.post(
        "/api/enqueue/create_profile",
        json={"username": "ada", "email": "ada@example.com", "full_name": TRICKY},
    )
    await run_queue(settings)
    job = (await api.get(f"/api/jobs/{enqueued.json()['job']['job_id']}")).json()
    profile_id = job["job"]["result"]["id"]
    assert (await api.get(f"/api/profiles/{profile_id}")).json()["full_name"] == TRICKY
    page = (await api.get(f"/profiles/{profile_id}")).text
    assert SHOWN in page
    assert not re.search("[\u202e\u202c\x1b\x85\u2028]", page)


async def test_a_hidden_job_id_is_sent_back_as_stored(api, settings):
    job_id = "import\u202eevil"  # the API and the CLI refuse it; a Python producer may not
    pool = await open_pool(settings)
    try:
        await pool.enqueue_job("start_run", {"experiment_id": 5}, _job_id=job_id)
    finally:
        await pool.aclose()
    await run_queue(settings)  # fails: no experiment 5
    page = (await api.get("/jobs/" + quote(job_id, safe=""))).text
    assert "import\\u202eevil" in page  # the title, the table
    hidden = re.findall(r'name="job_id" value="([^"]*)"', page)
    assert hidden
    assert set(hidden) == {job_id}
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    handled = await api.post("/jobs/handle", data={"job_id": hidden[0], "csrf": csrf[1]})
    assert handled.status_code == 303
    assert (await api.get("/api/failed")).json()["failed"] == []
