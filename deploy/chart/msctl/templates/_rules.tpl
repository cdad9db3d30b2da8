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
{{- define "msctl.shardingRules" }}
  # Sharding (msctl run --shards, sync/shards.py): one Lease per shard, <lease-name>-shard-<i>,
  # and one member Lease per replica, <lease-name>-member-<pod name>. The member names are
  # only known once the pods exist and RBAC cannot match a name prefix, so none of these rules
  # names its Leases: they cover every Lease in this namespace (keep it to the daemon).
  # list: every round reads all of the group's Leases at once (a label selector) to see
  # which shards are free or expired and how many replicas are alive.
  # create: the first replica to take a shard, and every replica joining, creates its Lease.
  # update: take, renew and release shard Leases and renew the member Lease; a replace with
  # the read resourceVersion, so of two replicas only one takes a shard.
  # delete: a replica stopping deletes its member Lease; pods get new names, so without it
  # every pod that ever ran would leave a Lease behind.
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["list", "create", "update", "delete"]
{{- end }}
