"""`msctl plan -f NEW --from OLD`: the rollout to NEW played offline with the daemon's planner.

Golden text for the bundled examples, the committed docs/preview files kept true, the rollout
arithmetic across strategies, partitions and budgets, the timeline SVG read back as XML, and
the input errors.
"""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import model
from generator.expand import Settings
from generator.sources import ServingSource
from generator.templating import TemplateSet
from sync import cli
from sync.core.replacements import Rollout
from sync.core.simulate import simulate
from sync.core.steps import Plan
from sync.core.tally import tell
from sync.core.timestamps import duration, parse_duration
from sync.offline import OFFLINE_UID, converged, play
from tests.unit.specs import edit, modelserving, pod_template, role
from tests.unit.test_sync_rollout import image_change, run_rollout, started

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "preview"
DOCS = ROOT / "docs" / "preview"
CASES = ["rolling-update", "role-rolling-update"]
SVG = "{http://www.w3.org/2000/svg}"
TEMPLATES = TemplateSet()


def plan_args(case: str, *extra: str) -> list[str]:
    """Relative paths, as the README gives them: the output names them."""
    new = f"docs/preview/{case}-new.yaml"
    return ["plan", "-f", new, "--from", f"examples/{case}.yaml", *extra]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("case", CASES)
def test_the_new_spec_of_each_preview_only_moves_the_image(case: str) -> None:
    old = (ROOT / "examples" / f"{case}.yaml").read_text()
    new = yaml.safe_load((DOCS / f"{case}-new.yaml").read_text())
    assert new == yaml.safe_load(old.replace("vllm-openai:v0.13.0", "vllm-openai:v0.14.0"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"the {c} image change prints its golden")
def test_preview_text_matches_the_golden_file(
    case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *plan_args(case))
    assert (code, err) == (0, "")
    assert out == (GOLDEN / f"{case}.txt").read_text()


def test_the_committed_docs_preview_is_what_the_command_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svg = tmp_path / "rolling-update.svg"
    code, out, _ = run(capsys, *plan_args("rolling-update", "--timeline", str(svg)))
    assert code == 0
    assert out == (DOCS / "rolling-update.txt").read_text()
    assert svg.read_text() == (DOCS / "rolling-update.svg").read_text()


def test_the_text_shows_the_first_plan_then_every_wave_with_its_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(capsys, *plan_args("rolling-update"))
    lines = out.splitlines()
    assert lines[0].startswith("ModelServing default/chat: revision ")
    assert "(from examples/rolling-update.yaml at revision " in lines[0]
    assert "  2. delete Pod chat-3-server-0-0: rolling update to revision " in out
    assert "  wave 1 at 0s: replace chat-3, chat-2; ready at 1m30s" in lines
    assert "  wave 2 at 1m30s: replace chat-1, chat-0; ready at 3m" in lines
    assert "  budget: groups unavailable at once: at most 2 (maxUnavailable 2)" in lines
    assert lines[-1].endswith("write(s); this command changed nothing")


def test_json_holds_the_first_plan_and_the_simulation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *plan_args("rolling-update", "-o", "json", "--ready-after", "2m"))
    assert code == 0
    (doc,) = json.loads(out)
    assert doc["modelServing"] == "default/chat"
    assert doc["steps"][0]["verb"] == "create"  # the new ControllerRevision comes first
    sim = doc["simulation"]
    assert sim["readyAfterSeconds"] == 120
    assert [(w["startSeconds"], w["replaced"]) for w in sim["waves"]] == [
        (0, ["chat-3", "chat-2"]),
        (120, ["chat-1", "chat-0"]),
    ]
    assert {u["state"] for u in sim["units"]} == {"replaced"}
    assert all(u["readySeconds"] - u["startSeconds"] == 120 for u in sim["units"])
    assert sim["summary"] == "rolls 4 groups in 2 waves (about 4m at 2m per pod)"


def played(old: dict[str, Any], new: dict[str, Any]) -> Rollout:
    def source(doc: dict[str, Any]) -> ServingSource:
        return ServingSource(model.load(doc, plugins=TEMPLATES.plugins()), TEMPLATES, Settings())

    return play(source(old), source(new), ready_after=60)[2]


def groups(replicas: int, max_unavailable: int | str, partition: int | None = None) -> Any:
    rolling: dict[str, Any] = {"maxUnavailable": max_unavailable}
    if partition is not None:
        rolling["partition"] = partition
    strategy = {"type": "ServingGroupRollingUpdate", "rollingUpdateConfiguration": rolling}
    return modelserving("ms", replicas, [role("r", 1, 0)], rolloutStrategy=strategy)


IMAGE = "spec.template.roles.0.entryTemplate"
GROUP_CASES = [
    # (old, waves of group ordinals, summary)
    pytest.param(
        groups(4, 1), [[3], [2], [1], [0]], "rolls 4 groups in 4 waves", id="one at a time"
    ),
    pytest.param(groups(4, 3), [[3, 2, 1], [0]], "rolls 4 groups in 2 waves", id="three then one"),
    pytest.param(groups(4, "50%"), [[3, 2], [1, 0]], "rolls 4 groups in 2 waves", id="percent"),
    pytest.param(
        groups(4, 1, partition=2),
        [[3], [2]],
        "rolls 2 groups in 2 waves (about 2m at 1m per pod); 2 kept by the partition",
        id="a partition keeps the lowest ordinals",
    ),
]


@pytest.mark.parametrize(("old", "waves", "summary"), GROUP_CASES)
def test_group_rollouts_follow_the_budget_and_the_partition(
    old: dict[str, Any], waves: list[list[int]], summary: str
) -> None:
    rollout = played(old, edit(old, IMAGE, pod_template("nginx:1.28")))
    assert [[int(u.rsplit("-", 1)[1]) for u in w.units] for w in rollout.waves] == waves
    assert rollout.summary().startswith(summary)
    (budget,) = rollout.budgets
    assert budget.limit is not None and budget.peak <= max(budget.limit, 0)
    for number, wave in enumerate(rollout.waves):
        assert wave.start == 60 * number and wave.ready == wave.start + 60


def test_units_left_outdated_outside_a_partition_are_reported_as_stalled() -> None:
    # Valid specs always leave a budget; a planner that does nothing stands for one that could not.
    old, new = groups(2, 1), edit(groups(2, 1), IMAGE, pod_template("nginx:1.28"))
    ms = model.load(new, plugins=TEMPLATES.plugins())
    world = converged(model.load(old), TEMPLATES, Settings(owner_uid=OFFLINE_UID))
    record = simulate(world, lambda *_: Plan((), None), ready_after=60)
    rollout = tell(ms, record, 60)
    assert rollout.summary() == "no rollout; 2 stalled (no budget)"
    assert "  stalled, not replaced: ms-0, ms-1" in rollout.text()


def test_scaling_up_with_an_image_change_creates_the_new_groups_at_once() -> None:
    old = groups(2, 1)
    new = edit(edit(old, IMAGE, pod_template("nginx:1.28")), "spec.replicas", 3)
    rollout = played(old, new)
    assert [s.state for s in rollout.spans] == ["replaced", "replaced", "added"]
    assert rollout.summary().startswith("rolls 2 groups in 2 waves")
    assert "creates 1 group" in rollout.summary()


def test_an_unchanged_spec_plans_nothing_and_rolls_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys,
        "plan",
        "-f",
        "examples/rolling-update.yaml",
        "--from",
        "examples/rolling-update.yaml",
    )
    assert code == 0
    assert "  nothing to do: the cluster already matches this spec" in out
    assert "done at 0s: no rollout; 0 reconciles, 0 writes" in out


def roles_doc(prefill_partition: int | None, decode_max: int | str | None) -> dict[str, Any]:
    prefill = role("prefill", 3, 1, maxUnavailable=1)
    if prefill_partition is not None:
        prefill["partition"] = prefill_partition
    decode = role("decode", 2, 0)
    if decode_max is not None:
        decode["maxUnavailable"] = decode_max
    return modelserving("pd", 2, [prefill, decode], rolloutStrategy={"type": "RoleRollingUpdate"})


def test_role_rollouts_replace_only_changed_roles_one_instance_at_a_time_per_group() -> None:
    old = roles_doc(prefill_partition=1, decode_max=None)
    new = edit(old, "spec.template.roles.0.workerTemplate", pod_template("nginx:1.28"))
    rollout = played(old, new)
    assert [w.units for w in rollout.waves] == [
        ("pd-1/prefill-2", "pd-0/prefill-2"),
        ("pd-1/prefill-1", "pd-0/prefill-1"),
    ]
    kept = {s.label: (s.outdated, s.protected) for s in rollout.of("kept")}
    assert kept["pd-0/prefill-0"] == (True, True)  # the partition
    assert kept["pd-0/decode-0"] == (False, False)  # decode did not change
    prefill, decode = rollout.budgets
    assert (prefill.limit, prefill.peak) == (1, 1)
    assert (decode.limit, decode.peak) == (1, 0)


def test_a_role_with_max_unavailable_100_percent_replaces_every_instance_at_once() -> None:
    old = roles_doc(prefill_partition=None, decode_max="100%")
    decode = role("decode", 2, 0, entryTemplate=pod_template("nginx:1.28"), maxUnavailable="100%")
    new = edit(old, "spec.template.roles.1", decode)
    rollout = played(old, new)
    assert [w.units for w in rollout.waves] == [
        ("pd-1/decode-1", "pd-1/decode-0", "pd-0/decode-1", "pd-0/decode-0")
    ]


def svg_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, *extra: str
) -> ET.Element:
    path = tmp_path / "out.svg"
    code, _, err = run(capsys, *plan_args(case, "--timeline", str(path), *extra))
    assert code == 0, err
    return ET.parse(path).getroot()


def rows(root: ET.Element) -> dict[str, list[tuple[str, float, float]]]:
    out: dict[str, list[tuple[str, float, float]]] = {}
    for row in root.iter(f"{SVG}g"):
        if row.get("class") == "row":
            out[row.attrib["data-unit"]] = [
                (r.attrib["class"], float(r.attrib["data-start"]), float(r.attrib["data-end"]))
                for r in row.iter(f"{SVG}rect")
            ]
    return out


def test_the_timeline_has_a_row_per_group_its_spans_in_order_and_the_budget_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = svg_of(tmp_path, capsys, "rolling-update", "--ready-after", "2m")
    assert root.attrib["data-ready-after"] == "120"
    drawn = rows(root)
    assert sorted(drawn) == ["chat-0", "chat-1", "chat-2", "chat-3"]
    for unit, spans in drawn.items():
        assert [s[0] for s in spans] == (
            ["replacing", "new"] if unit in ("chat-2", "chat-3") else ["old", "replacing", "new"]
        )
        assert all(a[2] == b[1] for a, b in itertools.pairwise(spans))  # no gap
        (replacing,) = [s for s in spans if s[0] == "replacing"]
        assert replacing[2] - replacing[1] == 120
        assert replacing[1] == (0 if unit in ("chat-2", "chat-3") else 120)
    waves = [e for e in root.iter(f"{SVG}line") if e.get("class") == "wave"]
    assert [w.attrib["data-at"] for w in waves] == ["0", "120"]
    (budget,) = [e for e in root.iter(f"{SVG}line") if e.get("class") == "budget"]
    assert budget.attrib["data-limit"] == "2"
    (down,) = [e for e in root.iter(f"{SVG}polyline") if e.get("class") == "unavailable"]
    counts = [int(p.split(":")[1]) for p in down.attrib["data-points"].split(";")]
    assert max(counts) == 2 and counts[-1] == 0


def test_the_timeline_of_a_role_rollout_has_a_row_per_role_instance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = svg_of(tmp_path, capsys, "role-rolling-update")
    drawn = rows(root)
    assert list(drawn) == [
        "llama-2p1d-0/prefill-0",
        "llama-2p1d-0/prefill-1",
        "llama-2p1d-0/decode-0",
    ]
    assert [s[0] for s in drawn["llama-2p1d-0/prefill-0"]] == ["old"]  # kept by the partition
    assert [s[0] for s in drawn["llama-2p1d-0/decode-0"]] == ["replacing", "new"]
    charts = [
        g.attrib["data-budget"] for g in root.iter(f"{SVG}g") if g.get("class") == "budget-chart"
    ]
    assert charts == ["prefill instances", "decode instances"]


def test_the_timeline_is_the_same_bytes_on_every_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a.svg", tmp_path / "b.svg"
    for path in (first, second):
        assert run(capsys, *plan_args("rolling-update", "--timeline", str(path)))[0] == 0
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(
            ["--from", "nope.yaml"], 1, "nope.yaml", id="an OLD file that does not exist is exit 1"
        ),
        pytest.param(["--from", "BAD"], 2, "", id="an OLD file that is not YAML is exit 2"),
        pytest.param(["--from", "INVALID"], 2, "spec.replicas", id="an invalid OLD spec is exit 2"),
        pytest.param(
            ["--from", "examples/prefill-decode.yaml"],
            1,
            "-f and --from must name the same ModelServings: -f names default/chat, --from "
            "(examples/prefill-decode.yaml) names default/qwen-pd",
            id="OLD naming another ModelServing is a usage error",
        ),
        pytest.param(
            ["--from", "examples/rolling-update.yaml", "--kubeconfig", "k"],
            1,
            "use either --from OLD or --kubeconfig/--context, not both",
            id="from and a cluster together are a usage error",
        ),
        pytest.param(
            ["--timeline", "x.svg"],
            1,
            "--ready-after and --timeline need --from OLD",
            id="a timeline without from is a usage error",
        ),
        pytest.param(
            ["--from", "examples/rolling-update.yaml", "--ready-after", "0s"],
            1,
            "'0s' is not a duration above 0",
            id="a ready-after of zero is refused",
        ),
        pytest.param(
            ["--from", "examples/rolling-update.yaml", "--ready-after", "soon"],
            1,
            "'soon' is not a duration above 0",
            id="a ready-after that is no duration is refused",
        ),
        pytest.param(
            ["--from", "examples/rolling-update.yaml", "--timeline", "/nonexistent/dir/x.svg"],
            1,
            "--timeline /nonexistent/dir/x.svg: cannot write",
            id="an unwritable timeline is a usage error",
        ),
    ],
)
def test_bad_input_gives_the_usual_errors(
    argv: list[str],
    code: int,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    invalid = tmp_path / "invalid.yaml"
    doc = yaml.safe_load((ROOT / "examples" / "rolling-update.yaml").read_text())
    doc["spec"]["replicas"] = -1
    invalid.write_text(yaml.safe_dump(doc))
    paths = {"BAD": str(bad), "INVALID": str(invalid)}
    argv = [paths.get(a, a) for a in argv]
    try:
        got, out, err = run(capsys, "plan", "-f", "docs/preview/rolling-update-new.yaml", *argv)
    except SystemExit as exit_:  # argparse refuses a flag value before the handler runs
        got, out, err = int(str(exit_.code)), "", capsys.readouterr().err
    assert got == code
    assert message in err
    assert out == "" and "Traceback" not in err


def test_a_timeline_for_several_modelservings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = [
        "-f",
        "docs/preview/rolling-update-new.yaml",
        "-f",
        "docs/preview/role-rolling-update-new.yaml",
    ]
    olds = ["--from", "examples/rolling-update.yaml", "--from", "examples/role-rolling-update.yaml"]
    code, _, err = run(capsys, "plan", *both, *olds, "--timeline", str(tmp_path / "x.svg"))
    assert (code, err) == (1, "--timeline draws one ModelServing; -f names 2\n")
    code, out, _ = run(capsys, "plan", *both, *olds)
    assert code == 0 and out.count("simulated rollout") == 2
    assert not (tmp_path / "x.svg").exists()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("90", 90), ("2m", 120), ("1m30s", 90), ("1.5m", 90), ("1h", 3600)],
)
def test_durations_read_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "soon", "-1s", "1m 30s", "30s1m"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (45, "45s"), (90, "1m30s"), (180, "3m"), (3900, "1h5m")]
)
def test_durations_print_as_people_write_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_readme_shows_the_committed_preview_and_its_picture() -> None:
    readme = (ROOT / "README.md").read_text()
    assert (DOCS / "rolling-update.txt").read_text() in readme
    assert "](docs/preview/rolling-update.svg)" in readme
    assert (
        "msctl plan -f docs/preview/rolling-update-new.yaml --from examples/rolling-update.yaml"
        in readme
    )


@pytest.mark.parametrize(
    ("replicas", "max_unavailable", "partition"),
    [(4, 1, None), (5, 2, None), (6, "50%", 2), (3, 3, None)],
    ids=[
        "4 groups one at a time",
        "5 groups two at a time",
        "6 groups half at a time above partition 2",
        "3 groups all at once",
    ],
)
def test_the_offline_waves_are_those_of_the_test_simulator_on_the_same_change(
    replicas: int, max_unavailable: int | str, partition: int | None
) -> None:
    # The test simulator (tests/unit/simulator.py) is an independent harness of the same
    # planner, clocked by ticks: both must replace the same groups in the same waves.
    sim = started(replicas, max_unavailable=max_unavailable, partition=partition)
    old = json.loads(json.dumps(sim.doc))
    image_change(sim)
    expected, _ = run_rollout(sim)
    rollout = played(old, json.loads(json.dumps(sim.doc)))
    assert [[int(u.rsplit("-", 1)[1]) for u in w.units] for w in rollout.waves] == expected
