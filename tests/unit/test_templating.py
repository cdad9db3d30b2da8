"""Template overlays, plugin layers, and template errors that name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generator import model
from generator.expand import Settings
from generator.render import Renderer, render_modelserving
from generator.templating import TemplateError, TemplateSet
from tests.unit import specs


def render(doc: dict[str, Any], folder: Path | None) -> list[dict[str, Any]]:
    templates = TemplateSet(folder)
    ms = model.load(doc, plugins=templates.plugins())
    return render_modelserving(Renderer(templates, ms, Settings()))


def pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "Pod"]


def test_a_user_file_replaces_the_builtin_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "service.j2").write_text(
        '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": {{ service.name | tojson }}},'
        ' "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}'
    )
    services = [o for o in render(specs.pd(), tmp_path) if o["kind"] == "Service"]
    assert services[0] == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "sample-0-prefill-0-0"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]},
    }


def test_a_user_file_can_extend_the_builtin_and_override_one_block(tmp_path: Path) -> None:
    (tmp_path / "pod.j2").write_text(
        '{% extends "pod.j2" %}\n'
        "{% block labels %}"
        '{{ super() | fromjson | merge({"team": "serving"}) | tojson }}'
        "{% endblock %}\n"
    )
    pod = pods(render(specs.pd(), tmp_path))[0]
    assert pod["metadata"]["labels"]["team"] == "serving"
    assert pod["metadata"]["labels"]["modelserving.volcano.sh/role"] == "prefill"
    assert pod["spec"]["hostname"] == "sample-0-prefill-0-0"


def test_a_layer_can_be_named_explicitly(tmp_path: Path) -> None:
    (tmp_path / "pod.j2").write_text(
        '{% extends "builtin:pod.j2" %}{% block spec %}'
        '{{ pod.spec | merge({"priorityClassName": "high"}) | tojson }}{% endblock %}'
    )
    assert pods(render(specs.pd(), tmp_path))[0]["spec"]["priorityClassName"] == "high"


def test_user_overlays_sit_above_plugins(tmp_path: Path) -> None:
    (tmp_path / "pod.j2").write_text(
        '{% extends "pod.j2" %}{% block labels %}'
        '{{ super() | fromjson | merge({"top": "user"}) | tojson }}{% endblock %}'
    )
    doc = specs.edit(specs.lws_owned(specs.pd()), "spec.plugins", [{"name": "lws-standard-labels"}])
    labels = pods(render(doc, tmp_path))[0]["metadata"]["labels"]
    assert labels["top"] == "user"
    assert labels["leaderworkerset.sigs.k8s.io/name"] == "sample"


def test_user_plugins_are_found_in_the_plugins_folder(tmp_path: Path) -> None:
    plugin = tmp_path / "plugins" / "gpu-tolerations"
    plugin.mkdir(parents=True)
    (plugin / "pod.j2").write_text(
        '{% extends "pod.j2" %}{% block spec %}{{ super() | fromjson | merge({"tolerations":'
        ' [{"key": plugins["gpu-tolerations"].key, "operator": "Exists"}]}) | tojson }}'
        "{% endblock %}"
    )
    doc = specs.edit(
        specs.pd(),
        "spec.plugins",
        [{"name": "gpu-tolerations", "config": {"key": "nvidia.com/gpu"}}],
    )
    assert pods(render(doc, tmp_path))[0]["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    assert "gpu-tolerations" in TemplateSet(tmp_path).plugins()


def test_templates_may_write_yaml(tmp_path: Path) -> None:
    (tmp_path / "service.j2").write_text(
        "apiVersion: v1\nkind: Service\n"
        "metadata:\n  name: {{ service.name }}\nspec:\n  clusterIP: None\n"
    )
    services = [o for o in render(specs.pd(), tmp_path) if o["kind"] == "Service"]
    assert services[0]["metadata"] == {"name": "sample-0-prefill-0-0"}


def error_of(tmp_path: Path, name: str, text: str) -> TemplateError:
    (tmp_path / name).write_text(text)
    with pytest.raises(TemplateError) as err:
        render(specs.pd(), tmp_path)
    return err.value


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    err = error_of(
        tmp_path, "pod.j2", '{% extends "pod.j2" %}\n\n{% block labels %}{{ pod.labels | tojson }\n'
    )
    assert err.file == str(tmp_path / "pod.j2")
    assert err.line == 3
    assert str(err).startswith(f"{tmp_path / 'pod.j2'}:3: ")


def test_an_undefined_variable_names_the_file_and_line(tmp_path: Path) -> None:
    err = error_of(
        tmp_path,
        "service.j2",
        '{\n  "apiVersion": "v1",\n  "kind": {{ service.kind_of_thing | tojson }}\n}',
    )
    assert (err.file, err.line) == (str(tmp_path / "service.j2"), 3)
    assert "kind_of_thing" in err.message


def test_an_error_in_a_parent_template_names_the_parent(tmp_path: Path) -> None:
    (tmp_path / "base.j2").write_text('{\n"a": {{ nothing }}\n}')
    err = error_of(tmp_path, "service.j2", '{% extends "base.j2" %}')
    assert (err.file, err.line) == (str(tmp_path / "base.j2"), 2)


def test_output_that_is_not_data_is_a_template_error(tmp_path: Path) -> None:
    err = error_of(
        tmp_path,
        "service.j2",
        '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": {{ service.name | tojson }}}',
    )
    assert err.file == str(tmp_path / "service.j2")
    assert "neither JSON nor YAML" in err.message


def test_output_without_identity_is_a_template_error(tmp_path: Path) -> None:
    err = error_of(
        tmp_path, "service.j2", '{"apiVersion": "v1", "kind": "Service", "metadata": {}}'
    )
    assert "metadata.name" in err.message


def test_extending_a_missing_template_is_reported(tmp_path: Path) -> None:
    err = error_of(tmp_path, "service.j2", '{% extends "nowhere.j2" %}')
    assert "nowhere.j2" in err.message


def test_the_sandbox_refuses_unsafe_attribute_access(tmp_path: Path) -> None:
    err = error_of(tmp_path, "service.j2", "{{ service.__class__.__mro__ }}")
    assert err.file == str(tmp_path / "service.j2")
    assert "unsafe" in err.message or "SecurityError" in err.message


def test_a_plugin_listed_twice_runs_twice_in_order_and_the_later_entry_wins() -> None:
    first = {
        "runtimeClassName": "first",
        "annotations": {"from": "first", "only-first": "yes"},
        "env": [{"name": "A", "value": "1"}],
    }
    second = {"annotations": {"from": "second"}, "env": [{"name": "A", "value": "2"}]}
    doc = specs.edit(
        specs.pd(),
        "spec.plugins",
        [
            {"name": "demo-pod-tweaks", "config": first},
            {"name": "demo-pod-tweaks", "config": second},
        ],
    )
    pod = pods(render(doc, None))[0]
    annotations = pod["metadata"]["annotations"]
    assert (annotations["from"], annotations["only-first"]) == ("second", "yes")
    assert pod["spec"]["runtimeClassName"] == "first"
    env = [e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "A"]
    assert env == [{"name": "A", "value": "2"}]


@pytest.mark.parametrize(
    "scopes",
    [
        pytest.param([{}, {}], id="both entries apply to every pod"),
        pytest.param(
            [{"roles": ["prefill"]}, {"roles": ["prefill"], "target": "Entry"}],
            id="both entries are scoped",
        ),
    ],
)
def test_a_plugin_listed_twice_with_or_without_scope_renders(scopes: list[dict[str, Any]]) -> None:
    chain = [{"name": "lws-standard-labels", **({"scope": s} if s else {})} for s in scopes]
    doc = specs.edit(specs.lws_owned(specs.pd()), "spec.plugins", chain)
    labels = pods(render(doc, None))[0]["metadata"]["labels"]
    assert labels["leaderworkerset.sigs.k8s.io/name"] == "sample"


def test_a_failing_entry_of_a_plugin_listed_twice_is_a_template_error_naming_it(
    tmp_path: Path,
) -> None:
    plugin = tmp_path / "plugins" / "picky"
    plugin.mkdir(parents=True)
    (plugin / "pod.j2").write_text(
        '{% extends "pod.j2" %}\n{% block labels %}{{ super() | fromjson'
        ' | merge({"picky": plugins["picky"].value}) | tojson }}{% endblock %}'
    )
    doc = specs.edit(
        specs.pd(),
        "spec.plugins",
        [{"name": "picky", "config": {"value": "ok"}}, {"name": "picky", "config": {}}],
    )
    with pytest.raises(TemplateError) as caught:
        render(doc, tmp_path)
    assert caught.value.file is not None
    assert caught.value.file.endswith("plugins/picky/pod.j2")
    assert caught.value.line == 2
    assert "value" in caught.value.message
