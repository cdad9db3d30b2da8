"""The string formats Kubernetes' API validation checks, as predicates returning a problem.

Each function mirrors one function of k8s.io/apimachinery/pkg/util/validation (or
metav1validation) and returns None when the value passes, or a message saying what is wrong in
the words the API server would use. `podvalidation` applies them to pod templates.
"""

from __future__ import annotations

import re

from generator import naming

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
PORT_NAME_MAX = 15
ANNOTATIONS_MAX_BYTES = 256 * 1024

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PORT_NAME_CHARS = re.compile(r"^[-a-z0-9]+$")
_HAS_LETTER = re.compile(r"[a-z]")


def dns1123_label(value: str) -> str | None:
    """IsDNS1123Label."""
    if len(value) > DNS1123_LABEL_MAX:
        return f"must be no more than {DNS1123_LABEL_MAX} characters"
    if not naming.DNS1123_LABEL.match(value):
        return (
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending "
            "with a letter or digit"
        )
    return None


def dns1123_subdomain(value: str) -> str | None:
    """IsDNS1123Subdomain (the NameIsDNSSubdomain names: service accounts, priority and
    runtime classes, nodes)."""
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        return f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
    if not naming.DNS1123_SUBDOMAIN.match(value):
        return (
            "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', starting and "
            "ending with a letter or digit"
        )
    return None


def qualified_name(value: str) -> str | None:
    """IsQualifiedName: an optional DNS-1123 subdomain prefix and '/', then a name of at most
    63 characters (letters, digits, '-', '_', '.', starting and ending alphanumeric)."""
    prefix, slash, name = value.rpartition("/")
    if slash:
        if not prefix:
            return "prefix part must be non-empty"
        problem = dns1123_subdomain(prefix)
        if problem:
            return f"prefix part {problem}"
    if not name:
        return "name part must be non-empty"
    if len(name) > QUALIFIED_NAME_MAX:
        return f"name part must be no more than {QUALIFIED_NAME_MAX} characters"
    if not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character"
        )
    return None


def label_value(value: str) -> str | None:
    """IsValidLabelValue."""
    if len(value) > LABEL_VALUE_MAX:
        return f"must be no more than {LABEL_VALUE_MAX} characters"
    if not _LABEL_VALUE.match(value):
        return (
            "a label value must be empty or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


def port_name(value: str) -> str | None:
    """IsValidPortName (an IANA_SVC_NAME)."""
    problems = []
    if len(value) > PORT_NAME_MAX:
        problems.append(f"must be no more than {PORT_NAME_MAX} characters")
    if not _PORT_NAME_CHARS.match(value):
        problems.append("must contain only lowercase letters, digits and '-'")
    if not _HAS_LETTER.search(value):
        problems.append("must contain at least one letter (a-z)")
    if "--" in value:
        problems.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return "; ".join(problems) or None


def port_number(value: int) -> str | None:
    """IsValidPortNum."""
    return None if 1 <= value <= 65535 else f"must be between 1 and 65535, got {value}"


def env_var_name(value: str) -> str | None:
    """IsRelaxedEnvVarName: the API server (RelaxedEnvironmentVariableValidation, locked on
    since Kubernetes 1.34) takes any printable ASCII but '='."""
    if not value:
        return "must not be empty"
    if any(not (" " <= ch <= "~") or ch == "=" for ch in value):
        return "must consist only of printable ASCII characters other than '='"
    return None


def local_descending_path(value: str) -> str | None:
    """validateLocalDescendingPath: relative, and no '..' element."""
    if value.startswith("/"):
        return "must be a relative path"
    if ".." in value.split("/"):
        return "must not contain '..'"
    return None
