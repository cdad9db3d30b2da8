"""The command line: output, exit codes, error messages, and all-or-nothing writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync import cli
from tests.unit import specs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "prefill-decode.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, *docs: Any) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def test_render_writes_a_yaml_stream_in_apply_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render", "-f", str(EXAMPLE))
    assert (code, err) == (0, "")
    kinds = [d["kind"] for d in yaml.safe_load_all(out)]
    assert kinds == ["PodGroup", "Service", "Service", "Pod", "Pod", "Pod", "Pod"]
    assert out.startswith("---\napiVersion: scheduling.volcano.sh/v1beta1\n")


def test_render_json_is_a_v1_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", "-f", str(EXAMPLE), "-o", "json")
    doc = json.loads(out)
    assert (code, doc["apiVersion"], doc["kind"], len(doc["items"])) == (0, "v1", "List", 7)


def test_render_reads_folders_stdin_multi_documents_and_passes_other_kinds_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}
    write(nested / "all.yml", config, specs.modelserving("one"))
    (tmp_path / "notes.txt").write_text("not a manifest")
    monkeypatch.setattr(
        sys, "stdin", __import__("io").StringIO(yaml.safe_dump(specs.modelserving("two")))
    )
    code, out, _ = run(capsys, "render", "-f", str(tmp_path), "-f", "-")
    docs = list(yaml.safe_load_all(out))
    assert code == 0
    assert docs[0] == config
    assert {d["metadata"]["labels"]["modelserving.volcano.sh/name"] for d in docs[1:]} == {
        "one",
        "two",
    }


def test_invalid_specs_report_every_violation_with_file_and_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = specs.modelserving("good")
    bad = specs.edit(specs.modelserving("bad"), "spec.replicas", -1)
    worse = specs.edit(specs.modelserving("worse"), "spec.recoveryPolicy", "Never")
    path = write(tmp_path / "ms.yaml", good, bad, worse)
    code, out, err = run(capsys, "render", "-f", str(path))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"{path}:2: spec.replicas: must be greater than or equal to 0, got -1",
        f"{path}:3: spec.recoveryPolicy: must be one of ServingGroupRecreate, RoleRecreate,"
        ' None; got "Never"',
    ]


def test_broken_yaml_is_invalid_input_with_a_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: v1\nkind: [unclosed\n")
    code, _, err = run(capsys, "render", "-f", str(path))
    assert code == 2
    assert err.startswith(f"{path}:3:1: not valid YAML or JSON")


def test_duplicate_keys_are_invalid_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("kind: ModelServing\nkind: Other\n")
    code, _, err = run(capsys, "render", "-f", str(path))
    assert code == 2
    assert "duplicate key 'kind'" in err


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "render", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert err.strip() == f"{tmp_path / 'nope.yaml'}: no such file or folder"


def test_bad_flags_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["render", "-f", str(EXAMPLE), "-o", "xml"])
    assert exit_.value.code == 1
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_wrong_api_version_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {**specs.modelserving(), "apiVersion": "workload.serving.volcano.sh/v1"}
    code, _, err = run(capsys, "validate", "-f", str(write(tmp_path / "ms.yaml", doc)))
    assert code == 2
    assert "apiVersion: must be workload.serving.volcano.sh/v1alpha1" in err


def test_a_template_error_exits_3_naming_the_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pod.j2").write_text(
        '{% extends "pod.j2" %}\n{% block spec %}{{ pod.nope | tojson }}{% endblock %}\n'
    )
    code, out, err = run(capsys, "render", "-f", str(EXAMPLE), "--templates", str(tmp_path))
    assert (code, out) == (3, "")
    assert err.startswith(f"{tmp_path / 'pod.j2'}:2: ")
    assert "nope" in err


def test_a_missing_templates_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "render", "-f", str(EXAMPLE), "--templates", str(tmp_path / "x"))
    assert code == 1
    assert "no such folder" in err


def test_output_dir_gets_one_file_per_object_per_modelserving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "render", "-f", str(EXAMPLE), "--output-dir", str(out_dir))
    assert code == 0
    folder = out_dir / "default" / "qwen-pd"
    files = sorted(p.name for p in folder.iterdir())
    assert files[0] == "10-podgroup-qwen-pd-0.yaml"
    assert files[1:3] == [
        "20-service-qwen-pd-0-decode-0-0.yaml",
        "20-service-qwen-pd-0-prefill-0-0.yaml",
    ]
    assert len(files) == 7
    assert f"wrote 7 objects to {folder}" in err
    assert list(out_dir.glob(".msctl-stage-*")) == []


def test_output_dir_replaces_stale_files_and_leaves_other_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    stale = out_dir / "default" / "qwen-pd" / "30-pod-old.yaml"
    other = out_dir / "default" / "someone-else" / "keep.yaml"
    for path in (stale, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x: 1\n")
    assert run(capsys, "render", "-f", str(EXAMPLE), "--output-dir", str(out_dir))[0] == 0
    assert not stale.exists()
    assert other.read_text() == "x: 1\n"


def test_a_failed_render_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    bad = write(
        tmp_path / "bad.yaml",
        specs.modelserving("fine"),
        specs.edit(specs.modelserving("bad"), "spec.replicas", "x"),
    )
    assert run(capsys, "render", "-f", str(bad), "--output-dir", str(out_dir))[0] == 2
    assert not out_dir.exists()
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "service.j2").write_text("{{ broken")
    good = write(tmp_path / "good.yaml", specs.modelserving("fine"))
    assert (
        run(
            capsys,
            "render",
            "-f",
            str(good),
            "--output-dir",
            str(out_dir),
            "--templates",
            str(tmp_path / "t"),
        )[0]
        == 3
    )
    assert not out_dir.exists()


def test_check_without_output_dir_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "render", "-f", str(EXAMPLE), "--check")[0] == 1


def test_validate_reports_success_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "-f", str(ROOT / "examples"))
    assert (code, out) == (0, "")
    assert err.strip().splitlines()[-1] == "6 ModelServing(s) and 2 LeaderWorkerSet(s) valid"


def test_crd_prints_the_committed_crd(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crd")
    assert code == 0
    assert out == (ROOT / "crds" / "workload.serving.volcano.sh_modelservings.yaml").read_text()


def test_the_installed_command_renders_without_importing_the_kubernetes_client() -> None:
    probe = (
        "import sys; from sync import cli; code = cli.main(['render', '-f', sys.argv[1]]);"
        " assert 'kubernetes' not in sys.modules, 'kubernetes imported'; sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(EXAMPLE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("kind: Pod\n") == 4


def test_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["render", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "--output-dir DIR" in out
    assert "3  a template failed" in out


def test_an_output_dir_that_cannot_be_a_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "manifests"
    a_file.write_text("not a folder")
    for flags in ([], ["--check"]):
        code, out, err = run(
            capsys, "render", "-f", str(EXAMPLE), "--output-dir", str(a_file), *flags
        )
        assert (code, out, err.strip()) == (1, "", f"--output-dir {a_file}: not a folder")
    below = a_file / "sub"
    code, out, err = run(capsys, "render", "-f", str(EXAMPLE), "--output-dir", str(below))
    assert (code, out) == (1, "")
    assert err.strip() == f"--output-dir {below}: cannot write ({below}): Not a directory"
    assert a_file.read_text() == "not a folder"


def test_namespaces_must_be_valid_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["render", "-f", str(EXAMPLE), "-n", "Team_A"])
    assert exit_.value.code == 1
    assert "argument -n/--namespace: 'Team_A' is not a valid namespace name" in (
        capsys.readouterr().err
    )
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = "a" * 64
    code, out, err = run(capsys, "render", "-f", str(write(tmp_path / "ms.yaml", doc)))
    assert (code, out) == (2, "")
    assert err.startswith(f"{tmp_path / 'ms.yaml'}:1: metadata.namespace: '{'a' * 64}' is not")
