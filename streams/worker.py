"""What a worker runs, in one list, and what it does before Faust starts.

This module is the worker's entry point: `finsentry worker` (streams/cli.py) and `faust -A
streams.worker worker` both load the app from here. Importing it registers every agent, timer and
view on the app (streams/app.py declares the app and its topics and imports none of them):

- AGENTS: the modules whose agents and timers run on every worker;
- VIEWS: the HTTP views, each module's `faust.web.Blueprint`, registered on the app below.

`finsentry worker` then calls `configure` (the roster, receivers and secret files, read now and
not at import: a bad file stops start-up with one line), waits for the broker, and calls `prepare`
once before `app.main()`, so that no agent, table or producer ever runs against a missing topic.
"""

from __future__ import annotations

import logging

from streams import health, metrics
from streams.agents import case_webhooks, classify, ingest, monitor, notify, schedule
from streams.agents.schedule import INVALID_ANOMALY, REJECTED_ACTION
from streams.app import App, app, settings
from streams.case_actions import action_secret
from streams.case_state import roster_watcher
from streams.console import feed as console_feed
from streams.console import views as console_views
from streams.notify_state import alerting
from streams.settings import Settings
from streams.topics import TANSU_CLUSTER_ID, ensure_topics, required_topics
from streams.validation import REASONS
from streams.views import anomaly_page, cases, ops, silences

log = logging.getLogger(__name__)

AGENTS = (ingest, classify, monitor, notify, schedule, case_webhooks, health, console_feed)
VIEWS = (ops, cases, silences, anomaly_page)
CONSOLE = console_views  # registers its pages with @app.page on import (docs/CONSOLE.md)

for _view in VIEWS:
    _view.blueprint.register(app)


@app.on_worker_init.connect
def _configure_faust_worker(sender: App, **kwargs: object) -> None:
    """`faust -A streams.worker worker` reads the configuration files too, before the worker starts."""
    configure()


__all__ = ["AGENTS", "CONSOLE", "VIEWS", "app", "configure", "prepare", "settings"]


def configure() -> None:
    """Read the configuration files the agents need (FINSENTRY_RECEIVERS, FINSENTRY_ROSTER,
    FINSENTRY_CASE_WEBHOOK_SECRET_FILE, FINSENTRY_CASE_ACTION_SECRET_FILE); a bad one raises
    SystemExit with one line naming it."""
    alerting()
    roster_watcher()
    case_webhooks.webhook_secret()
    case_webhooks.roster_watcher()
    action_secret()


def prepare(app: App, settings: Settings) -> None:
    """Create or check every topic (TopicError on a partition mismatch), apply Tansu's workarounds when
    the broker is Tansu and FINSENTRY_EMBEDDED is unset, and expose the known counter series at 0."""
    wanted = required_topics(app)
    cluster_id = ensure_topics(settings.bootstrap_servers, wanted, settings.replication,
                               **settings.kafka_python_options())
    if settings.embedded is None and cluster_id == TANSU_CLUSTER_ID:
        app.use_tansu_workarounds()
        log.info("broker is the embedded Tansu: its workarounds are on (FINSENTRY_EMBEDDED=0 refuses them)")
    metrics.expose_known_series((*REASONS, INVALID_ANOMALY, REJECTED_ACTION), tuple(r.name for r in alerting().receivers),
                                tuple(app.agents))
