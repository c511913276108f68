import pytest

from models.text import cashtags, clean, for_model
from streams.settings import Settings, SettingsError


def test_for_model_removes_tweet_surface_cues():
    text = "RT @trader: $aapl &amp; $MSFT rally https://t.co/xyz @someone"
    assert for_model(text) == "AAPL & MSFT rally"
    assert cashtags(text) == ["AAPL", "MSFT"]
    assert clean("a\u200bb\x00  c") == "ab c"


def test_invisible_characters_and_lone_surrogates_are_dropped():
    # isolates, the Arabic letter mark and the soft hyphen: a headline of only these is empty; a lone
    # surrogate made the tokenizer raise
    assert clean("\u2066\u2069\u061c\u00ad") == "" and clean("Con\u00adtoso \ud800cuts") == "Contoso cuts"
    assert for_model("\udc80") == ""


def test_settings_from_env_and_file(tmp_path):
    config = tmp_path / "finsentry.yml"
    config.write_text("partitions: 8\ntopic_raw: in.news\nwatchlist: aapl, msft\n")
    s = Settings.load({"FINSENTRY_CONFIG": str(config), "FINSENTRY_PARTITIONS": "2", "FINSENTRY_BROKER": "kafka://k:9092"})
    assert s.partitions == 2  # the environment wins over the file
    assert s.topic_raw == "in.news"
    assert s.watchlist == frozenset({"AAPL", "MSFT"})
    assert s.bootstrap_servers == ["k:9092"]


@pytest.mark.parametrize("env, needle", [
    ({"FINSENTRY_PARTITIONS": "zero"}, "FINSENTRY_PARTITIONS"),
    ({"FINSENTRY_BROKER": "localhost:9092"}, "kafka://HOST:PORT"),
    ({"FINSENTRY_DEVICE": "tpu"}, "FINSENTRY_DEVICE"),
])
def test_bad_setting_is_one_line_naming_it(env, needle):
    with pytest.raises(SettingsError) as err:
        Settings.load(env)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_unknown_key_in_config_file(tmp_path):
    config = tmp_path / "bad.yml"
    config.write_text("partitons: 3\n")
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.load({"FINSENTRY_CONFIG": str(config)})
