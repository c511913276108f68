"""What a worker does before Faust starts: the broker's topics, its quirks, and metrics at zero.

`finsentry worker` (streams/cli.py) calls `prepare` once, after the broker answers and before
`app.main()`, so that no agent, table or producer ever runs against a missing topic.
"""

from __future__ import annotations

import logging

from streams import metrics
from streams.agents.notify import ALERTING
from streams.agents.schedule import INVALID_ANOMALY, REJECTED_ACTION
from streams.app import App
from streams.settings import Settings
from streams.topics import TANSU_CLUSTER_ID, ensure_topics, required_topics
from streams.validation import REASONS

log = logging.getLogger(__name__)


def prepare(app: App, settings: Settings) -> None:
    """Create or check every topic (TopicError on a partition mismatch), apply Tansu's workarounds when
    the broker is Tansu and FINSENTRY_EMBEDDED is unset, and expose the known counter series at 0."""
    wanted = required_topics(app)
    cluster_id = ensure_topics(settings.bootstrap_servers, wanted, settings.replication,
                               **settings.kafka_python_options())
    if settings.embedded is None and cluster_id == TANSU_CLUSTER_ID:
        app.use_tansu_workarounds()
        log.info("broker is the embedded Tansu: its workarounds are on (FINSENTRY_EMBEDDED=0 refuses them)")
    metrics.expose_known_series((*REASONS, INVALID_ANOMALY, REJECTED_ACTION), tuple(r.name for r in ALERTING.receivers),
                                tuple(app.agents))
