"""The one Jinja2 setup: a sandbox, strict undefined, and layered template folders.

Layers, bottom to top: the built-in templates, the plugins that apply to the object (one
layer per `spec.plugins` entry, in list order, so an entry listed twice is two layers and the
later one's changes win), then the user's `--templates` folder. A bare name (`pod.j2`) means the
topmost layer that has it. Inside a template, `{% extends "pod.j2" %}` from a template that is
itself `pod.j2` means "the layer below me", so an overlay can extend what it replaces and
override only some blocks; `{% extends "builtin:pod.j2" %}` names a layer explicitly.

Templates write JSON (which is YAML too); each block of a built-in template is one JSON value,
so an override replaces a value, and `super() | fromjson` gives the value it replaces.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

BUILTIN = "builtin"
USER = "user"
PLUGIN_DIR = "plugins"
# The variable holding, for each plugin layer, the `plugins` mapping that layer sees (its own
# entry's config under its own name); see _LayeredLoader.load.
LAYER_PLUGINS = "_plugin_layers"


class TemplateError(Exception):
    """A template failed: names the template file (and line, when known)."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        where = f"{file}:{line}" if file and line else (file or "template")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Layer:
    label: str
    root: Path

    def has(self, name: str) -> bool:
        return (self.root / name).is_file()


def builtin_root() -> Path:
    """Installed: generator/builtin_templates; in a source checkout: the repository's templates/."""
    here = Path(__file__).resolve().parent
    installed = here / "builtin_templates"
    return installed if installed.is_dir() else here.parent / "templates"


# Plain JSON: the output is parsed as data, never embedded in HTML, so no escaping. One encoder
# for all calls: json.dumps with options builds a new one each time, which shows in profiles.
def _undefined(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        str(value)  # a StrictUndefined raises here, naming the missing variable
        return None
    raise TypeError(f"{type(value).__name__} values cannot be written as JSON")


_tojson = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_undefined).encode


def _fromjson(text: str) -> Any:
    return json.loads(str(text))


def _merge(base: Mapping[str, Any] | None, *others: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(base or {})
    for other in others:
        out.update(other or {})
    return out


def _sha1(text: Any) -> str:
    return hashlib.sha1(str(text).encode()).hexdigest()


def _add_env(spec: Mapping[str, Any], env: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A pod spec whose every container gets `env` appended (same names replaced)."""
    names = {e["name"] for e in env}
    containers = [
        {**c, "env": [e for e in c.get("env", ()) if e.get("name") not in names] + list(env)}
        for c in spec.get("containers", ())
    ]
    return {**spec, "containers": containers}


FILTERS: dict[str, Callable[..., Any]] = {
    "tojson": _tojson,
    "fromjson": _fromjson,
    "merge": _merge,
    "sha1": _sha1,
    "add_env": _add_env,
}


class _LayeredLoader(jinja2.BaseLoader):
    def __init__(self, layers: tuple[Layer, ...], plugin_positions: Mapping[str, int]) -> None:
        self.layers = {layer.label: layer for layer in layers}
        self.plugin_positions = plugin_positions

    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        """A plugin layer's template, with `plugins` rebound at the top of each of its blocks to
        the mapping of its own chain entry: the same plugin listed twice is two layers of the
        same file, and each must see its own entry's config (docs/behaviour.md#plugins).

        (Jinja asks loaders that combine other loaders not to override this; this one does
        not combine loaders.)
        """
        position = self.plugin_positions.get(name.partition(":")[0])
        if position is None:
            return super().load(environment, name, globals)
        source, filename, uptodate = self.get_source(environment, name)
        tree = environment.parse(source, name, filename)
        for block in tree.find_all(nodes.Block):
            block.body.insert(0, _own_plugins(environment, position, block.lineno))
        if not any(tree.find_all(nodes.Extends)):
            tree.body.insert(0, _own_plugins(environment, position, 1))
        code = environment.compile(tree, name, filename)
        return environment.template_class.from_code(
            environment, code, environment.make_globals(globals), uptodate
        )

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        label, _, name = template.partition(":")
        layer = self.layers.get(label)
        if layer is None or not name or not layer.has(name):
            raise jinja2.TemplateNotFound(template)
        path = layer.root / name
        return path.read_text(encoding="utf-8"), str(path), lambda: True


def _own_plugins(environment: jinja2.Environment, position: int, lineno: int) -> nodes.Assign:
    """`{% set plugins = _plugin_layers[position] %}`, as a node."""
    layers = nodes.Name(LAYER_PLUGINS, "load")
    value = nodes.Getitem(layers, nodes.Const(position), "load")
    assign = nodes.Assign(nodes.Name("plugins", "store"), value)
    assign.set_lineno(lineno)
    assign.set_environment(environment)
    return assign


class _LayeredEnvironment(SandboxedEnvironment):
    def __init__(self, layers: tuple[Layer, ...], plugin_positions: Mapping[str, int]) -> None:
        super().__init__(
            loader=_LayeredLoader(layers, plugin_positions),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.stack = layers
        self.filters.update(FILTERS)

    def qualify(self, name: str, below: str | None = None) -> str:
        """`label:name` of the topmost layer holding `name`, or the topmost under `below`."""
        candidates = list(reversed(self.stack))
        if below is not None:
            labels = [layer.label for layer in candidates]
            candidates = candidates[labels.index(below) + 1 :]
        for layer in candidates:
            if layer.has(name):
                return f"{layer.label}:{name}"
        raise jinja2.TemplateNotFound(name)

    def join_path(self, template: str, parent: str) -> str:
        if ":" in template:
            return template
        parent_label, _, parent_name = parent.partition(":")
        below = parent_label if template == parent_name else None
        return self.qualify(template, below)


class TemplateSet:
    """Built-in templates overlaid with plugins and a user folder; renders objects as data."""

    def __init__(self, user_dir: Path | None = None) -> None:
        self.user_dir = user_dir
        self.builtin = Layer(BUILTIN, builtin_root())
        self.user = Layer(USER, user_dir) if user_dir is not None else None
        self._envs: dict[tuple[str, ...], _LayeredEnvironment] = {}
        self._templates: dict[tuple[tuple[str, ...], str], jinja2.Template] = {}
        self._globals: dict[int, dict[str, Any]] = {}

    def plugins(self) -> frozenset[str]:
        """Plugin names available: bundled ones and any under the user folder's plugins/."""
        roots = [self.builtin.root] + ([self.user.root] if self.user else [])
        return frozenset(
            p.name
            for root in roots
            if (root / PLUGIN_DIR).is_dir()
            for p in (root / PLUGIN_DIR).iterdir()
            if p.is_dir()
        )

    def _plugin_layer(self, position: int, name: str) -> Layer:
        # The position makes each chain entry its own layer, even for a name listed twice.
        label = f"plugin/{position}/{name}"
        if self.user is not None and (self.user.root / PLUGIN_DIR / name).is_dir():
            return Layer(label, self.user.root / PLUGIN_DIR / name)
        return Layer(label, self.builtin.root / PLUGIN_DIR / name)

    def _environment(self, plugins: tuple[str, ...]) -> _LayeredEnvironment:
        env = self._envs.get(plugins)
        if env is None:
            chain = [self._plugin_layer(k, p) for k, p in enumerate(plugins)]
            layers = (self.builtin, *chain)
            if self.user is not None:
                layers = (*layers, self.user)
            positions = {layer.label: k for k, layer in enumerate(chain)}
            env = self._envs[plugins] = _LayeredEnvironment(layers, positions)
        return env

    def template(self, name: str, plugins: tuple[str, ...] = ()) -> jinja2.Template:
        key = (plugins, name)
        found = self._templates.get(key)
        if found is None:
            env = self._environment(plugins)
            try:
                found = env.get_template(env.qualify(name))
            except jinja2.TemplateSyntaxError as err:
                raise TemplateError(err.message or str(err), err.filename, err.lineno) from None
            except jinja2.TemplateNotFound as err:
                raise TemplateError(
                    f"template {err.name!r} not found in any template folder", name
                ) from None
            self._templates[key] = found
        return found

    def render(
        self,
        name: str,
        variables: Mapping[str, Any],
        plugins: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> Any:
        """Render `name` and parse its output (JSON, or YAML) into data.

        `plugins` is the chain that applies, in order: (name, config) per entry. Templates see
        `plugins`, each config by name (a later entry of the same name wins); inside a plugin
        layer, its own name gives its own entry's config.
        """
        names = tuple(name for name, _ in plugins)
        template = self.template(name, names)
        by_name = dict(plugins)
        variables = {
            **variables,
            "plugins": by_name,
            LAYER_PLUGINS: [{**by_name, entry: config} for entry, config in plugins],
        }
        try:
            text = self._run(template, variables)
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError(err.message or str(err), err.filename, err.lineno) from None
        except jinja2.TemplateNotFound as err:
            raise TemplateError(
                f"template {err.name!r} not found in any template folder", template.filename
            ) from None
        except Exception as err:
            file, line = _template_frame(err, template.filename)
            raise TemplateError(f"{type(err).__name__}: {err}", file, line) from None
        return parse_output(text, template.filename or name)

    def _run(self, template: jinja2.Template, variables: Mapping[str, Any]) -> str:
        # Template.render() copies the template's globals (a ChainMap) into every context; with
        # thousands of pods per render that copy dominates, so it is made once per template.
        base = self._globals.get(id(template))
        if base is None:
            base = self._globals[id(template)] = dict(template.globals)
        try:
            context = template.new_context({**base, **variables}, shared=True)
            return "".join(template.root_render_func(context))
        except Exception:
            template.environment.handle_exception()


def _template_frame(err: BaseException, default: str | None) -> tuple[str | None, int | None]:
    # Jinja rewrites tracebacks so template frames carry the template's file and line.
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.endswith(".j2")]
    if not frames:
        return default, None
    return frames[-1].filename, frames[-1].lineno


def parse_output(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_err:
        try:
            return yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError:
            line = text.splitlines()[json_err.lineno - 1] if text.strip() else ""
            raise TemplateError(
                f"output is neither JSON nor YAML: {json_err.msg} at output line "
                f"{json_err.lineno}: {line.strip()[:80]!r}",
                source,
            ) from None


@cache
def _yaml_loader() -> type[yaml.SafeLoader]:
    from generator.documents import Loader  # noqa: PLC0415 - only on the rare YAML path

    return Loader
