"""Write docs/api.md: the API reference of ``taichi_softras``, generated from its docstrings.

    python docs/make_api.py            # (re)write docs/api.md
    python docs/make_api.py --check    # exit 1 if docs/api.md is not what the docstrings give

The public names are ``taichi_softras.__all__`` (without one: the names ``taichi_softras/__init__.py``
binds on purpose, i.e. its imports, star imports and assignments, not submodules bound as a side
effect). Each gets its signature and docstring; a class also its public methods and properties
(those defined in taichi_softras, not inherited from torch); a module its own public functions and
classes (its ``__all__``, else what it defines). tests/test_api_docs.py fails when the file is stale.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"
PACKAGE = "taichi_softras"
SKIP = {"extra_repr"}  # torch.nn.Module plumbing


def public_names(package) -> list[str]:
    """``package.__all__``, else the names its ``__init__.py`` binds explicitly, in file order."""
    if hasattr(package, "__all__"):
        return list(package.__all__)
    tree = ast.parse(pathlib.Path(package.__file__).read_text())
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    module = importlib.import_module(f"{package.__name__}.{node.module}" if node.level else node.module)
                    names += list(getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]))
                else:
                    names.append(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            names += [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    seen: set[str] = set()
    return [n for n in names if not n.startswith("_") and not (n in seen or seen.add(n))]


def _clean(text: str) -> str:
    """Machine-independent text: no memory addresses, the package folder as ``<taichi_softras>``."""
    package_dir = str(pathlib.Path(importlib.import_module(PACKAGE).__file__).parent)
    text = text.replace(package_dir, f"<{PACKAGE}>")
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _signature(obj) -> str:
    try:
        return _clean(str(inspect.signature(obj)))
    except (TypeError, ValueError):
        return "(...)"


def _doc(obj) -> str:
    doc = obj.__doc__ if isinstance(getattr(obj, "__doc__", None), str) else None  # its own, not a base class's
    doc = inspect.cleandoc(doc) if doc else None
    return _clean(doc.strip()) if doc else "*(no docstring)*"


def _own(cls) -> list[tuple[str, object]]:
    """Public members a class gets from taichi_softras classes (its own and its bases'), sorted."""
    members: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        if not getattr(base, "__module__", "").startswith(PACKAGE):
            continue
        for name, value in vars(base).items():
            if not name.startswith("_") and name not in SKIP and (inspect.isfunction(value) or isinstance(value, (property, staticmethod, classmethod))):
                members[name] = value
    return sorted(members.items())


def _function(name: str, obj, level: str, prefix: str = "") -> list[str]:
    return [f"{level} `{prefix}{name}`", "", "```python", f"{name}{_signature(obj)}", "```", "", _doc(obj), ""]


def _class(name: str, cls, level: str, prefix: str = "") -> list[str]:
    lines = [f"{level} `{prefix}{name}`", "", "```python", f"class {name}{_signature(cls)}", "```", ""]
    bases = [b for b in cls.__bases__ if b is not object]
    if bases:
        lines += ["Bases: " + ", ".join(f"`{b.__module__}.{b.__qualname__}`" for b in bases), ""]
    lines += [_doc(cls), ""]
    for member, value in _own(cls):
        if isinstance(value, property):
            lines += [f"- **`{member}`** (property): " + _doc(value).replace("\n", "\n  "), ""]
        else:
            func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            sig = _signature(func)
            if not isinstance(value, staticmethod):  # drop self / cls
                sig = re.sub(r"^\((self|cls)(, )?", "(", sig)
            lines += [f"- **`{member}{sig}`**" + (" (classmethod)" if isinstance(value, classmethod) else "")
                      + (" (staticmethod)" if isinstance(value, staticmethod) else "") + ": "
                      + _doc(func).replace("\n", "\n  "), ""]
    return lines


def _module_members(module) -> list[str]:
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [n for n, v in vars(module).items() if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
            and getattr(v, "__module__", None) == module.__name__]


def _entry(name: str, obj) -> list[str]:
    if inspect.ismodule(obj):
        lines = [f"## `{name}`", "", f"Module `{obj.__name__}`.", "", _doc(obj), ""]
        prefix = f"{name}."
        for member in _module_members(obj):
            value = getattr(obj, member)
            if inspect.isclass(value):
                lines += _class(member, value, "###", prefix)
            elif callable(value):
                lines += _function(member, value, "###", prefix)
            else:
                lines += [f"### `{prefix}{member}`", "", f"`{member} = {_clean(repr(value))}`", ""]
        return lines
    if inspect.isclass(obj):
        return _class(name, obj, "##")
    if callable(obj):
        return _function(name, obj, "##")
    return [f"## `{name}`", "", f"`{name} = {_clean(repr(obj))}`", ""]


def render() -> str:
    """The text of docs/api.md."""
    package = importlib.import_module(PACKAGE)
    names = public_names(package)
    objects = {n: getattr(package, n) for n in names}
    order = sorted(names, key=lambda n: (inspect.ismodule(objects[n]), not inspect.isclass(objects[n]), n.lower()))
    lines = [
        f"# `{PACKAGE}` API reference",
        "",
        "Generated from the docstrings by `python docs/make_api.py` (do not edit by hand; "
        "`tests/test_api_docs.py` fails when this file is stale). Classes first, then functions and "
        "constants, then modules.",
        "",
        "Contents: " + ", ".join(f"[`{n}`](#{a})" for n, a in zip(order, _anchors(order))),
        "",
    ]
    for n in order:
        lines += _entry(n, objects[n])
    return "\n".join(lines).rstrip() + "\n"


def _anchors(names: list[str]) -> list[str]:
    """GitHub's heading anchors: lower case, a repeated one suffixed -1, -2, ..."""
    counts: dict[str, int] = {}
    anchors = []
    for n in names:
        a = re.sub(r"[^\w\- ]", "", n.lower()).replace(" ", "-")
        anchors.append(a if a not in counts else f"{a}-{counts[a]}")
        counts[a] = counts.get(a, 0) + 1
    return anchors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/make_api.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 if docs/api.md is stale")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    text = render()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python docs/make_api.py", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
