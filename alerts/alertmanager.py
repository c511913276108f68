"""Optional push into an existing Alertmanager through its v2 API.

Alertmanager then does its own routing, grouping, silencing and notification; finsentry only
reports alert state. A firing alert is sent without endsAt so Alertmanager keeps it alive for its
resolve_timeout; push firing alerts again at least that often while they are active.
"""

from __future__ import annotations

import httpx

from alerts.payload import ZERO_TIME, Alert


class AlertmanagerError(RuntimeError):
    pass


def postable(alert: Alert) -> dict:
    """The /api/v2/alerts body item for one alert."""
    item = {"labels": alert.labels, "annotations": alert.annotations, "startsAt": alert.starts_at,
            "generatorURL": alert.generator_url}
    if alert.ends_at != ZERO_TIME:
        item["endsAt"] = alert.ends_at
    return item


async def push_alerts(client: httpx.AsyncClient, base_url: str, alerts: list[Alert], timeout: float = 10.0) -> None:
    """POST alerts to `<base_url>/api/v2/alerts`; raises AlertmanagerError unless Alertmanager accepts them."""
    url = base_url.rstrip("/") + "/api/v2/alerts"
    try:
        response = await client.post(url, json=[postable(a) for a in alerts], timeout=timeout)
    except httpx.HTTPError as exc:
        raise AlertmanagerError(f"POST {url} failed: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise AlertmanagerError(f"POST {url} returned HTTP {response.status_code}: {response.text[:300]}")
