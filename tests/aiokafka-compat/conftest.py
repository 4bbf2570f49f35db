"""The aiokafka row of the client compatibility matrix (scripts/compat-clients.sh): the same
tests, unchanged, against Apache Kafka and against Sluice. The broker is named by
COMPAT_BOOTSTRAP (host:port), started and stopped by the script; without it every test fails (a
test that did not run is never reported as a pass).

The tests are plain pytest functions that drive their asyncio code with `asyncio.run`, under a
per-test bound (TEST_TIMEOUT_S), so a hung client fails its test instead of the run.
"""

import asyncio
import os
import time
import uuid

import pytest

# Upper bound for one test's broker work, in seconds.
TEST_TIMEOUT_S = 90

RUN_ID = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def bootstrap():
    address = os.environ.get("COMPAT_BOOTSTRAP")
    if not address:
        pytest.fail("COMPAT_BOOTSTRAP (host:port of the broker under test) is not set")
    return address


@pytest.fixture
def name(request):
    """A topic or group name unique to this test and run."""
    test = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")
    return f"aiokafka-{test}-{RUN_ID}"


@pytest.fixture
def run():
    """Runs a coroutine to completion on a new event loop, within TEST_TIMEOUT_S."""

    def run_bounded(coroutine):
        async def bounded():
            return await asyncio.wait_for(coroutine, TEST_TIMEOUT_S)

        return asyncio.run(bounded())

    return run_bounded
