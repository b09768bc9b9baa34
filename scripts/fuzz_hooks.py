"""schemathesis hooks for scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

schemathesis puts its own User-Agent over the case's (and over one given with -H), which the
check-in and enroll routes refuse (400 InvalidUserAgent): agent requests get an Elastic Agent's in
the call's own arguments. Requests on an agent's own paths
name one of the enrolled agents (FUZZ_AGENTS, "id:key,…", taken in turn) with its own key, so they
reach its record instead of stopping at 403/404, and no agent meets its own rate limit.
"""
import itertools
import os

import schemathesis

AGENTS = [tuple(pair.split(":", 1)) for pair in os.environ.get("FUZZ_AGENTS", "").split(",") if ":" in pair]
NEXT = itertools.cycle(AGENTS) if AGENTS else None
USER_AGENT = "Elastic Agent v9.6.0"


@schemathesis.hook
def before_call(context, case):
    if not NEXT or "agents" not in (case.operation.definition.raw.get("tags") or []):
        return
    agent_id, key = next(NEXT)
    case.headers = {**(case.headers or {}), "Authorization": f"ApiKey {key}"}
    if case.path.startswith("/api/fleet/agents/{id}/") and case.path_parameters:
        case.path_parameters = {**case.path_parameters, "id": agent_id}


@schemathesis.hook
def process_call_kwargs(context, case, kwargs):
    if "agents" in (case.operation.definition.raw.get("tags") or []):
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "User-Agent": USER_AGENT}
