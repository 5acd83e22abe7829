"""Every operation name the code can write into the operation log, found in the source (AST).

Pass 1 finds every function with a parameter that names an operation (``action``, ``*_action``,
``action_*``); pass 2 takes the string literals given to those parameters at every call (by position
or keyword), to ``action=`` of any call, constants named ``ACTION``/``*_ACTION`` and such parameters'
defaults. Operation names built at run time are listed in ``DYNAMIC``."""
import ast
import pathlib
import re

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _is_action(name: str) -> bool:
    return name == "action" or name.endswith("_action") or name.startswith("action_")


def _strings(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)


def _params(fn) -> list[str]:
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    return names[1:] if names and names[0] in ("self", "cls") else names


def scan(root: pathlib.Path) -> dict[str, str]:
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.py"))}
    takes: dict[str, set] = {}          # function name -> {(index, param name)}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for i, name in enumerate(_params(node)):
                    if _is_action(name):
                        takes.setdefault(node.name, set()).add((i, name))
                for a in node.args.kwonlyargs:
                    if _is_action(a.arg):
                        takes.setdefault(node.name, set()).add((None, a.arg))
    found: dict[str, str] = {}
    for p, tree in trees.items():
        for node in ast.walk(tree):
            hits = []
            if isinstance(node, ast.Call):
                fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                hits += [s for kw in node.keywords if _is_action(kw.arg or "") for s in _strings(kw.value)]
                for i, name in takes.get(fn, ()):
                    if i is not None and i < len(node.args):
                        hits += list(_strings(node.args[i]))
            elif isinstance(node, ast.Assign):
                hits += [s for t in node.targets if isinstance(t, ast.Name) and _is_action(t.id.lower())
                         for s in _strings(node.value)]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults \
                    + node.args.kw_defaults
                hits += [s for a, d in zip(args, defaults) if _is_action(a.arg) and d is not None for s in _strings(d)]
            for h in hits:
                if NAME.match(h):
                    found.setdefault(h, f"{p}:{getattr(node, 'lineno', '?')}")
    return found
