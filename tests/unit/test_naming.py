import pytest

from generator import naming


def test_names_follow_the_reference_formats() -> None:
    assert naming.group_name("sample", 0) == "sample-0"
    assert naming.role_id("prefill", 1) == "prefill-1"
    assert naming.pod_name("sample", 0, "prefill", 1, 3) == "sample-0-prefill-1-3"
    assert naming.entry_pod_name("sample", 2, "decode", 0) == "sample-2-decode-0-0"
    assert naming.service_name("sample", 2, "decode", 0) == "sample-2-decode-0-0"
    assert naming.podgroup_name("sample", 4) == "sample-4"
    assert naming.revision_name("sample", "5f67c98b4d") == "sample-5f67c98b4d"


def test_entry_address_names_pod_service_and_namespace() -> None:
    assert (
        naming.entry_address("sample", 0, "decode", 0, "default")
        == "sample-0-decode-0-0.sample-0-decode-0-0.default"
    )


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("sample-0", ("sample", 0)),
        ("my-model-12", ("my-model", 12)),
        ("prefill-3", ("prefill", 3)),
        ("a-b-1-2", ("a-b-1", 2)),
        ("sample", None),
        ("sample-", None),
        ("sample-x1", None),
    ],
    ids=str,
)
def test_parse_ordinal_splits_the_last_dash_number(name: str, parsed: object) -> None:
    assert naming.parse_ordinal(name) == parsed


def test_label_selector_sorts_whole_pairs_like_the_reference() -> None:
    selector = naming.label_selector(
        {
            naming.ROLE_LABEL: "prefill",
            naming.ROLE_ID_LABEL: "prefill-0",
            naming.ENTRY_LABEL: "true",
            naming.NAME_LABEL: "sample",
        }
    )
    # The reference's captured status.labelSelector: "-" (0x2d) sorts before "=" (0x3d).
    assert selector == (
        "modelserving.volcano.sh/entry=true,modelserving.volcano.sh/name=sample,"
        "modelserving.volcano.sh/role-id=prefill-0,modelserving.volcano.sh/role=prefill"
    )
