"""Analysts' corrected labels as training data: which corrections the trainer can use, and the
`labels.feedback` records a resolved case produces. Pure: the scheduler agent and the analyst API
both call it."""

from __future__ import annotations

from typing import Any

from models.labels import SENTIMENTS


def label_problem(case: dict[str, Any], labels: Any, topics: frozenset[str] | None = None) -> str | None:
    """Why corrected labels cannot become training data for this case, or None if they can.

    The engine checks their shape; this checks what the feedback loop needs besides: each id is a
    headline behind the case (so its text is known) and the labels are ones the trainer reads.
    `topics` is the running model's topic set: a correction naming another topic would become a
    new class when the feedback is trained on (None: any non-empty topic, for records already checked).
    """
    if labels is None:
        return None
    if not isinstance(labels, list):
        return "labels must be a list of {id, topic?, sentiment?}"
    texts = headline_texts(case)
    for label in labels:
        if not isinstance(label, dict):
            return f"each label must be an object, got {label!r}"
        if label.get("id") not in texts:
            return f"label id {label.get('id')!r} is not a headline of {case['case_id']} (ids: {sorted(texts)})"
        if not texts[label["id"]].strip():
            return (f"story {label['id']!r} of {case['case_id']} has no text on record (a story without a "
                    "headline, scored before the monitor kept its body's opening): a correction of it "
                    "could not become training data")
        topic, sentiment = label.get("topic"), label.get("sentiment")
        if topic is not None and (not isinstance(topic, str) or not topic.strip()):
            return f"label topic must be a non-empty string, got {topic!r}"
        if topic is not None and topics is not None and topic not in topics:
            return f"label topic must be one of the model's topics ({', '.join(sorted(topics))}), got {topic[:80]!r}"
        if sentiment is not None and sentiment not in SENTIMENTS:
            return f"label sentiment must be one of {SENTIMENTS}, got {sentiment!r}"
        if topic is None and sentiment is None:
            return f"label {label['id']!r} corrects nothing: give topic and/or sentiment"
    return None


def headline_texts(case: dict[str, Any]) -> dict[str, str]:
    """Story id -> headline; the monitor writes `sample_ids` and `headlines` in the same order."""
    return dict(zip(case["sample_ids"], case["headlines"], strict=False))


def feedback_records(event: dict[str, Any], case: dict[str, Any]) -> list[dict[str, Any]]:
    """`labels.feedback` values for the corrected labels of a resolved or labelled event; labels the
    trainer could not use (unknown id, unknown sentiment) are skipped, having been refused at the API.
    A story that arrived as a social post says `style: social`, so its correction trains as a post;
    any other says no style (newswire, or a story from before styles were kept), and trains in the
    style of the file it is exported to."""
    texts = headline_texts(case)
    social = set(case.get("social_ids") or ())
    return [
        {"id": label["id"], "text": texts[label["id"]], **{k: label[k] for k in ("topic", "sentiment") if k in label},
         **({"style": "social"} if label["id"] in social else {}),
         "case_id": event["case_id"], "analyst": event.get("analyst"), "at": event["at"]}
        for label in event.get("labels") or ()
        if label_problem(case, [label]) is None
    ]
