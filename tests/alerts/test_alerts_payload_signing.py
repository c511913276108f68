"""Alertmanager v4 payload shape, signatures and replay rejection, silences."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from alerts.engine import AnomalyEvent
from alerts.payload import ZERO_TIME, alert_from_event, build_payload
from alerts.signing import sign, verify
from alerts.silences import Matcher, Silence, Silences

SECRET = b"topsecret"


def event(kind: str = "negative_surge", step: str = "open", scope: str = "ticker:ACME") -> AnomalyEvent:
    return AnomalyEvent("a1b2c3d4e5f60718", step, kind, scope, "2024-05-01T10:00:00.000Z",  # type: ignore[arg-type]
                        "2024-05-01T10:01:00.000Z", 9.0, 0.4, 7.5, "warning", ["s1", "s2"], ["Acme falls", "Acme probe"])


def test_payload_has_alertmanager_v4_shape() -> None:
    firing = alert_from_event(event(), "https://fs.example/anomalies/a1b2c3d4e5f60718")
    other = alert_from_event(event("sentiment_shift", "resolve"))
    payload = build_payload("ops", {"scope": "ticker:ACME"}, [firing, other], "https://fs.example")
    assert set(payload) == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                            "commonLabels", "commonAnnotations", "externalURL", "alerts"}
    assert payload["version"] == "4" and payload["status"] == "firing" and payload["truncatedAlerts"] == 0
    assert payload["groupKey"] == '{}/ops:{scope="ticker:ACME"}'
    assert payload["commonLabels"] == {"scope": "ticker:ACME", "severity": "warning", "anomaly_id": "a1b2c3d4e5f60718"}
    first, second = payload["alerts"]
    assert set(first) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert first["labels"]["alertname"] == "negative_surge" and first["endsAt"] == ZERO_TIME
    assert first["annotations"]["headlines"] == "Acme falls\nAcme probe" and first["annotations"]["sample_ids"] == "s1,s2"
    assert "negative surge in ticker:ACME" in first["annotations"]["summary"]
    assert second["status"] == "resolved" and second["endsAt"] == "2024-05-01T10:01:00.000Z"
    assert all(isinstance(v, str) for a in payload["alerts"] for v in a["annotations"].values())
    only_resolved = build_payload("ops", {}, [other], "")
    assert only_resolved["status"] == "resolved"


def test_signature_verifies_and_rejects_tampering_wrong_secret_and_replay() -> None:
    body = json.dumps({"hello": "world"}).encode()
    headers = sign(SECRET, body, 1_700_000_000)
    assert headers["X-Finsentry-Signature"].startswith("sha256=")
    assert verify(SECRET, headers, body, now=1_700_000_100)
    assert verify(SECRET, {k.lower(): v for k, v in headers.items()}, body, now=1_700_000_000)
    assert not verify(SECRET, headers, body + b" ", now=1_700_000_000)
    assert not verify(b"other", headers, body, now=1_700_000_000)
    assert not verify(SECRET, headers, body, now=1_700_000_301)  # replayed after the tolerance
    assert not verify(SECRET, headers, body, now=1_699_999_000)  # from the future
    moved = {**headers, "X-Finsentry-Timestamp": "1700000200"}  # a fresh timestamp on an old signature
    assert not verify(SECRET, moved, body, now=1_700_000_200)
    assert not verify(SECRET, {}, body, now=1_700_000_000)


def test_silences_match_equality_and_anchored_regex_until_they_end() -> None:
    silences = Silences()
    sid = silences.add(Silence((Matcher("scope", "ticker:A.*", is_regex=True), Matcher("severity", "info")), 100.0))
    assert silences.match({"scope": "ticker:ACME", "severity": "info"}, now=50) is not None
    assert silences.match({"scope": "xticker:ACME", "severity": "info"}, now=50) is None  # anchored
    assert silences.match({"scope": "ticker:ACME", "severity": "critical"}, now=50) is None
    assert silences.match({"scope": "ticker:ACME", "severity": "info"}, now=100) is None  # ended
    assert [s.id for s in silences.list(now=50)] == [sid]
    assert Silences.from_dict(json.loads(json.dumps(silences.to_dict()))).items == silences.items
    assert silences.remove(sid) and not silences.remove(sid)
    with pytest.raises(ValueError, match="invalid regex"):
        Matcher("scope", "(", is_regex=True)
    with pytest.raises(ValueError, match="at least one matcher"):
        Silence((), 10.0)


# Values from prometheus/common model/signature_test.go, computed by Go's labelSetToFingerprint.
GO_FINGERPRINTS = [
    ({}, 14695981039346656037),
    ({"name": "garland, briggs", "fear": "love is not enough"}, 5799056148416392346),
    ({"first-label": "first-label-value"}, 5146282821936882169),
    ({"first-label": "first-label-value", "second-label": "second-label-value"}, 3195800080984914717),
    ({"first-label": "first-label-value", "second-label": "second-label-value", "third-label": "third-label-value"},
     13843036195897128121),
]


def test_fingerprint_is_alertmanagers_label_set_hash() -> None:
    from alerts.payload import fingerprint

    for labels, expected in GO_FINGERPRINTS:
        assert fingerprint(labels) == f"{expected:016x}", labels
    alert = alert_from_event(event())
    assert alert.fingerprint == fingerprint(alert.labels) and len(alert.fingerprint) == 16
    assert alert.key == alert.labels["anomaly_id"]
    escalated = alert_from_event(replace(event(), severity="critical"))
    assert escalated.fingerprint != alert.fingerprint and escalated.key == alert.key
