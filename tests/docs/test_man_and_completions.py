"""The man pages' EXAMPLES parse with the tools' own options; the umbrella's completions complete
each subcommand's options; ``pip install`` puts the man pages where ``man`` finds them."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELL_WORDS = {"|", "||", "&&", "&", ";", "<", ">"}


def load_gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN_DOCS = load_gen_docs()


def _invocations(line: str):
    """(program, args) of each nsqcli tool a shell example line runs."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    words, command = list(lexer), []
    for word in words + [";"]:
        if word in SHELL_WORDS or set(word) <= set("|&;<>"):
            if command and command[0] in GEN_DOCS.SCRIPTS or command[:1] == ["nsqcli"]:
                yield command[0], command[1:]
            command = []
        else:
            command.append(word)


def _parse(program: str, args: list[str]) -> None:
    command = GEN_DOCS.cli if program == "nsqcli" else GEN_DOCS.load_tool(GEN_DOCS.SCRIPTS[program])
    while isinstance(command, click.Group):  # down to the subcommand that takes the options
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, (program, args)
        program, args, command = f"{program} {args[0]}", args[1:], sub
    command.make_context(program, list(args)).close()


def test_every_page_has_examples_that_parse():
    pages = {prog for prog, _ in GEN_DOCS.tools()} | set(GEN_DOCS.MAN_ONLY)
    assert set(GEN_DOCS.EXAMPLES) == pages
    for prog, examples in GEN_DOCS.EXAMPLES.items():
        assert examples and ".SH EXAMPLES" in (ROOT / "man" / f"{prog}.1").read_text()
        for _, line in examples:
            invocations = list(_invocations(line))
            assert invocations, line
            for program, args in invocations:
                _parse(program, args)  # raises a click usage error for a wrong flag or value


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("words, expected", [
    (["nsqcli", ""], {"tail", "pub", "to-file", "replay", "dev-server", "topic", "channel",
                      "stat", "to-nsq"}),
    (["nsqcli", "to-nsq", "--destination-tls-c"], {"--destination-tls-ca-file",
                                                   "--destination-tls-cert"}),
    (["nsqcli", "to-nsq", "--mode", ""], {"round-robin", "fan-out", "hostpool",
                                           "epsilon-greedy"}),
    (["nsqcli", "tail", "--to"], {"--topic"}),
    (["nsqcli", "to-file", "--gz"], {"--gzip", "--gzip-level"}),
    (["nsqcli", "tail", "--format", ""], {"raw", "json"}),
    (["nsqcli", "-v", "pub", "-0", "--ra"], {"--rate"}),
    (["nsqcli", "dev-server", "--no-l"], {"--no-lookupd"}),
    (["nsqcli", "--ver"], {"--version"}),
    (["nsqcli", "topic", ""], {"create", "delete", "empty", "pause", "unpause", "list"}),
    (["nsqcli", "-v", "channel", "--he"], {"--help"}),
    (["nsqcli", "topic", "delete", "--y"], {"--yes"}),
    (["nsqcli", "topic", "create", "--all"], {"--all-nodes"}),
    (["nsqcli", "channel", "create", "--to"], {"--topic"}),
    (["nsqcli", "channel", "pause", "--topic", "events", "--dry"], {"--dry-run"}),
    (["nsqcli", "topic", "pause", "ev"], set()),  # a name: no file names offered
])
def test_the_umbrella_bash_completion_completes_subcommand_options(words, expected):
    script = (f"source {shlex.quote(str(ROOT / 'completions' / 'bash' / 'nsqcli'))}\n"
              f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n_nsqcli\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == expected


@pytest.mark.skipif(shutil.which("fish") is None, reason="no fish")
@pytest.mark.parametrize("line, expected", [
    ("nsqcli tail --to", {"--topic"}),
    ("nsqcli to-file --gz", {"--gzip", "--gzip-level"}),
    ("nsqcli tail --format ", {"raw", "json"}),
    ("nsqcli ", {"tail", "pub", "to-file", "replay", "dev-server", "topic", "channel",
                 "stat", "to-nsq"}),
    ("nsqcli topic ", {"create", "delete", "empty", "pause", "unpause", "list"}),
    ("nsqcli topic delete --y", {"--yes"}),
    ("nsqcli channel create --to", {"--topic"}),
    ("nsqcli channel create --topic events --all", {"--all-nodes"}),
])
def test_the_umbrella_fish_completion_completes_subcommand_options(line, expected):
    path = ROOT / "completions" / "fish" / "nsqcli.fish"
    result = subprocess.run(["fish", "--no-config", "-c",
                             f"source {shlex.quote(str(path))}; complete -C {shlex.quote(line)}"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert {row.split("\t")[0] for row in result.stdout.splitlines()} == expected


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")
@pytest.mark.parametrize("sub", ["tail", "pub", "to-file", "replay", "dev-server", "stat",
                                 "to-nsq"])
def test_the_umbrella_zsh_completion_hands_each_subcommand_its_options(sub):
    """zsh's _arguments replaced by a stand-in that names the subcommand (as _arguments -C does
    for '1:command:...') and prints the option specs the subcommand's function passes."""
    path = ROOT / "completions" / "zsh" / "_nsqcli"
    script = (f"_arguments() {{ if [[ $1 == -C ]]; then state=args; line=({sub}); return 0; fi; "
              f"print -rl -- \"$@\"; }}\nsource {shlex.quote(str(path))}\n")
    result = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    specs = result.stdout.splitlines()
    command = GEN_DOCS.load_tool(sub)
    names = {name for option in GEN_DOCS.options_of(command) for name in option.opts}
    assert all(any(name in spec for spec in specs) for name in names), (sub, specs)
    assert subprocess.run(["zsh", "-n", str(path)]).returncode == 0


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")
@pytest.mark.parametrize("group, sub", [("topic", "delete"), ("channel", "create")])
def test_the_umbrella_zsh_completion_hands_nested_subcommands_their_options(group, sub):
    """As above, one level down: the stand-in names the group at the first _arguments -C, the
    subcommand at the second."""
    path = ROOT / "completions" / "zsh" / "_nsqcli"
    script = (f"words=({group} {sub}); n=0\n"
              "_arguments() { if [[ $1 == -C ]]; then n=$((n + 1)); state=args; "
              "line=(${words[$n]}); return 0; fi; print -rl -- \"$@\"; }\n"
              f"source {shlex.quote(str(path))}\n")
    result = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    specs = "\n".join(result.stdout.splitlines())
    command = GEN_DOCS.cli.get_command(click.Context(GEN_DOCS.cli), group)
    options = GEN_DOCS.options_of(command.get_command(click.Context(command), sub))
    assert all(name in specs for option in options for name in option.opts), (sub, specs)
    other = "--all-nodes" if sub == "delete" else "--yes"
    assert other not in specs, specs  # another subcommand's option


@pytest.mark.slow
def test_pip_install_puts_the_man_pages_where_man_finds_them(tmp_path):
    """A wheel of the project installed into a prefix (a venv's, /usr/local, ~/.local alike):
    the pages land in <prefix>/share/man/man1 and man finds them through <prefix>/bin on PATH.
    (Built from a copy, so the checkout gets no build/; installed with --ignore-installed, so
    this venv's own nsqcli stays.)"""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "nsqcli", "man", "completions"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                             if (ROOT / name).is_dir() else {}))
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    wheels = tmp_path / "wheels"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                             str(wheels), str(source)], capture_output=True, text=True, env=env,
                            timeout=600)
    if result.returncode != 0 and "setuptools" in result.stderr:
        pytest.skip("cannot build: no setuptools for pip's build isolation (offline?)")
    assert result.returncode == 0, result.stderr
    prefix = tmp_path / "prefix"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                             "--ignore-installed", "--no-warn-script-location", "--prefix",
                             str(prefix), str(next(wheels.glob("nsqcli-*.whl")))],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    share = prefix / "share"
    for page in (ROOT / "man").glob("*.1"):
        assert (share / "man" / "man1" / page.name).read_text() == page.read_text()
    for shell, name in (("bash-completion/completions", "nsqcli"), ("zsh/site-functions", "_nsqcli"),
                        ("fish/vendor_completions.d", "nsqcli.fish")):
        assert (share / shell / name).exists(), shell
    if shutil.which("man") is None or shutil.which("manpath") is None:
        pytest.skip("no man-db here to look the pages up")
    assert (prefix / "bin" / "nsq-tail").exists()
    lookup = subprocess.run(["man", "-w", "nsq-tail"], capture_output=True, text=True,
                            env={"PATH": f"{prefix / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
                                 "LANG": "C"})
    assert lookup.stdout.strip() == str(share / "man" / "man1" / "nsq-tail.1"), lookup


def test_exit_status_sections_say_what_the_help_says():
    # one text per tool: a status the --help epilog gives a meaning of its own is told so in
    # the man page, word for word
    from nsqcli.cli.exit_codes import EXIT_STATUS_HELP, status_meanings

    generic = status_meanings(EXIT_STATUS_HELP)
    checked = 0
    for program, command in [*GEN_DOCS.tools(), *GEN_DOCS.tools(GEN_DOCS.MAN_ONLY)]:
        page = (GEN_DOCS.ROOT / "man" / f"{program}.1").read_text()
        section = page[page.index(".SH EXIT STATUS"):page.index(".SH EXAMPLES")]
        for status, meaning in status_meanings(command.epilog).items():
            assert f"\\fB{int(status)}\\fR" in section, (program, status)
            if meaning != generic[status]:
                assert GEN_DOCS._roff(meaning) in section, (program, meaning)
                checked += 1
    assert checked >= 5  # nsq-to-nsq, nsq-stat, the consumers, the admin pages, dev-server
