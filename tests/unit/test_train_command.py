"""`finsentry train` without the [train] extra (the `make demo` virtualenv has no torch) is one line
saying how to install it; it was a ModuleNotFoundError traceback, exit 1."""

from __future__ import annotations

import sys

import pytest

from streams import cli


@pytest.mark.parametrize("missing", ["torch", "transformers"])
def test_train_without_the_train_extra_is_one_line(monkeypatch, tmp_path, capsys, missing: str) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # import raises ModuleNotFoundError, as when not installed
    monkeypatch.delitem(sys.modules, "models.train", raising=False)
    train_file = tmp_path / "train.csv"
    train_file.write_text("text,sentiment\nContoso beats estimates,positive\n", encoding="utf-8")
    code = cli.main(["train", "--train", str(train_file), "--dev", str(train_file), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"training needs the [train] extra ({missing} is not installed)" in err and "make test" in err
    assert not (tmp_path / "m").exists()
