"""Every name in pynsq 0.9.1's ``nsq.__all__`` exists in nsqcli.lib with a compatible signature.

Compatible means: code that calls pynsq's function/class/method works unchanged — every pynsq
parameter exists with the same name, position and default, and anything we added is optional.
Also: the layering rules (protocol core loads no tornado; nsqcli.lib imports no click/rich).
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

nsq_pynsq = pytest.importorskip("nsq")  # pynsq 0.9.1, installed in the dev venv
import nsqcli.lib as ours  # noqa: E402

P = inspect.Parameter

#: defaults that differ on purpose (pynsq's own version string is not ours)
DIFFERENT_DEFAULTS = {("AsyncConn", "user_agent")}
#: parameters we keep from pynsq's documented (0.7) signature that 0.9.1 dropped; they shift the
#: positions after them, which only matters to a caller passing 15+ positional arguments
KEPT_FROM_OLDER_PYNSQ = {("AsyncConn", "io_loop")}


def _callable_signature(obj):
    return inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)


def signature_problems(theirs: inspect.Signature, mine: inspect.Signature, where: str) -> list[str]:
    problems = []
    their_params = list(theirs.parameters.values())
    my_params = list(mine.parameters.values())
    my_by_name = mine.parameters
    has_var_kw = any(p.kind is P.VAR_KEYWORD for p in my_params)
    has_var_pos = any(p.kind is P.VAR_POSITIONAL for p in my_params)
    owner = where.split(".")[0]
    positional = [p for p in my_params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
                  and (owner, p.name) not in KEPT_FROM_OLDER_PYNSQ]
    for index, param in enumerate(their_params):
        if param.kind in (P.VAR_KEYWORD, P.VAR_POSITIONAL):
            kind_ok = any(p.kind is param.kind for p in my_params)
            if not kind_ok:
                problems.append(f"{where}: pynsq accepts {param} but we do not")
            continue
        mine_param = my_by_name.get(param.name)
        if mine_param is None:
            if not (has_var_kw and (has_var_pos or param.kind is P.KEYWORD_ONLY)):
                problems.append(f"{where}: parameter {param.name!r} is missing")
            continue
        if param.kind is P.POSITIONAL_OR_KEYWORD:
            if mine_param.kind is not P.POSITIONAL_OR_KEYWORD:
                problems.append(f"{where}: {param.name!r} must stay positional-or-keyword")
            elif index >= len(positional) or positional[index].name != param.name:
                problems.append(f"{where}: {param.name!r} is not at position {index}")
        if param.default is not P.empty and (owner, param.name) not in DIFFERENT_DEFAULTS:
            if mine_param.default is P.empty:
                problems.append(f"{where}: {param.name!r} lost its default {param.default!r}")
            elif mine_param.default != param.default:
                problems.append(f"{where}: default of {param.name!r} is {mine_param.default!r}, "
                                f"pynsq has {param.default!r}")
        elif param.default is P.empty and mine_param.default is not P.empty:
            pass  # becoming optional is compatible
    their_names = set(theirs.parameters)
    for param in my_params:
        if param.name in their_names or param.kind in (P.VAR_KEYWORD, P.VAR_POSITIONAL):
            continue
        if param.default is P.empty:
            problems.append(f"{where}: our extra parameter {param.name!r} is required")
    return problems


def test_signature_checker_catches_incompatibilities():
    def theirs(a, b=1, **kwargs): ...
    def renamed(a, c=1, **kwargs): ...
    def reordered(b=1, a=None, **kwargs): ...
    def new_default(a, b=2, **kwargs): ...
    def required_extra(a, b=1, *, x, **kwargs): ...
    def compatible(a, b=1, *, x=0, **kwargs): ...
    sig = inspect.signature
    assert signature_problems(sig(theirs), sig(compatible), "f") == []
    for bad in (renamed, reordered, new_default, required_extra):
        assert signature_problems(sig(theirs), sig(bad), "f"), bad.__name__


@pytest.mark.parametrize("name", nsq_pynsq.__all__)
def test_every_pynsq_name_is_exported_with_a_compatible_signature(name):
    theirs = getattr(nsq_pynsq, name)
    assert name in ours.__all__
    mine = getattr(ours, name)
    if not callable(theirs):
        assert mine == theirs
        return
    assert callable(mine)
    problems = signature_problems(_callable_signature(theirs), _callable_signature(mine), name)
    if inspect.isclass(theirs):
        assert inspect.isclass(mine), f"{name} must stay a class (users subclass it)"
        for attr, value in vars(theirs).items():
            if attr.startswith("_") or not isinstance(value, (classmethod, staticmethod)) and not callable(value):
                continue
            mine_attr = getattr(mine, attr, None)
            if mine_attr is None:
                problems.append(f"{name}.{attr} is missing")
                continue
            their_sig = inspect.signature(getattr(theirs, attr))
            problems += signature_problems(their_sig, inspect.signature(mine_attr), f"{name}.{attr}")
    assert problems == []


def test_writer_method_signatures_match_pynsq_exactly_for_positional_use():
    for method in ("pub", "mpub", "dpub", "heartbeat", "connect_to_nsqd"):
        theirs = inspect.signature(getattr(nsq_pynsq.Writer, method))
        mine = inspect.signature(getattr(ours.Writer, method))
        assert list(mine.parameters)[: len(theirs.parameters)] == list(theirs.parameters)


def test_errors_keep_pynsq_hierarchy():
    from nsqcli.lib import errors

    for cls in (errors.SendError, errors.ConnectionClosedError, errors.IntegrityError,
                errors.NSQError, errors.ProtocolError):
        assert issubclass(cls, ours.Error)
    assert ours.SendError("no open connections").msg == "no open connections"


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_protocol_core_loads_no_tornado_and_no_io_modules():
    out = _run(
        "import sys, nsqcli.lib.protocol, nsqcli.lib.protocol.client\n"
        "nsqcli.lib.protocol.pub('t', b'x')\n"
        "print(sorted(m for m in ('tornado', 'asyncio', 'socket', 'click', 'rich') if m in sys.modules))"
    )
    assert out == "[]"


def test_library_imports_no_click_or_rich_and_never_the_broker():
    modules = sorted({mod for mod in ours._EXPORTS.values()})
    code = (
        "import sys, importlib, pkgutil, nsqcli.lib as nsq\n"
        "for name in nsq.__all__: getattr(nsq, name)\n"
        f"for mod in {modules!r}: importlib.import_module('nsqcli.lib.' + mod)\n"
        "for info in pkgutil.iter_modules(nsq.__path__): importlib.import_module('nsqcli.lib.' + info.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich') "
        "or m.startswith('nsqcli.broker')))"
    )
    assert _run(code) == "[]"
