{{/* The RBAC rules of the daemon, each verb justified (tests/unit/test_deploy.py). */}}
{{- define "msctl.workloadRules" }}
  # ModelServings are the daemon's input.
  # list, watch: the cache lists them once and then follows changes (no single gets).
  # create, patch: only with --lws-bridge, which creates the ModelServing of each
  # LeaderWorkerSet and puts its spec back when someone edits it.
  - apiGroups: ["workload.serving.volcano.sh"]
    resources: ["modelservings"]
    verbs: ["list", "watch", "create", "patch"]
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
  # LeaderWorkerSets, only with --lws-bridge (docs/behaviour.md#leaderworkerset).
  # list, watch: the bridge's cache of them; never written but for the status.
  - apiGroups: ["leaderworkerset.x-k8s.io"]
    resources: ["leaderworkersets"]
    verbs: ["list", "watch"]
  # update: replicas, readyReplicas and the conditions come from the ModelServing, written
  # with the read resourceVersion through the status subresource.
  - apiGroups: ["leaderworkerset.x-k8s.io"]
    resources: ["leaderworkersets/status"]
    verbs: ["update"]
{{- end }}
{{- define "msctl.crdRule" }}
  # list, watch: whether Volcano's PodGroup CRD is installed (and appears or goes away
  # later) decides whether PodGroups are rendered; with --lws-bridge, the LeaderWorkerSet
  # CRD starts and stops the bridge. Only these two CRDs, and never written: the daemon
  # lists and watches each with the field selector metadata.name=<its name>.
  - apiGroups: ["apiextensions.k8s.io"]
    resources: ["customresourcedefinitions"]
    resourceNames: ["podgroups.scheduling.volcano.sh", "leaderworkersets.leaderworkerset.x-k8s.io"]
    verbs: ["list", "watch"]
{{- end }}
{{- define "msctl.eventRule" }}
  # create: Events tell users what the daemon did to their ModelServing (and, with
  # --lws-bridge, to their LeaderWorkerSet).
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create"]
{{- end }}
