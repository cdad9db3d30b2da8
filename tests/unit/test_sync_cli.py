"""The cluster commands' handling of bad flags and unusable kubeconfigs, without a cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sync import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "prefill-decode.yaml")


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--workers", "0", "argument --workers: '0' is not an integer of at least 1"),
        ("--workers", "two", "argument --workers: 'two' is not an integer of at least 1"),
        ("--api-concurrency", "-3", "'-3' is not an integer of at least 1"),
        ("--api-qps", "-1", "argument --api-qps: '-1' is not a number of at least 0"),
        ("--api-qps", "nan", "'nan' is not a number of at least 0"),
        ("--lease-duration", "0", "argument --lease-duration: '0' is not an integer of at least 1"),
        ("--health-port", "70000", "argument --health-port: '70000' is not an integer 0-65535"),
    ],
)
def test_run_refuses_flag_values_out_of_range(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", flag, value])
    assert exit_.value.code == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("command", [["plan"], ["diff"]])
def test_an_unusable_kubeconfig_is_a_usage_error_naming_the_file(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert cli.main([*command, "-f", EXAMPLE, "--kubeconfig", str(missing)]) == 1
    assert capsys.readouterr().err.strip() == f"cannot connect: kubeconfig {missing}: no such file"

    no_context = tmp_path / "config"
    no_context.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    assert cli.main([*command, "-f", EXAMPLE, "--kubeconfig", str(no_context)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cannot connect: kubeconfig {no_context}: ")
    assert "current-context" in err

    broken = tmp_path / "broken"
    broken.write_text("clusters: [\n")
    assert cli.main([*command, "-f", EXAMPLE, "--kubeconfig", str(broken)]) == 1
    assert capsys.readouterr().err.startswith(f"cannot connect: kubeconfig {broken}: ")


def test_the_daemon_exits_with_a_message_not_a_traceback_on_a_bad_kubeconfig(
    tmp_path: Path,
) -> None:
    msctl = Path(sys.executable).parent / "msctl"
    done = subprocess.run(
        [msctl, "run", "--kubeconfig", str(tmp_path / "missing"), "--health-port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot connect: kubeconfig {tmp_path / 'missing'}: no such file" in done.stderr


def test_run_help_says_what_the_lws_bridge_does_next_to_the_real_lws_controller(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--lws-bridge" in text
    assert "only while the LeaderWorkerSet CRD exists" in text
    assert "Do not use it where the real LWS controller runs" in text
