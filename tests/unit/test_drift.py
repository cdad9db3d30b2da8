"""Drift: `render --check` (the CI gate), `diff --against`, and render-to-render changes."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import drift
from generator.output import Bundle
from generator.terminal import Style
from sync import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "prefill-decode.yaml"
IMAGE = "vllm/vllm-openai:v0.13.0"


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def rendered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An output folder freshly written by `render --output-dir` for the 1P1D example."""
    out_dir = tmp_path / "out"
    assert run(capsys, "render", "-f", EXAMPLE, "--output-dir", out_dir)[0] == 0
    return out_dir


def test_check_finds_drift_and_passes_when_clean(
    rendered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "render", "-f", EXAMPLE, "--output-dir", rendered, "--check")
    assert code == 0
    assert out == (
        f"no drift: {rendered} holds exactly what the sources render (1 ModelServing folder(s))\n"
    )
    folder = rendered / "default" / "qwen-pd"
    pod = folder / "30-pod-qwen-pd-0-decode-0-0.yaml"
    pod.write_text(pod.read_text().replace(IMAGE, "vllm/vllm-openai:old"))
    (folder / "30-pod-extra.yaml").write_text("{}\n")
    (folder / "20-service-qwen-pd-0-decode-0-0.yaml").unlink()
    code, out, _ = run(capsys, "render", "-f", EXAMPLE, "--output-dir", rendered, "--check")
    assert code == 4
    assert out.splitlines() == [
        f"drift in {folder}:",
        "  + 20-service-qwen-pd-0-decode-0-0.yaml  (rendered, missing from the folder)",
        "  - 30-pod-extra.yaml  (in the folder, no longer rendered)",
        "  ~ 30-pod-qwen-pd-0-decode-0-0.yaml",
        f'      {{"op": "replace", "path": "/spec/containers/0/image", "value": "{IMAGE}"}}',
        "3 object file(s) differ from what the sources render; `msctl render` with the same "
        f"sources and --output-dir {rendered} updates them",
    ]


def test_diff_against_prints_the_check_report_and_exits_0(
    rendered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = rendered / "default" / "qwen-pd" / "30-pod-qwen-pd-0-prefill-0-1.yaml"
    pod.write_text(pod.read_text().replace(IMAGE, "vllm/vllm-openai:old"))
    check = run(capsys, "render", "-f", EXAMPLE, "--output-dir", rendered, "--check")
    diff = run(capsys, "diff", "-f", EXAMPLE, "--against", rendered)
    assert check[0] == 4
    assert diff == (0, check[1], "")
    assert "~ 30-pod-qwen-pd-0-prefill-0-1.yaml" in diff[1]


def test_diff_keeps_render_exit_codes_for_its_own_failures(
    tmp_path: Path, rendered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "diff", "-f", EXAMPLE)
    assert (code, out) == (1, "")
    assert "diff needs --against DIR" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace("replicas: 1\n  template", "replicas: -1\n  template")
    )
    code, out, err = run(capsys, "diff", "-f", bad, "--against", rendered)
    assert (code, out) == (2, "")
    assert err == f"{bad}:1: spec.replicas: must be greater than or equal to 0, got -1\n"
    templates = tmp_path / "t"
    templates.mkdir()
    (templates / "service.j2").write_text("{{ broken")
    code, out, err = run(
        capsys, "diff", "-f", EXAMPLE, "--against", rendered, "--templates", templates
    )
    assert (code, out) == (3, "")
    assert err.startswith(f"{templates / 'service.j2'}:1: ")
    assert run(capsys, "diff", "-f", tmp_path / "nope.yaml", "--against", rendered)[0] == 1


def test_diff_uses_the_render_options(rendered: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", "-f", EXAMPLE, "--against", rendered, "--no-podgroups")
    assert code == 0
    assert "- 10-podgroup-qwen-pd-0.yaml  (in the folder, no longer rendered)" in out


def test_a_missing_folder_and_a_folder_nothing_renders_are_one_line_each(
    rendered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = rendered / "default" / "renamed-away"
    shutil.copytree(rendered / "default" / "qwen-pd", old)
    (rendered / ".msctl-stage-x" / "a" / "b").mkdir(parents=True)  # hidden: never output
    (rendered / "kustomization.yaml").write_text("resources: []\n")  # not in a folder of ours
    shutil.rmtree(rendered / "default" / "qwen-pd")
    code, out, _ = run(capsys, "render", "-f", EXAMPLE, "--output-dir", rendered, "--check")
    assert code == 4
    assert out.splitlines()[:2] == [
        f"+ {rendered / 'default' / 'qwen-pd'}/  (7 file(s) rendered, folder missing)",
        f"- {old}/  (7 file(s); no ModelServing in the sources renders this folder any more)",
    ]
    assert out.splitlines()[2].startswith("14 object file(s) differ")


def test_a_missing_output_folder_is_drift_and_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "render", "-f", EXAMPLE, "--output-dir", tmp_path / "no", "--check")
    assert code == 4
    assert "folder missing" in out
    (tmp_path / "file").write_text("")
    code, out, err = run(capsys, "diff", "-f", EXAMPLE, "--against", tmp_path / "file")
    assert (code, out, err) == (1, "", f"{tmp_path / 'file'}: not a folder\n")


def test_line_endings_do_not_drift_but_bad_bytes_and_empty_files_do(
    rendered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = rendered / "default" / "qwen-pd"
    crlf = folder / "10-podgroup-qwen-pd-0.yaml"
    crlf.write_bytes(crlf.read_bytes().replace(b"\n", b"\r\n"))
    assert run(capsys, "render", "-f", EXAMPLE, "--output-dir", rendered, "--check")[0] == 0
    (folder / "20-service-qwen-pd-0-decode-0-0.yaml").write_bytes(b"kind: \xff\xfe\n")
    (folder / "20-service-qwen-pd-0-prefill-0-0.yaml").write_text("")
    code, out, _ = run(capsys, "render", "-f", EXAMPLE, "--output-dir", rendered, "--check")
    assert code == 4
    assert "~ 20-service-qwen-pd-0-decode-0-0.yaml" in out
    # An empty file is the YAML value null: the patch replaces the whole document.
    assert '{"op": "replace", "path": "", "value": {"apiVersion": "v1"' in out


def test_the_report_is_coloured_only_when_asked() -> None:
    change = drift.Change("30-pod-a.yaml", drift.CHANGED, [{"op": "remove", "path": "/x"}])
    report = drift.Report(Path("out"), [drift.FolderDrift(Path("out/ns/a"), [change])])
    assert "\x1b[" not in report.text()
    coloured = report.text(Style(color=True))
    assert "\x1b[33m~ 30-pod-a.yaml\x1b[0m" in coloured
    assert '      {"op": "remove", "path": "/x"}' in coloured


def test_one_diff_command_takes_a_folder_or_a_cluster() -> None:
    args = cli.build_parser().parse_args(["diff", "-f", "x.yaml", "--kubeconfig", "k"])
    assert (args.kubeconfig, args.against) == ("k", None)
    args = cli.build_parser().parse_args(["diff", "-f", "x.yaml", "--against", "out"])
    assert (args.kubeconfig, args.context, args.against) == (None, None, Path("out"))


def test_diff_refuses_a_folder_and_a_cluster_together(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "diff", "-f", EXAMPLE, "--against", "out", "--context", "c")
    assert (code, out) == (1, "")
    assert err.strip() == "use either --against DIR or --kubeconfig, not both"


# Render to render (what `msctl watch` reports).


def pod(name: str, image: str = "a:1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }


def test_changes_key_objects_by_kind_namespace_and_name() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "p0", "namespace": "ns"}}
    old = [Bundle("ns", "ms", [pod("p0"), pod("p1"), service])]
    new = [Bundle("ns", "ms", [pod("p0", "a:2"), pod("p2"), service])]
    (change,) = drift.changes(old, new)
    assert (change.namespace, change.name) == ("ns", "ms")
    assert change.added == [("Pod", "ns", "p2")]
    assert change.removed == [("Pod", "ns", "p1")]
    assert change.changed == [
        drift.ObjectChange(("Pod", "ns", "p0"), ("/spec/containers/0/image",))
    ]
    assert not change.empty


def test_changes_cover_new_and_vanished_modelservings_and_no_change() -> None:
    one, two = Bundle("ns", "one", [pod("a")]), Bundle("ns", "two", [pod("b")])
    first, second = drift.changes([one], [two])
    assert (first.name, first.added, first.removed) == ("two", [("Pod", "ns", "b")], [])
    assert (second.name, second.added, second.removed) == ("one", [], [("Pod", "ns", "a")])
    assert [c.empty for c in drift.changes([one], [copy.deepcopy(one)])] == [True]


def test_patch_paths_name_every_moved_path_once() -> None:
    old = {"a": [1, 2, 3], "b": {"c": 1}}
    new = {"a": [2, 3], "b": {"c": 2, "d": 1}}
    paths = drift.patch_paths(old, new)
    assert "/b/c" in paths
    assert "/b/d" in paths
    assert len(paths) == len(set(paths))


def test_key_of_cluster_scoped_objects() -> None:
    obj = yaml.safe_load("kind: Namespace\nmetadata: {name: x}\n")
    assert drift.object_label(drift.key_of(obj)) == "Namespace x"
