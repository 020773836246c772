"""The subset of ROS 2 launch XML that the pip-only runner (`xsim launch`) reads; ROS-free.

The same file runs under a ROS 2 distro with `ros2 launch xsim_ros <file>` (launch_xml). Supported, with the
launch_xml meanings:
  <launch>                                  root
  <arg name= default= description=/>        launch argument; without default it is required (name:=value)
  <let name= value=/>                       a variable ($(var name))
  <node pkg= exec= name= namespace= args= if= unless= output=>   a node
      <param name= value=/>                 one parameter (value typed as on the command line, -p name:=value)
      <param from=FILE/>                    a ROS 2 parameter file (--params-file)
      <remap from= to=/>                    a remapping rule
  <group if= unless=> ... </group>          conditional block (scoped=false semantics are not needed here)
Substitutions, nested: $(arg NAME), $(var NAME), $(find-pkg-share PKG), $(env NAME [DEFAULT]), $(dirname), and
$(eval "'A' == 'B'") / $(eval "'A' != 'B'") (string comparison only; gives True / False as launch's eval does).
`if` / `unless` take 'true' / 'false' (any case) or '1' / '0'.
Errors (InputError, one line) name the file, the element and the value.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

_SUBST = re.compile(r"\$\(([^()$]*)\)")
_EVAL = re.compile(r"^\s*'([^']*)'\s*(==|!=)\s*'([^']*)'\s*$")


@dataclass
class NodeAction:
    """One node to start: package, executable, node name, namespace ('' = root), parameter files and single
    parameters (name, value text) in document order, remappings (from, to), extra --ros-args text."""

    package: str
    executable: str
    name: str
    namespace: str = ""
    params_files: list[str] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    args: str = ""

    def ros_args(self) -> list[str]:
        """The node's command-line arguments as `ros2 run` would get them (after --ros-args)."""
        out = ["--ros-args"]
        for f in self.params_files:
            out += ["--params-file", f]
        for name, value in self.params:
            out += ["-p", f"{name}:={value}"]
        for src, dst in self.remaps:
            out += ["-r", f"{src}:={dst}"]
        return out


@dataclass
class LaunchDescription:
    """Declared arguments (name -> default or None if required, description) and the resolved nodes."""

    path: Path
    arguments: dict[str, tuple[str | None, str]]
    nodes: list[NodeAction]


def default_share_dir(package: str) -> str | None:
    """share/<package> of an ament index on AMENT_PREFIX_PATH or under sys.prefix; for xsim_ros also the source
    checkout (the directory holding launch/ and package.xml)."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    for prefix in prefixes:
        share = Path(prefix) / "share" / package
        if (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / package).exists() \
                or (share / "package.xml").exists():
            return str(share)
    if package == "xsim_ros":
        root = Path(__file__).resolve().parents[2]
        if (root / "package.xml").is_file() and (root / "launch").is_dir():
            return str(root)
    return None


def _truth(where: str, text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise InputError(f"{where}: condition must be true/false, got {text!r}")


class _Context:
    def __init__(self, path: Path, overrides: dict[str, str], share: Callable[[str], str | None]) -> None:
        self.path = path
        self.overrides = dict(overrides)
        self.share = share
        self.values: dict[str, str] = {}
        self.arguments: dict[str, tuple[str | None, str]] = {}

    def where(self, el: ET.Element) -> str:
        return f"{self.path}: <{el.tag}{' name=' + repr(el.get('name')) if el.get('name') else ''}>"

    def resolve(self, text: str | None, where: str) -> str:
        if text is None:
            return ""
        for _ in range(50):
            match = _SUBST.search(text)
            if match is None:
                return text
            try:
                words = shlex.split(match.group(1))
            except ValueError as err:
                raise InputError(f"{where}: bad substitution $({match.group(1)}) ({err})") from None
            text = text[:match.start()] + self._one(words, where) + text[match.end():]
        raise InputError(f"{where}: substitutions nested too deeply in {text!r}")

    def _one(self, words: list[str], where: str) -> str:
        if not words:
            raise InputError(f"{where}: empty substitution $()")
        kind, rest = words[0], words[1:]
        if kind in ("arg", "var") and len(rest) == 1:
            if rest[0] not in self.values:
                raise InputError(f"{where}: $({kind} {rest[0]}): not defined")
            return self.values[rest[0]]
        if kind == "find-pkg-share" and len(rest) == 1:
            found = self.share(rest[0])
            if found is None:
                raise InputError(f"{where}: $(find-pkg-share {rest[0]}): package not found")
            return found
        if kind == "env" and len(rest) in (1, 2):
            if rest[0] in os.environ:
                return os.environ[rest[0]]
            if len(rest) == 2:
                return rest[1]
            raise InputError(f"{where}: $(env {rest[0]}): environment variable not set")
        if kind == "dirname" and not rest:
            return str(self.path.parent)
        if kind == "eval" and len(rest) == 1:
            compare = _EVAL.match(rest[0])
            if compare is None:
                raise InputError(f"{where}: $(eval {rest[0]!r}): this runner evaluates only 'A' == 'B' and "
                                 f"'A' != 'B'")
            equal = compare.group(1) == compare.group(3)
            return str(equal if compare.group(2) == "==" else not equal)
        raise InputError(f"{where}: unsupported substitution $({' '.join(words)})")

    def enabled(self, el: ET.Element) -> bool:
        where = self.where(el)
        if el.get("if") is not None and not _truth(where, self.resolve(el.get("if"), where)):
            return False
        if el.get("unless") is not None and _truth(where, self.resolve(el.get("unless"), where)):
            return False
        return True


def _required(ctx: _Context, el: ET.Element, attr: str) -> str:
    value = el.get(attr)
    if value is None:
        raise InputError(f"{ctx.where(el)}: attribute '{attr}' missing")
    return ctx.resolve(value, ctx.where(el))


def _node(ctx: _Context, el: ET.Element) -> NodeAction:
    where = ctx.where(el)
    package, executable = _required(ctx, el, "pkg"), _required(ctx, el, "exec")
    node = NodeAction(package, executable, ctx.resolve(el.get("name"), where) or executable,
                      ctx.resolve(el.get("namespace"), where).strip(), args=ctx.resolve(el.get("args"), where))
    for child in el:
        cwhere = ctx.where(child)
        if child.tag == "param":
            if child.get("from") is not None:
                path = Path(ctx.resolve(child.get("from"), cwhere))
                if not path.is_absolute():
                    path = ctx.path.parent / path
                if not path.is_file():
                    raise InputError(f"{cwhere}: parameter file {str(path)!r} not found")
                node.params_files.append(str(path))
            else:
                node.params.append((_required(ctx, child, "name"), _required(ctx, child, "value")))
        elif child.tag == "remap":
            node.remaps.append((_required(ctx, child, "from"), _required(ctx, child, "to")))
        else:
            raise InputError(f"{cwhere}: unsupported element inside <node>")
    return node


def _walk(ctx: _Context, parent: ET.Element, nodes: list[NodeAction]) -> None:
    for el in parent:
        if not isinstance(el.tag, str):
            continue
        where = ctx.where(el)
        if el.tag == "arg":
            name = el.get("name")
            if not name:
                raise InputError(f"{where}: attribute 'name' missing")
            default = el.get("default")
            ctx.arguments[name] = (default, el.get("description", ""))
            if name in ctx.overrides:
                ctx.values[name] = ctx.overrides[name]
            elif default is not None:
                ctx.values[name] = ctx.resolve(default, where)
            else:
                raise InputError(f"{ctx.path}: launch argument '{name}' is required (pass {name}:=VALUE)")
        elif el.tag == "let":
            ctx.values[_required(ctx, el, "name")] = _required(ctx, el, "value")
        elif el.tag == "node":
            if ctx.enabled(el):
                nodes.append(_node(ctx, el))
        elif el.tag == "group":
            if ctx.enabled(el):
                _walk(ctx, el, nodes)
        else:
            raise InputError(f"{where}: unsupported launch element (this runner reads launch, arg, let, node, "
                             f"param, remap, group)")


def parse_launch(path: str | Path, overrides: dict[str, str] | None = None,
                 share: Callable[[str], str | None] = default_share_dir) -> LaunchDescription:
    """Read and resolve a launch XML file with launch arguments `overrides` ({name: value})."""
    path = Path(path).resolve()
    try:
        root = ET.parse(path).getroot()
    except OSError as err:
        raise InputError(f"{path}: cannot read launch file ({err.strerror})") from None
    except ET.ParseError as err:
        raise InputError(f"{path}: not valid XML ({err})") from None
    if root.tag != "launch":
        raise InputError(f"{path}: root element must be <launch>, got <{root.tag}>")
    ctx = _Context(path, overrides or {}, share)
    nodes: list[NodeAction] = []
    _walk(ctx, root, nodes)
    unknown = sorted(set(ctx.overrides) - set(ctx.arguments))
    if unknown:
        raise InputError(f"{path}: unknown launch argument(s) {', '.join(unknown)} (declared: "
                         f"{', '.join(ctx.arguments) or 'none'})")
    return LaunchDescription(path, ctx.arguments, nodes)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """['name:=value', ...] -> {name: value}; InputError for anything else."""
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise InputError(f"launch argument {item!r}: expected NAME:=VALUE")
        out[name] = value
    return out
