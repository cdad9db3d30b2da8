"""`msctl watch` against real file changes: a running subprocess, real edits, no mocked watcher.

Waits are for expected lines with a deadline (generous: the machine may be loaded), never
sleeps standing in for assertions; counts are exact.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from generator import drift, watch
from generator.terminal import Style, wants_color
from sync import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "prefill-decode.yaml"
IMAGE = "vllm/vllm-openai:v0.13.0"
DEADLINE_S = 10.0
QUIET_S = 0.6  # well past watch's coalescing window: a second re-render would show by then
CLOCK = r"^\d\d:\d\d:\d\d "
ESC = "\x1b["

LABEL_TEAM = (
    '{% extends "pod.j2" %}\n'
    '{% block labels %}{{ super() | fromjson | merge({"team": "TEAM"}) | tojson }}{% endblock %}\n'
)
UNDEFINED = '{% extends "pod.j2" %}\n{% block spec %}{{ pod.nope | tojson }}{% endblock %}\n'
SYNTAX = '{% extends "pod.j2" %}\n\n{% block labels %}{{ broken {% endblock %}\n'
TEAM_LINE = (
    CLOCK + r"qwen-pd: 4 changed \(Pod default/qwen-pd-0-prefill-0-0 and 3 more Pods: "
    r"/metadata/labels/team\), 0 added, 0 removed \(\d+ ms\)$"
)
IMPACT = CLOCK + r"qwen-pd: rollout impact: "
ROLLS_ONE = IMPACT + r"rolls 1 group in 1 wave \(about 1m30s at 1m30s per pod\)$"


class Watch:
    """A running `msctl watch` and its output (stdout and stderr), line by line."""

    def __init__(self, argv: list[str], env: dict[str, str], tty: bool) -> None:
        command = [sys.executable, "-m", "sync", "watch", *argv]
        if tty:
            import pty  # noqa: PLC0415 - POSIX only, and only one test needs a terminal

            self.fd, child = pty.openpty()
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=child, stderr=child, env=env
            )
            os.close(child)
        else:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )
            assert self.proc.stdout is not None
            self.fd = self.proc.stdout.fileno()
        self.tty = tty
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # a pty whose child is gone
                chunk = b""
            if not chunk:
                self.lines.put(None)
                return
            *complete, buffer = (buffer + chunk).split(b"\n")
            for raw in complete:
                self.lines.put(raw.decode().rstrip("\r"))

    def _next(self, deadline: float) -> str | None:
        return self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))

    def expect(self, pattern: str, timeout: float = DEADLINE_S) -> str:
        """The next line matching `pattern` (lines before it are only recorded)."""
        deadline, regex = time.monotonic() + timeout, re.compile(pattern)
        while True:
            try:
                line = self._next(deadline)
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} in {timeout} s; got:\n{self.output}")
            if line is None:
                pytest.fail(f"watch exited ({self.proc.wait()}) before {pattern!r}:\n{self.output}")
            self.seen.append(line)
            if regex.search(line):
                return line

    def quiet(self, seconds: float = QUIET_S) -> list[str]:
        """Every line printed during the next `seconds`."""
        deadline, lines = time.monotonic() + seconds, list[str]()
        while True:
            try:
                line = self._next(deadline)
            except queue.Empty:
                return lines
            if line is None:
                return lines
            self.seen.append(line)
            lines.append(line)

    @property
    def output(self) -> str:
        return "\n".join(self.seen)

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=DEADLINE_S)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tty:
            os.close(self.fd)
        elif self.proc.stdout is not None:
            self.proc.stdout.close()


Start = Callable[..., Watch]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start `msctl watch ARGV`; returns once it says it is watching."""
    started: list[Watch] = []

    def run(*argv: str | Path, tty: bool = False, **env: str) -> Watch:
        base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        w = Watch([str(a) for a in argv], {**base, **env}, tty)
        started.append(w)
        w.expect(r"watching .* for changes; Ctrl-C stops")
        return w

    yield run
    for w in started:
        w.close()
        if not w.tty:
            assert ESC not in w.output, "colour codes on a pipe"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "specs" / "qwen-pd.yaml"
    path.parent.mkdir()
    path.write_text(EXAMPLE.read_text())
    return path


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    path = tmp_path / "templates"
    path.mkdir()
    return path


def render_errors(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> list[str]:
    """What `msctl render` prints for the same sources, to compare with watch's lines."""
    capsys.readouterr()
    assert cli.main(["render", *(str(a) for a in argv)]) != 0
    return capsys.readouterr().err.splitlines()


def untimed(line: str) -> str:
    return re.sub(CLOCK, "", line)


def test_renders_once_then_again_on_every_spec_edit(spec: Path, start: Start) -> None:
    w = start("-f", spec)
    assert re.search(
        CLOCK + r"qwen-pd: rendered 7 objects \(1 PodGroup, 2 Services, 4 Pods\) \(\d+ ms\)$",
        w.seen[0],
    ), w.output
    spec.write_text(spec.read_text().replace('"kv_role":"kv_consumer"', '"kv_role":"kv_both"'))
    line = w.expect(r"qwen-pd: ")
    assert re.search(
        CLOCK + r"qwen-pd: 4 changed \(Pod default/qwen-pd-0-prefill-0-0 and 1 more Pod: "
        r"/metadata/labels/modelserving.volcano.sh~1revision; Pod default/qwen-pd-0-decode-0-0: "
        r"[^;]*/spec/containers/0/args/3; Pod default/qwen-pd-0-decode-0-1: [^;]*\), "
        r"0 added, 0 removed \(\d+ ms\)$",
        line,
    ), line
    # The decode template changed: the daemon would replace the one group.
    assert w.expect(r"qwen-pd: ").endswith(
        "qwen-pd: rollout impact: rolls 1 group in 1 wave (about 1m30s at 1m30s per pod)"
    )
    spec.write_text(spec.read_text().replace("\n  replicas: 1\n", "\n  replicas: 2\n"))
    assert re.search(
        r"qwen-pd: 0 changed, 7 added \(1 PodGroup, 2 Services, 4 Pods\), 0 removed",
        w.expect(r"qwen-pd: "),
    )
    assert w.expect(r"qwen-pd: ").endswith("qwen-pd: rollout impact: no rollout; creates 1 group")
    with spec.open("a") as f:
        f.write("# a comment changes no object\n")
    line = w.expect(CLOCK + "no change")
    assert re.search(r"no change in the rendered objects \(\d+ ms\)$", line)
    assert w.quiet() == []


def test_template_edits_rerender(spec: Path, templates: Path, start: Start) -> None:
    w = start("-f", spec, "--templates", templates)
    patched = IMPACT + r"no rollout: 4 pods patched in place \(labels and annotations only; "
    (templates / "pod.j2").write_text(LABEL_TEAM.replace("TEAM", "serving"))
    w.expect(TEAM_LINE)
    assert re.search(patched, w.expect(IMPACT))  # the revision is the same: no pod replaced
    (templates / "pod.j2").write_text(LABEL_TEAM.replace("TEAM", "infra"))
    w.expect(TEAM_LINE)
    assert re.search(patched, w.expect(IMPACT))
    (templates / "pod.j2").unlink()
    w.expect(TEAM_LINE)
    # A label the templates stop rendering is left on running pods (nothing to patch).
    assert re.search(IMPACT + "no rollout$", w.expect(IMPACT))
    assert w.quiet() == []


def test_a_broken_template_prints_the_render_error_keeps_the_output_and_recovers(
    tmp_path: Path, spec: Path, templates: Path, start: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    w = start("-f", spec, "--templates", templates, "--output-dir", out)
    folder = out / "default" / "qwen-pd"
    assert f"into {folder} (" in w.seen[0]
    good = {p.name: p.read_text() for p in folder.iterdir()}
    assert len(good) == 7

    for broken, where in ((UNDEFINED, "pod.j2:2: "), (SYNTAX, "pod.j2:3: ")):
        (templates / "pod.j2").write_text(broken)
        line = w.expect(re.escape(where))
        assert [untimed(line)] == render_errors(capsys, "-f", spec, "--templates", templates)
        assert re.search(
            CLOCK + "template error: not re-rendered; the last good output stays until the next "
            "good save$",
            w.expect("template error"),
        )
        assert {p.name: p.read_text() for p in folder.iterdir()} == good
    assert w.proc.poll() is None

    (templates / "pod.j2").write_text(LABEL_TEAM.replace("TEAM", "serving"))
    w.expect(TEAM_LINE)
    assert "team: serving" in (folder / "30-pod-qwen-pd-0-decode-0-0.yaml").read_text()
    assert list(out.glob(".msctl-stage-*")) == []


def test_an_invalid_spec_prints_the_render_errors_and_recovers(
    spec: Path, start: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    w = start("-f", spec)
    original = spec.read_text()
    spec.write_text(original.replace("\n  replicas: 1\n", "\n  replicas: -1\n"))
    line = w.expect(r"spec\.replicas")
    assert [untimed(line)] == render_errors(capsys, "-f", spec)
    assert untimed(line) == f"{spec}:1: spec.replicas: must be greater than or equal to 0, got -1"
    w.expect(CLOCK + "invalid input: not re-rendered")

    spec.write_text("apiVersion: v1\nkind: [unclosed\n")
    line = w.expect("not valid YAML")
    assert [untimed(line)] == render_errors(capsys, "-f", spec)

    spec.write_text(original)
    assert re.search(r"no change in the rendered objects \(\d+ ms\)$", w.expect(CLOCK + "no "))
    assert w.quiet() == []


def test_an_atomic_rename_save_rerenders_once(spec: Path, start: Start) -> None:
    w = start("-f", spec)
    temp = spec.with_name(f"{spec.name}.tmp")
    temp.write_text(spec.read_text().replace(IMAGE, "vllm/vllm-openai:renamed"))
    os.replace(temp, spec)
    line = w.expect(r"qwen-pd: ")
    assert re.search(r"qwen-pd: 4 changed \(.*/spec/containers/0/image.*\), 0 added", line)
    assert re.search(ROLLS_ONE, w.expect(IMPACT))
    assert w.quiet() == []
    # The watch survives the rename: the file it now follows is the new one.
    spec.write_text(spec.read_text().replace("vllm/vllm-openai:renamed", IMAGE))
    w.expect(r"qwen-pd: 4 changed")


def test_a_burst_of_writes_rerenders_once_with_the_last_content(
    tmp_path: Path, spec: Path, start: Start
) -> None:
    out = tmp_path / "out"
    w = start("-f", spec, "--output-dir", out)
    original = spec.read_text()
    for n in range(1, 11):
        spec.write_text(original.replace(IMAGE, f"vllm/vllm-openai:burst-{n}"))
    w.expect(r"qwen-pd: 4 changed \(.*/spec/containers/0/image")
    assert re.search(ROLLS_ONE, w.expect(IMPACT))
    assert w.quiet() == []
    pod = out / "default" / "qwen-pd" / "30-pod-qwen-pd-0-decode-0-1.yaml"
    assert "image: vllm/vllm-openai:burst-10\n" in pod.read_text()


def test_output_dir_follows_a_renamed_modelserving(
    tmp_path: Path, spec: Path, start: Start
) -> None:
    out = tmp_path / "out"
    keep = out / "default" / "someone-else" / "keep.yaml"
    keep.parent.mkdir(parents=True)
    keep.write_text("x: 1\n")
    w = start("-f", spec, "--output-dir", out)
    spec.write_text(spec.read_text().replace("name: qwen-pd\n", "name: qwen-new\n"))
    assert re.search(r"qwen-new: 0 changed, 7 added \(", w.expect("qwen-new: "))
    assert re.search(r"qwen-pd: 0 changed, 0 added, 7 removed \(", w.expect("qwen-pd: "))
    assert sorted(p.name for p in (out / "default").iterdir()) == ["qwen-new", "someone-else"]
    assert keep.read_text() == "x: 1\n"
    assert w.quiet() == []


def test_a_broken_start_keeps_watching_until_fixed(
    spec: Path, templates: Path, capsys: pytest.CaptureFixture[str], start: Start
) -> None:
    (templates / "pod.j2").write_text(UNDEFINED)
    expected = render_errors(capsys, "-f", spec, "--templates", templates)
    w = start("-f", spec, "--templates", templates)
    assert [untimed(line) for line in w.seen[:2]] == [
        *expected,
        "template error: nothing rendered yet; waiting for the next save",
    ]
    (templates / "pod.j2").write_text(LABEL_TEAM.replace("TEAM", "serving"))
    assert re.search(r"qwen-pd: rendered 7 objects ", w.expect("qwen-pd: "))


def test_editor_scratch_files_and_touches_do_not_rerender(spec: Path, start: Start) -> None:
    w = start("-f", spec)
    (spec.parent / ".qwen-pd.yaml.swp").write_text("x")
    (spec.parent / "4913").write_text("")
    (spec.parent / "notes.txt").write_text("x")
    spec.touch()
    assert w.quiet() == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_exit_0(spec: Path, start: Start, sig: int) -> None:
    w = start("-f", spec)
    assert w.stop(sig) == 0
    assert re.search(CLOCK + "stopped$", w.expect("stopped"))


def test_colour_only_on_a_terminal_and_never_with_no_color(spec: Path, start: Start) -> None:
    coloured = start("-f", spec, tty=True)
    assert ESC in coloured.output
    spec.write_text(spec.read_text().replace(IMAGE, "vllm/vllm-openai:colour"))
    assert "\x1b[33m4 changed\x1b[0m" in coloured.expect(r"qwen-pd")
    plain = start("-f", spec, tty=True, NO_COLOR="1")
    spec.write_text(spec.read_text().replace("vllm/vllm-openai:colour", IMAGE))
    plain.expect(r"qwen-pd: 4 changed")
    assert ESC not in plain.output
    assert plain.stop() == 0


def test_usage_errors_exit_1_before_watching(
    tmp_path: Path, spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["watch", "-f", "-"]) == 1
    assert "watch cannot watch stdin" in capsys.readouterr().err
    assert cli.main(["watch", "-f", str(tmp_path / "nope.yaml")]) == 1
    assert capsys.readouterr().err == f"{tmp_path / 'nope.yaml'}: no such file or folder\n"
    assert cli.main(["watch", "-f", str(spec), "--templates", str(tmp_path / "t")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_render_does_not_import_watchfiles() -> None:
    probe = (
        "import sys; from sync import cli; code = cli.main(['render', '-f', sys.argv[1]]);"
        " assert 'watchfiles' not in sys.modules, 'watchfiles imported'; sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(EXAMPLE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# The pure parts: summary lines and colour decisions.

A, B, C, D = (("Pod", "ns", f"p{i}") for i in range(4))


def summary(
    added: Sequence[drift.ObjectKey] = (),
    removed: Sequence[drift.ObjectKey] = (),
    changed: Sequence[drift.ObjectChange] = (),
) -> str:
    change = drift.BundleChanges("ns", "ms", list(added), list(removed), list(changed))
    return watch.change_summary(change, Style())


def test_change_summary_names_objects_and_paths() -> None:
    assert (
        summary(changed=[drift.ObjectChange(A, ("/spec/x",))])
        == "1 changed (Pod ns/p0: /spec/x), 0 added, 0 removed"
    )
    many = [drift.ObjectChange(k, ("/a",)) for k in (A, B, C)]
    assert summary(changed=many) == "3 changed (Pod ns/p0 and 2 more Pods: /a), 0 added, 0 removed"
    paths = tuple(f"/p{i}" for i in range(6))
    assert summary(changed=[drift.ObjectChange(A, paths)]).startswith(
        "1 changed (Pod ns/p0: /p0, /p1, /p2, /p3 and 2 more), "
    )
    distinct = [drift.ObjectChange(k, (f"/{k[2]}",)) for k in (A, B, C, D)]
    assert summary(changed=distinct).startswith(
        "4 changed (Pod ns/p0: /p0; Pod ns/p1: /p1; Pod ns/p2: /p2; 1 more object), "
    )


def test_change_summary_counts_kinds_when_many_are_added_or_removed() -> None:
    assert summary(added=[A, B]) == "0 changed, 2 added (Pod ns/p0, Pod ns/p1), 0 removed"
    svc = ("Service", "ns", "s")
    assert summary(removed=[A, B, C, svc]) == "0 changed, 0 added, 4 removed (3 Pods, 1 Service)"


def test_colour_follows_the_terminal_conventions() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Terminal(), io.StringIO()
    assert wants_color(tty, {})
    assert not wants_color(pipe, {})
    assert not wants_color(tty, {"NO_COLOR": "1"})
    assert wants_color(tty, {"NO_COLOR": ""})
    assert not wants_color(tty, {"TERM": "dumb"})
    assert wants_color(pipe, {"FORCE_COLOR": "1"})
    assert not wants_color(pipe, {"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert Style(color=True).red("x") == "\x1b[31mx\x1b[0m"
    assert Style().red("x") == "x"
