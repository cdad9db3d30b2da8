"""The ModelServing OpenAPI schema: one definition for the CRD and for offline validation.

Written here as data with `{"$ref": ...}` links to the PodSpec definitions generated from the
Kubernetes OpenAPI document (`podspec_schema.json`, see tools/gen_podspec_schema.py). `crd`
inlines the links to build the CustomResourceDefinition; `structural` walks them to validate
and default documents offline. The CEL rules are the API server's share of the webhook rules
of docs/behaviour.md#validation; `validation` implements every one of them in Python as well.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from generator.structural import StructuralSchema

Schema = dict[str, Any]

INT_OR_STRING: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}


def _int_or_percent(description: str, default: int | None = None) -> Schema:
    out: Schema = {**INT_OR_STRING, "description": description}
    if default is not None:
        out["default"] = default
    return out


NETWORK_TOPOLOGY: Schema = {
    "type": "object",
    "description": "Volcano network-topology constraint (NetworkTopologySpec of PodGroup).",
    "properties": {
        "mode": {
            "type": "string",
            "enum": ["hard", "soft"],
            "default": "hard",
            "description": "hard: pods must fit inside the tier; soft: best effort.",
        },
        "highestTierAllowed": {
            "type": "integer",
            "minimum": 0,
            "description": "Highest HyperNode tier the pods may span.",
        },
        "highestTierName": {
            "type": "string",
            "maxLength": 253,
            "description": "Name of the highest tier allowed (alternative to highestTierAllowed).",
        },
    },
}

POD_TEMPLATE: Schema = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "metadata": {
            "type": "object",
            "description": "Labels and annotations added to every pod made from this template.",
            "properties": {"labels": STRING_MAP, "annotations": STRING_MAP},
        },
        "spec": {"$ref": "PodSpec"},
    },
}

ROLE: Schema = {
    "type": "object",
    "description": "One kind of pod set in a ServingGroup (for example prefill or decode).",
    "required": ["name", "entryTemplate", "workerReplicas"],
    "properties": {
        "name": {
            "type": "string",
            "maxLength": 12,
            "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
            "description": "Role name: a DNS-1035 label of at most 12 characters.",
        },
        "replicas": {
            "type": "integer",
            "format": "int32",
            "minimum": 0,
            "default": 1,
            "description": "Role instances per ServingGroup (the x of xPyD).",
        },
        "entryTemplate": {
            "$ref": "PodTemplateSpec",
            "description": "Template of the entry pod (index 0) of every role instance.",
        },
        "workerReplicas": {
            "type": "integer",
            "format": "int32",
            "minimum": 0,
            "description": "Worker pods per role instance, besides the entry pod.",
        },
        "workerTemplate": {
            "$ref": "PodTemplateSpec",
            "description": "Template of the worker pods; required when workerReplicas > 0.",
        },
        "maxUnavailable": _int_or_percent(
            "RoleRollingUpdate only: role instances that may be unavailable during an update "
            "(number or percent of replicas, rounded down).",
            default=1,
        ),
        "partition": _int_or_percent(
            "RoleRollingUpdate only: role instances with an ordinal below this (number or "
            "percent of replicas, rounded up) keep their current template."
        ),
    },
    "x-kubernetes-validations": [
        {
            "rule": "self.workerReplicas == 0 || has(self.workerTemplate)",
            "message": "workerTemplate is required when workerReplicas is greater than 0",
        },
    ],
}

SERVING_GROUP: Schema = {
    "type": "object",
    "description": "Template of one ServingGroup: the roles it is made of and its gang policy.",
    "required": ["roles"],
    "properties": {
        "restartGracePeriodSeconds": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "default": 0,
            "description": "Seconds a failed or restarting pod may take to recover before the "
            "recovery policy replaces it.",
        },
        "gangPolicy": {
            "type": "object",
            "description": "Gang-scheduling requirements of the ServingGroup's PodGroup.",
            "properties": {
                "minRoleReplicas": {
                    "type": "object",
                    "description": "Per role name, how many of its instances must be "
                    "schedulable together (default: all of them).",
                    "additionalProperties": {"type": "integer", "format": "int32", "minimum": 0},
                    "maxProperties": 4,
                    "x-kubernetes-validations": [
                        {"rule": "self == oldSelf", "message": "minRoleReplicas is immutable"}
                    ],
                },
            },
        },
        "networkTopology": {
            "type": "object",
            "description": "Volcano network-topology constraints.",
            "properties": {
                "groupPolicy": {
                    **NETWORK_TOPOLOGY,
                    "description": "Constraint for the whole ServingGroup.",
                },
                "rolePolicy": {
                    **NETWORK_TOPOLOGY,
                    "description": "Constraint for each role instance.",
                },
            },
        },
        "roles": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": ROLE,
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(x, self.exists_one(y, y.name == x.name))",
                    "message": "roles name must be unique",
                }
            ],
        },
    },
    "x-kubernetes-validations": [
        {
            "rule": "!has(oldSelf.gangPolicy) || has(self.gangPolicy)",
            "message": "gangPolicy is required once set",
        },
        {
            "rule": "!has(self.gangPolicy) || !has(self.gangPolicy.minRoleReplicas) || "
            "self.gangPolicy.minRoleReplicas.all(k, self.roles.exists(r, r.name == k && "
            "self.gangPolicy.minRoleReplicas[k] <= r.replicas))",
            "message": "gangPolicy.minRoleReplicas keys must be role names, each at most "
            "that role's replicas",
        },
    ],
}

PLUGIN: Schema = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "Plugin name."},
        "type": {"type": "string", "enum": ["BuiltIn"], "default": "BuiltIn"},
        "config": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "description": "Plugin settings; each plugin documents its own.",
        },
        "scope": {
            "type": "object",
            "properties": {
                "roles": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Roles the plugin applies to (empty: all).",
                },
                "target": {
                    "type": "string",
                    "enum": ["All", "Entry", "Worker"],
                    "default": "All",
                    "description": "Pods the plugin applies to.",
                },
            },
        },
    },
}

PERCENT_OR_INT = "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')"

ROLLOUT: Schema = {
    "type": "object",
    "description": "How a changed template rolls out. Default: ServingGroupRollingUpdate.",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["ServingGroupRollingUpdate", "RoleRollingUpdate"],
            "default": "ServingGroupRollingUpdate",
        },
        "rollingUpdateConfiguration": {
            "type": "object",
            "properties": {
                "maxUnavailable": {
                    **_int_or_percent(
                        "ServingGroups that may be unavailable during an update (number or "
                        "percent of replicas, rounded down; must not resolve to 0).",
                        default=1,
                    ),
                    "x-kubernetes-validations": [
                        {"rule": PERCENT_OR_INT, "message": "must be an integer >= 0 or a percent"}
                    ],
                },
                "partition": {
                    **_int_or_percent(
                        "ServingGroups with an ordinal below this (number or percent of "
                        "replicas, rounded up) keep their current revision."
                    ),
                    "x-kubernetes-validations": [
                        {"rule": PERCENT_OR_INT, "message": "must be an integer >= 0 or a percent"}
                    ],
                },
            },
        },
    },
    "x-kubernetes-validations": [
        {
            "rule": "self.type != 'RoleRollingUpdate' || !has(self.rollingUpdateConfiguration)",
            "message": "rollingUpdateConfiguration is not allowed when type is RoleRollingUpdate",
        }
    ],
}

SPEC: Schema = {
    "type": "object",
    "required": ["template"],
    "properties": {
        "replicas": {
            "type": "integer",
            "format": "int32",
            "minimum": 0,
            "default": 1,
            "description": "Number of ServingGroups.",
        },
        "schedulerName": {
            "type": "string",
            "default": "volcano",
            "description": "Scheduler of every pod; PodGroups are managed only for volcano.",
        },
        "plugins": {"type": "array", "items": PLUGIN, "description": "Ordered plugin chain."},
        "template": SERVING_GROUP,
        "rolloutStrategy": ROLLOUT,
        "recoveryPolicy": {
            "type": "string",
            "enum": ["ServingGroupRecreate", "RoleRecreate", "None"],
            "default": "RoleRecreate",
            "description": "What is recreated when a pod fails or is deleted.",
        },
    },
    "x-kubernetes-validations": [
        {
            "rule": "!(self.recoveryPolicy == 'ServingGroupRecreate' && "
            "has(self.rolloutStrategy) && self.rolloutStrategy.type == 'RoleRollingUpdate')",
            "message": "recoveryPolicy ServingGroupRecreate cannot be combined with "
            "rolloutStrategy RoleRollingUpdate",
            # The rollout type is what is wrong (docs/behaviour.md#validation).
            "fieldPath": ".rolloutStrategy.type",
        },
        {
            "rule": "(has(self.rolloutStrategy) && self.rolloutStrategy.type == "
            "'RoleRollingUpdate') || self.template.roles.all(r, !has(r.partition))",
            "message": "partition is only valid when rolloutStrategy.type is RoleRollingUpdate",
        },
    ],
}

_INT: Schema = {"type": "integer", "format": "int32"}
_STR: Schema = {"type": "string"}

# status.roles[]: one entry per role name (docs/behaviour.md#role-status)
ROLE_STATUS: Schema = {
    "type": "array",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
    "items": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": _STR,
            **dict.fromkeys(
                ("desired", "current", "ready", "updated", "failed", "backingOff"), _INT
            ),
        },
    },
}

_CONTAINER_FAILURE: Schema = {
    "type": "object",
    "properties": {
        "name": _STR,
        "reason": _STR,
        "exitCode": _INT,
        "message": _STR,
        "restartCount": _INT,
        "finishedAt": _STR,
        "waiting": _STR,
    },
}

# status.recovery: backoff state and the last failures (docs/behaviour.md#backoff, #evidence)
RECOVERY_STATUS: Schema = {
    "type": "object",
    "properties": {
        "reset": _STR,
        "units": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "group": _INT,
                    "roleId": _STR,
                    "state": {"type": "string", "enum": ["BackingOff", "Recovering", "Failed"]},
                    "recreations": _INT,
                    "lastRecreation": _STR,
                    "nextRecreation": _STR,
                    "readySince": _STR,
                    "failedAt": _STR,
                    "pod": _STR,
                    "podUID": _STR,
                    "generation": {"type": "integer", "format": "int64"},
                    "recent": {"type": "array", "items": _STR},
                },
            },
        },
        "lastFailures": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pod": _STR,
                    "group": _INT,
                    "role": _STR,
                    "time": _STR,
                    "podReason": _STR,
                    "containers": {"type": "array", "items": _CONTAINER_FAILURE},
                },
            },
        },
    },
}

# status.progress: when the counts last moved (docs/behaviour.md#progress)
PROGRESS_STATUS: Schema = {
    "type": "object",
    "properties": {"marker": _STR, "since": _STR, "exceeded": {"type": "boolean"}},
}

STATUS: Schema = {
    "type": "object",
    "properties": {
        "observedGeneration": {"type": "integer", "format": "int64"},
        "replicas": {"type": "integer", "format": "int32"},
        "currentReplicas": {"type": "integer", "format": "int32"},
        "updatedReplicas": {"type": "integer", "format": "int32"},
        "availableReplicas": {"type": "integer", "format": "int32"},
        "currentRevision": {"type": "string"},
        "updateRevision": {"type": "string"},
        "labelSelector": {"type": "string"},
        "conditions": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {
                "type": "object",
                "required": ["type", "status", "lastTransitionTime", "reason", "message"],
                "properties": {
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "observedGeneration": {"type": "integer", "format": "int64"},
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
        "roles": ROLE_STATUS,
        "recovery": RECOVERY_STATUS,
        "progress": PROGRESS_STATUS,
    },
}

# The webhook's generated-name check, by length (sizes are cheap for the CEL cost budget,
# regular expressions over concatenations are not).
NAME_LENGTH_RULE = (
    "self.spec.template.roles.all(r, size(self.metadata.name) + size(string(self.spec.replicas))"
    " + size(r.name) + size(string(r.replicas)) + size(string(r.workerReplicas)) + 4 <= 63)"
)
NAME_FORM_RULE = "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"

MODELSERVING: Schema = {
    "type": "object",
    "description": "ModelServing runs a model as ServingGroups of roles (entry + worker pods).",
    "required": ["spec"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": SPEC,
        "status": STATUS,
    },
    "x-kubernetes-validations": [
        {
            "rule": NAME_LENGTH_RULE,
            "message": "invalid name: generated names must be no more than 63 characters; "
            "shorten metadata.name or the role names",
        },
        {
            "rule": NAME_FORM_RULE,
            "message": "invalid name: must be a DNS-1035 label (lowercase letters, digits and "
            "'-', starting with a letter)",
        },
    ],
}


@cache
def podspec_definitions() -> dict[str, Any]:
    text = resources.files("generator").joinpath("podspec_schema.json").read_text()
    definitions: dict[str, Any] = json.loads(text)["definitions"]
    definitions["PodTemplateSpec"] = POD_TEMPLATE
    return definitions


def _offline_root() -> Schema:
    # Offline documents carry any ObjectMeta (uid, labels, ...) and maybe a status; both are
    # the API server's business, so they are preserved as-is rather than checked.
    root = dict(MODELSERVING)
    root["properties"] = {
        **MODELSERVING["properties"],
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }
    return root


@cache
def modelserving_schema() -> StructuralSchema:
    return StructuralSchema(_offline_root(), podspec_definitions())
