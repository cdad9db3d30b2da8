"""The daemon notices a changed --templates folder, also when a ConfigMap volume's symlink
is swapped the way the kubelet updates it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from generator.templating import TemplateSet
from sync.templatewatch import TemplateWatch, fingerprint


def configmap_volume(root: Path, version: str, content: str) -> None:
    """Lay out `root` as the kubelet does: files link to `..data/`, which links to a
    timestamped folder; an update swaps `..data` in one rename."""
    staged = root / f"..{version}"
    staged.mkdir()
    (staged / "pod.j2").write_text(content)
    link = root / "..data_tmp"
    link.symlink_to(staged.name)
    os.replace(link, root / "..data")
    if not (root / "pod.j2").is_symlink():
        (root / "pod.j2").symlink_to("..data/pod.j2")


def test_a_symlink_swap_changes_the_fingerprint(tmp_path: Path) -> None:
    configmap_volume(tmp_path, "v1", "{% extends 'builtin/pod.j2' %}")
    before = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == before
    configmap_volume(tmp_path, "v2", "{% extends 'builtin/pod.j2' %}{# v2 #}")
    assert fingerprint(tmp_path) != before


def test_the_watch_hands_over_a_fresh_template_set(tmp_path: Path) -> None:
    configmap_volume(tmp_path, "v1", "a")
    got: list[TemplateSet] = []
    seen = threading.Event()

    def changed(templates: TemplateSet) -> None:
        got.append(templates)
        seen.set()

    watch = TemplateWatch(tmp_path, changed, interval=0.02)
    watch.start()
    try:
        configmap_volume(tmp_path, "v2", "b")
        assert seen.wait(5)
    finally:
        watch.stop()
    assert got[0].user_dir == tmp_path
