import { AGENT_VERSION, agentHeaders } from "./agent-headers";

interface DeliveredAction {
  id: string;
  type: string;
  data?: { policy?: { revision?: number } } | null;
}

/**
 * A small simulated Elastic Agent for the browser test: enrolls with a hostname of the test's
 * choosing, then runs elastic-agent's loop (check in, reporting its applied policy revision; ack
 * every action; a POLICY_CHANGE moves its revision; an UNENROLL ends it). The load simulator
 * (scripts/fleet-sim.mjs) measures a fleet and names its own hosts; this one is driven by a test.
 */
export class SimAgent {
  id = "";
  #key = "";
  #policyId = "";
  #revision = 0;
  #stopped = false;
  readonly #abort = new AbortController();
  #loop: Promise<void> | null = null;

  constructor(
    readonly url: string,
    readonly hostname: string,
  ) {}

  async enroll(enrollmentKey: string): Promise<void> {
    const res = await fetch(`${this.url}/api/fleet/agents/enroll?`, {
      method: "POST",
      headers: { ...agentHeaders({ "Accept-Encoding": "identity" }), Authorization: `ApiKey ${enrollmentKey}` },
      body: JSON.stringify({
        type: "PERMANENT",
        id: "",
        replace_token: "",
        metadata: {
          local: { elastic: { agent: { id: crypto.randomUUID(), version: AGENT_VERSION, snapshot: false } }, host: { hostname: this.hostname, name: this.hostname } },
          user_provided: {},
          tags: null,
        },
      }),
    });
    if (res.status !== 200) throw new Error(`enroll ${this.hostname}: ${res.status} ${await res.text()}`);
    const { item } = (await res.json()) as { item: { id: string; access_api_key: string; policy_id: string } };
    this.id = item.id;
    this.#key = item.access_api_key;
    this.#policyId = item.policy_id;
  }

  /** Starts the check-in loop; `stop()` ends it. */
  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        try {
          await this.#checkin();
        } catch {
          if (this.#stopped) return;
          // A refused or dropped check-in: the real agent backs off and tries again.
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#loop;
  }

  async #checkin(): Promise<void> {
    const res = await this.#call(`/api/fleet/agents/${this.id}/checkin`, {
      status: "online",
      message: "Running",
      components: [{ id: "filestream-default", type: "filestream", status: "HEALTHY", message: "Healthy", units: [{ id: "filestream-default-unit", type: "input", status: "HEALTHY", message: "Healthy" }] }],
      agent_policy_id: this.#policyId,
      policy_revision_idx: this.#revision,
      upgrade: {},
    });
    if (res.status === 401) {
      this.#stopped = true;
      return;
    }
    if (res.status !== 200) throw new Error(`check-in ${res.status}`);
    const { actions = [] } = (await res.json()) as { actions?: DeliveredAction[] };
    if (actions.length === 0) return;
    const events = actions.map((action) => ({
      action_id: action.id,
      agent_id: this.id,
      message: `Action "${action.id}" of type "${action.type}" acknowledged.`,
      subtype: "ACKNOWLEDGED",
      timestamp: new Date().toISOString(),
      type: "ACTION_RESULT",
    }));
    const ack = await this.#call(`/api/fleet/agents/${this.id}/acks`, { events });
    if (ack.status !== 200) throw new Error(`ack ${ack.status}`);
    await ack.arrayBuffer();
    for (const action of actions) {
      if (action.type === "POLICY_CHANGE" && typeof action.data?.policy?.revision === "number") this.#revision = action.data.policy.revision;
      if (action.type === "UNENROLL") this.#stopped = true;
    }
  }

  #call(path: string, body: unknown): Promise<Response> {
    return fetch(`${this.url}${path}?`, {
      method: "POST",
      headers: { ...agentHeaders({ "Accept-Encoding": "identity" }), Authorization: `ApiKey ${this.#key}` },
      body: JSON.stringify(body),
      signal: this.#abort.signal,
    });
  }
}
