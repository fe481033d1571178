"""man/ and completions/ are generated from the click definitions and must be current."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_are_current():
    gen_docs = load_gen_docs()
    stale = [str(path.relative_to(ROOT)) for path in gen_docs.stale_files()]
    assert not stale, f"run `python scripts/gen_docs.py` and commit: stale {stale}"


def test_every_option_is_documented():
    gen_docs = load_gen_docs()
    for prog, command in gen_docs.tools():
        page = (ROOT / "man" / f"{prog}.1").read_text()
        fish = (ROOT / "completions" / "fish" / f"{prog}.fish").read_text()
        for option in gen_docs.options_of(command):
            for name in option.opts:
                assert name.replace("-", "\\-") in page, (prog, name)
                if name.startswith("--"):
                    assert f"-l {name[2:]}" in fish, (prog, name)


def test_a_changed_option_makes_the_docs_stale(monkeypatch):
    gen_docs = load_gen_docs()
    from nsqcli.pub.command import command

    option = next(p for p in command.params if p.name == "rate")
    monkeypatch.setattr(option, "help", "changed help text")
    stale = {path.name for path in gen_docs.stale_files()}
    assert "nsq-pub.1" in stale


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completions_parse():
    for path in (ROOT / "completions" / "bash").iterdir():
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True)
        assert result.returncode == 0, (path, result.stderr)
