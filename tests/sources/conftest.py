"""Fixtures of the scraper tests: the local feed server (tests/sources/feedserver.py) and a client
made with the scraper's own policy, as `finsentry scrape` makes it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from streams.sources import scrape
from streams.sources.scrape import Policy
from tests.sources.feedserver import FeedServer, serve


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve() as s:
        yield s


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with scrape.make_client(Policy()) as c:
        yield c
