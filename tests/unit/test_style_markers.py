"""Style markers (docs/MODEL.md): a model trained with them reads each text after the word naming its
style, so the tweet sets' labelling conventions stay apart from newswire's. A story says its style
(`style`, newswire by default); training, evaluation, export and the runtime mark texts the same way,
and a model without markers reads every text as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.data import DataError, Example, load_file, model_texts, styled
from models.evaluate import evaluate
from models.text import DEFAULT_STYLE, STYLE_MARKERS, for_model
from streams import cli
from streams.validation import Story, model_style, validate

NOW = 1_800_000_000.0
ROOT = Path(__file__).resolve().parents[2]


def test_the_marker_goes_before_the_normalised_text_and_none_leaves_it_as_it_was() -> None:
    tweet = "RT @desk: $CTSO - Contoso cools on guidance https://t.co/x1"
    assert for_model(tweet) == "CTSO - Contoso cools on guidance"
    # The retweet prefix, mention and link go before the marker is put in front, as at training time.
    assert for_model(tweet, "social") == "tweet: CTSO - Contoso cools on guidance"
    assert for_model("Woodgrove Bank files for Chapter 11", "newswire") == "news: Woodgrove Bank files for Chapter 11"
    assert DEFAULT_STYLE == "newswire" and set(STYLE_MARKERS) == {"newswire", "social"}


def test_a_file_is_marked_social_only_when_named_and_not_at_all_without_markers(tmp_path: Path) -> None:
    tweets, news = tmp_path / "tweets.csv", tmp_path / "news.csv"
    tweets.write_text("text,sentiment\n$FBKM beats,positive\n", encoding="utf-8")
    news.write_text("text,sentiment\nFabrikam profit beats estimates,positive\n", encoding="utf-8")
    # Named by another spelling of the same path: compared resolved.
    named = [str(tmp_path / "." / "tweets.csv")]
    assert model_texts(styled(tweets, load_file(tweets), named)) == ["tweet: FBKM beats"]
    assert model_texts(styled(news, load_file(news), named)) == ["news: Fabrikam profit beats estimates"]
    assert model_texts(styled(news, load_file(news), None)) == ["Fabrikam profit beats estimates"]
    # The style is how the text is read, not part of the example: a marked copy equals the unmarked one.
    assert styled(news, load_file(news), [])[0] == Example("Fabrikam profit beats estimates", sentiment="positive")


@pytest.mark.parametrize(("given", "style", "dropped"), [
    (None, "newswire", []),
    ("social", "social", []),
    (" Social ", "social", []),
    ("NEWSWIRE", "newswire", []),
    ("blog", "newswire", ["style 'blog': expected one of newswire, social; read as newswire"]),
    (7, "newswire", ["style '7': expected one of newswire, social; read as newswire"]),
])
def test_a_story_says_its_style_and_a_bad_one_costs_the_field_not_the_story(given, style, dropped) -> None:
    raw = {"headline": "Contoso recalls a blender", **({} if given is None else {"style": given})}
    story = validate(json.dumps(raw).encode(), NOW)
    assert isinstance(story, Story)
    assert story.style == style and story.dropped_fields == dropped
    assert story.to_json()["style"] == style
    assert model_style(story.to_json()) == style
    assert model_style({"headline": "a record from before stories carried a style"}) is None


def test_social_files_must_be_files_of_the_run_and_go_with_style_markers(tmp_path: Path, capsys) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,sentiment\nContoso beats estimates,positive\n", encoding="utf-8")
    code = cli.main(["train", "--train", str(data), "--dev", str(data), "--out", str(tmp_path / "m"),
                     "--social-files", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "add --style-markers" in err
    with pytest.raises(DataError, match=r"--social-files: .*other\.csv not among the --data files"):
        evaluate(ROOT / "models" / "default", [str(data)], social_files=[str(tmp_path / "other.csv")])


def test_the_generator_marks_its_cashtag_posts_social_and_its_wire_headlines_not() -> None:
    from streams.sources.generate import generate

    stories = [validate(json.dumps(item.record).encode(), NOW) for item in generate(300, rate=5, seed=3)]
    styles = {s.style for s in stories if isinstance(s, Story)}
    assert styles == {"newswire", "social"}
    for story in stories:
        assert isinstance(story, Story)
        assert (story.style == "social") == story.url.startswith("https://social."), story


# --- a style with a model of its own (card.json `style_models`) ------------------------------------

def _copy_model(to: Path, **card_fields: object) -> Path:
    import shutil

    # The shipped social model: a plain model directory (its card names no style models).
    shipped = ROOT / "models" / "default"
    plain = shipped / json.loads((shipped / "card.json").read_text())["style_models"]["social"]
    shutil.copytree(plain, to, ignore=shutil.ignore_patterns("*.fp32.onnx"))
    card = json.loads((to / "card.json").read_text())
    (to / "card.json").write_text(json.dumps({**card, **card_fields}))
    return to





def test_a_style_model_reads_its_styles_texts_and_the_model_the_rest(tmp_path: Path, monkeypatch) -> None:
    from models.runtime import Classifier

    routed = _copy_model(tmp_path / "m", style_models={"social": "social"}, version="news-1")
    _copy_model(routed / "social", version="tweets-1")
    clf = Classifier.load(routed, device="cpu")
    assert clf.version == "news-1 (social: tweets-1)" and set(clf.by_style) == {"social"}
    read: dict[str, list[str]] = {"news-1": [], "tweets-1": []}
    for model in (clf, clf.by_style["social"]):
        original = model.all_logits
        monkeypatch.setattr(model, "all_logits", lambda texts, size=None, m=model, o=original: (
            read[m.version.split(" ")[0]].extend(texts), o(texts, size))[1])
    texts = ["$CTSO Contoso cools on guidance https://t.co/x", "Woodgrove Bank files for Chapter 11", "Fabrikam beats"]
    got = clf.predict(texts, styles=["social", None, "newswire"])
    assert read == {"news-1": ["Woodgrove Bank files for Chapter 11", "Fabrikam beats"],
                    "tweets-1": ["CTSO Contoso cools on guidance"]}
    # The same files read each style alike: routing changes who reads a text, not its answer.
    plain = Classifier.load(_copy_model(tmp_path / "plain"), device="cpu").predict(texts)
    assert [(p.topic, p.sentiment) for p in got] == [(p.topic, p.sentiment) for p in plain]


def test_a_style_model_must_answer_with_the_same_labels_and_be_a_plain_one(tmp_path: Path) -> None:
    from models.runtime import Classifier, ModelError

    routed = _copy_model(tmp_path / "m", style_models={"social": "social"})
    part = _copy_model(routed / "social", style_models={"social": "social"})
    with pytest.raises(ModelError, match=r"social: the social model has style models of its own"):
        Classifier.load(routed, device="cpu")
    card = json.loads((part / "card.json").read_text())
    del card["style_models"]
    (part / "card.json").write_text(json.dumps(card))
    labels = json.loads((part / "labels.json").read_text())
    (part / "labels.json").write_text(json.dumps({**labels, "sentiment": list(reversed(labels["sentiment"]))}))
    del card["sha256"]  # a hand-edited labels file: the hash check would refuse it first
    (part / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"the social model's labels differ"):
        Classifier.load(routed, device="cpu")


@pytest.mark.parametrize(("value", "problem"), [
    ([], "not an object mapping a style"),
    ({"newswire": "news"}, "not under a style with a model of its own"),
    ({"blog": "blog"}, "not under a style with a model of its own"),
    ({"social": "../elsewhere"}, "not the name of a directory inside the model's own"),
    ({"social": ".."}, "not the name of a directory inside the model's own"),
    ({"social": 3}, "not the name of a directory inside the model's own"),
])
def test_a_card_naming_style_models_badly_is_one_line(value: object, problem: str) -> None:
    from models.runtime import ModelError, check_card

    with pytest.raises(ModelError, match=problem):
        check_card({"style_models": value})


def test_evaluate_reads_the_social_files_with_the_social_model(tmp_path: Path) -> None:
    routed = _copy_model(tmp_path / "m", style_models={"social": "social"})
    _copy_model(routed / "social")
    tweets = tmp_path / "tweets.csv"
    tweets.write_text("text,sentiment\n$FBKM Fabrikam beats estimates,positive\nContoso files for bankruptcy,negative\n",
                      encoding="utf-8")
    routed_card = json.loads((routed / "card.json").read_text())
    (routed / "card.json").write_text(json.dumps({**routed_card, "version": "news-1"}))
    social_card = json.loads((routed / "social" / "card.json").read_text())
    (routed / "social" / "card.json").write_text(json.dumps({**social_card, "version": "tweets-1"}))
    report = evaluate(routed, [str(tweets)], social_files=[str(tweets)], progress=False)
    alone = evaluate(_copy_model(tmp_path / "plain"), [str(tweets)], social_files=[str(tweets)], progress=False)
    assert report["version"] == "news-1 (social: tweets-1)" and report["styles"] == {str(tweets): "social"}
    assert alone["styles"] == {str(tweets): None}, "a model that reads every style alike says so"
    assert report["files"] == alone["files"]


def test_produce_style_marks_the_stories_that_do_not_say_their_own(tmp_path: Path) -> None:
    posts = tmp_path / "posts.csv"
    posts.write_text("headline,style\n$FBKM beats,\nContoso files for bankruptcy,newswire\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert cli.main(["produce", str(posts), "-o", str(out), "--style", "social"]) == 0
    assert [json.loads(line).get("style") for line in out.read_text().splitlines()] == ["social", "newswire"]
    assert cli.main(["produce", str(posts), "-o", str(out)]) == 0
    assert [json.loads(line).get("style") for line in out.read_text().splitlines()] == [None, "newswire"]
