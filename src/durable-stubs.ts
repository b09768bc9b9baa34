import type { Agent } from "../durable/agent";
import type { Directory } from "../durable/directory";
import type { PolicyHub } from "../durable/policy-hub";
import type { Env } from "./config";

/**
 * The RPC view of a Durable Object class: its methods as plain async calls. Our methods take and
 * return structured-clonable data only, so this replaces workers-types' deep `Rpc` mapping, which
 * gives up on recursive JSON types.
 */
type Remote<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

/** Named stubs for the three Durable Object classes; ids derive from names so every edge finds the same object. */
export const agentObject = (env: Env, agentId: string) => env.AGENTS.get(env.AGENTS.idFromName(agentId)) as unknown as Remote<Agent>;
export const policyHub = (env: Env, policyId: string) =>
  env.POLICY_HUBS.get(env.POLICY_HUBS.idFromName(policyId)) as unknown as Remote<PolicyHub>;
export const directory = (env: Env) => env.DIRECTORY.get(env.DIRECTORY.idFromName("fleet")) as unknown as Remote<Directory>;
