{{/* The RBAC rules of the daemon, each verb justified (tests/unit/test_deploy.py). */}}
{{- define "msctl.workloadRules" }}
  # ModelServings are the daemon's input.
  # list, watch: the cache lists them once and then follows changes (no single gets).
  - apiGroups: ["workload.serving.volcano.sh"]
    resources: ["modelservings"]
    verbs: ["list", "watch"]
  # update: the status (replicas, conditions, observedGeneration) is the daemon's output,
  # written with the read resourceVersion; the status subresource cannot change the spec.
  - apiGroups: ["workload.serving.volcano.sh"]
    resources: ["modelservings/status"]
    verbs: ["update"]
  # Pods and headless Services are what a ModelServing expands into.
  # list, watch: the cache observes the owned objects.
  # create: scale up, and recreate during rollouts and recovery.
  # patch: pod labels and annotations (and the failed-since mark of the grace period) and
  # Service specs, back to the rendered state.
  # delete: scale down, rolling updates and failed-pod recovery.
  - apiGroups: [""]
    resources: ["pods", "services"]
    verbs: ["list", "watch", "create", "patch", "delete"]
  # list, watch: revisions hold the templates of older revisions (partitions, recovery).
  # create: one ControllerRevision per template revision (immutable, so never patched).
  # delete: revisions other than the current and the update revision.
  - apiGroups: ["apps"]
    resources: ["controllerrevisions"]
    verbs: ["list", "watch", "create", "delete"]
  # Volcano PodGroups gang-schedule each ServingGroup.
  # list, watch: the cache observes them.
  # create: one per ServingGroup; patch: minMember, minResources, queue and topology follow
  # the spec. delete: when a ServingGroup is scaled away or replaced.
  - apiGroups: ["scheduling.volcano.sh"]
    resources: ["podgroups"]
    verbs: ["list", "watch", "create", "patch", "delete"]
{{- end }}
{{- define "msctl.crdRule" }}
  # list, watch: whether Volcano's PodGroup CRD is installed (and appears or goes away
  # later) decides whether PodGroups are rendered. Only that one CRD, and never written: the
  # daemon lists and watches it with the field selector metadata.name=<its name>.
  - apiGroups: ["apiextensions.k8s.io"]
    resources: ["customresourcedefinitions"]
    resourceNames: ["podgroups.scheduling.volcano.sh"]
    verbs: ["list", "watch"]
{{- end }}
{{- define "msctl.eventRule" }}
  # create: Events tell users what the daemon did to their ModelServing.
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create"]
{{- end }}
