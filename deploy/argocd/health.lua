-- Argo CD health check for ModelServing (workload.serving.volcano.sh/v1alpha1).
-- Install: resource.customizations.health.workload.serving.volcano.sh_ModelServing in argocd-cm
-- (docs/operations.md#argo-cd). Tested by tests/unit/test_argocd_health.py on status objects
-- recorded from the daemon (tests/data/modelserving-status/).
--
--   Healthy      Available=True, status.observedGeneration == metadata.generation and
--                status.updatedReplicas == status.replicas == spec.replicas
--   Degraded     a Failed/ReplicaFailure condition is True, or the ModelServing has not been
--                Available for longer than PROGRESS_DEADLINE_SECONDS since it started
--                progressing (a rollout or a group that does not get ready)
--   Progressing  anything else: no status yet, an older generation observed, groups being
--                created, updated or repaired
local PROGRESS_DEADLINE_SECONDS = 600

local function condition(conditions, kind)
  if conditions == nil then return nil end
  for _, c in ipairs(conditions) do
    if c.type == kind then return c end
  end
  return nil
end

-- Seconds since the epoch of an RFC 3339 UTC time ("2026-11-29T12:00:00Z").
local function epoch(text)
  local y, mo, d, h, mi, s = string.match(text or "", "^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if y == nil then return nil end
  -- os.time reads a table as local time; so does os.date("!*t") below, so both shift alike.
  return os.time({year = tonumber(y), month = tonumber(mo), day = tonumber(d),
                  hour = tonumber(h), min = tonumber(mi), sec = tonumber(s)})
end

local function now()
  return os.time(os.date("!*t"))
end

local hs = {}
local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for msctl to reconcile the ModelServing"
  return hs
end
if obj.metadata.generation ~= nil and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for msctl to observe generation " .. obj.metadata.generation
  return hs
end

for _, kind in ipairs({"Failed", "ReplicaFailure"}) do
  local failed = condition(status.conditions, kind)
  if failed ~= nil and failed.status == "True" then
    hs.status = "Degraded"
    hs.message = failed.message or failed.reason or kind
    return hs
  end
end

local want = 1
if obj.spec ~= nil and obj.spec.replicas ~= nil then want = obj.spec.replicas end
local replicas = status.replicas or 0
local updated = status.updatedReplicas or 0
local available = condition(status.conditions, "Available")
if available ~= nil and available.status == "True" and updated == replicas and replicas == want then
  hs.status = "Healthy"
  hs.message = available.message or "All Serving groups are ready"
  return hs
end

local moving = condition(status.conditions, "UpdateInProgress")
if moving == nil or moving.status ~= "True" then
  moving = condition(status.conditions, "Progressing")
end
local message = string.format("%d/%d groups available, %d/%d updated",
  status.availableReplicas or 0, want, updated, want)
if moving ~= nil and moving.status == "True" then
  message = moving.message or message
  local since = epoch(moving.lastTransitionTime)
  if since ~= nil and now() - since > PROGRESS_DEADLINE_SECONDS then
    hs.status = "Degraded"
    hs.message = string.format("No progress for %d s (deadline %d s): %s",
      now() - since, PROGRESS_DEADLINE_SECONDS, message)
    return hs
  end
end
hs.status = "Progressing"
hs.message = message
return hs
