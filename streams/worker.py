"""What a worker runs, in one list, and what it does before Faust starts.

This module is the worker's entry point: `finsentry worker` (streams/cli.py) and `faust -A
streams.worker worker` both load the app from here. Importing it registers every agent, timer and
view on the app (streams/app.py declares the app and its topics and imports none of them):

- AGENTS: the modules whose agents and timers run on every worker;
- VIEWS: the HTTP views, each module's `faust.web.Blueprint`, registered on the app below (the
  analyst console's pages, streams/console/views.py, among them).

Before Faust starts a worker, `start_up` runs once: `configure` (the roster, receivers and secret
files, read now and not at import: a bad file stops start-up with one line), a wait for the broker,
and `prepare`, so that no agent, table or producer ever runs against a missing topic. `finsentry
worker` calls it before `app.main()`; under `faust -A streams.worker worker` Faust's
`on_worker_init` signal calls it, so both entry points start the same way.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from streams import health, metrics
from streams.action_signing import action_secret
from streams.agents import case_webhooks, classify, ingest, monitor, notify, schedule
from streams.app import PRODUCER, App, app, settings
from streams.broker_wait import wait_for_broker
from streams.case_state import roster_watcher
from streams.console import feed as console_feed
from streams.console import views as console_views
from streams.deadletter import REASONS
from streams.notify_state import alerting
from streams.settings import Settings, SettingsError
from streams.topics import TANSU_CLUSTER_ID, ensure_topics, required_topics, topic_configs
from streams.usage import UsageError, config_exit
from streams.views import anomaly_page, cases, ops, silences

log = logging.getLogger(__name__)

AGENTS = (ingest, classify, monitor, notify, schedule, case_webhooks, health, console_feed)
VIEWS = (ops, cases, silences, anomaly_page, console_views)
# The stages that count records in and out (the `stage` label), each named by its agent.
STAGES = (ingest.STAGE, classify.STAGE, monitor.STAGE, notify.STAGE, schedule.STAGE, case_webhooks.STAGE)

for _view in VIEWS:
    _view.blueprint.register(app)


@app.on_worker_init.connect
def _start_up_faust_worker(sender: App, **kwargs: object) -> None:
    """`faust -A streams.worker worker` starts up as `finsentry worker` does (Faust sends this signal
    for every command it loads the app for: only `worker`, and not its help, needs the broker)."""
    argv = sys.argv[1:]
    if "worker" in argv and not wants_help(argv):
        try:
            start_up()
        except (UsageError, SettingsError) as exc:
            raise config_exit(str(exc)) from None


__all__ = ["AGENTS", "STAGES", "VIEWS", "app", "configure", "prepare", "settings", "start_up", "wants_help"]

_started = False


def wants_help(argv: Sequence[str]) -> bool:
    """Whether the worker was asked only for help or its version: answered at once, without a broker."""
    return any(arg in ("-h", "--help", "--version") for arg in argv)


def start_up() -> None:
    """What a worker does before Faust starts, once per process: `configure`, wait up to
    FINSENTRY_BROKER_WAIT_SECONDS for the broker, `prepare`. Raises UsageError (no broker) or
    SettingsError (a bad file, a topic with the wrong partition count), each one line."""
    global _started
    if _started:
        return
    configure()
    wait_for_broker(settings.bootstrap_servers, settings.broker_wait_seconds)
    prepare(app, settings)
    _started = True


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
                               configs=topic_configs(settings), **settings.kafka_python_options())
    if settings.embedded is None and cluster_id == TANSU_CLUSTER_ID:
        app.use_tansu_workarounds()
        log.info("broker is the embedded Tansu: its workarounds are on (FINSENTRY_EMBEDDED=0 refuses them)")
    metrics.expose_known_series(STAGES, REASONS,
                                (*(r.name for r in alerting().receivers), *case_webhooks.analyst_receivers()),
                                (*app.agents, PRODUCER))
