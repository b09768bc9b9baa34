"""schemathesis hooks for scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

schemathesis drops a User-Agent given with -H and sends its own, which every agent route refuses
(400 InvalidUserAgent): agent requests get an Elastic Agent's. Requests on an agent's own paths
name the enrolled agent (FUZZ_AGENT_ID), so they reach its record instead of stopping at 403/404.
"""
import os

import schemathesis

AGENT_ID = os.environ.get("FUZZ_AGENT_ID", "")
USER_AGENT = "Elastic Agent v9.6.0"


@schemathesis.hook
def before_call(context, case):
    if "agents" not in (case.operation.definition.raw.get("tags") or []):
        return
    case.headers = {**(case.headers or {}), "User-Agent": USER_AGENT}
    if AGENT_ID and case.path.startswith("/api/fleet/agents/{id}/") and case.path_parameters:
        case.path_parameters = {**case.path_parameters, "id": AGENT_ID}
