-- Argo CD health check for vmnet.dev/v1alpha1 objects (VyosRouter, IpPool, PortPool,
-- VmNetwork, PortRule; the same script serves every kind).
--
-- The operator writes status.observedGeneration and three conditions, Ready, Reconciling
-- and Stalled, exactly one of them "True", each with the generation it describes:
--   Healthy      Ready is True and the status is of the current generation
--   Progressing  no status yet; the status is of an older generation; Reconciling is True;
--                or a Stalled (or Ready) left from an older generation
--   Degraded     Stalled is True for the current generation: nothing changes until a
--                person changes something
--   Suspended    Reconciling is True with reason Paused: the vmnet.dev/paused annotation
--                holds it (or its router) as it is; or with reason Expired: the forward's
--                spec.expiresAt has passed and its rule is off the router, as declared
-- The message is the True condition's message (its reason when the message is empty).
--
-- Only Lua's base library is used: Argo CD runs custom health checks without the standard
-- libraries unless resource.customizations.useOpenLibs.<group>_<kind> is set.
local hs = {}
local generation = obj.metadata.generation
local status = obj.status

if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to write a status"
  return hs
end

local observed = status.observedGeneration
if generation ~= nil and observed ~= generation then
  hs.status = "Progressing"
  if observed == nil then
    hs.message = "Waiting for the operator to observe generation " .. generation
  else
    hs.message = "Waiting for the operator to observe generation " .. generation ..
      " (the status is of generation " .. observed .. ")"
  end
  return hs
end

local function holds(want)
  for _, c in ipairs(status.conditions) do
    if c.type == want and c.status == "True" then
      return c
    end
  end
  return nil
end

local function said(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return c.reason or ""
end

-- A condition is current when it describes this generation (one without an
-- observedGeneration of its own is as current as the status).
local function current(c)
  local g = c.observedGeneration
  if g == nil then
    g = observed
  end
  return generation == nil or g == generation
end

local function stale(c)
  return "Waiting for the operator to finish generation " .. generation .. " (" .. c.type ..
    " is of generation " .. c.observedGeneration .. ": " .. said(c) .. ")"
end

local reconciling = holds("Reconciling")
if reconciling ~= nil then
  if reconciling.reason == "Paused" or reconciling.reason == "Expired" then
    hs.status = "Suspended"
  else
    hs.status = "Progressing"
  end
  hs.message = said(reconciling)
  return hs
end

local stalled = holds("Stalled")
if stalled ~= nil then
  if current(stalled) then
    hs.status = "Degraded"
    hs.message = said(stalled)
  else
    hs.status = "Progressing"
    hs.message = stale(stalled)
  end
  return hs
end

local ready = holds("Ready")
if ready ~= nil then
  if current(ready) then
    hs.status = "Healthy"
    hs.message = said(ready)
  else
    hs.status = "Progressing"
    hs.message = stale(ready)
  end
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for a Ready, Reconciling or Stalled condition"
return hs
