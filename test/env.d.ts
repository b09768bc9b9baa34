import type { Env as FleetEnv } from "../src/config";

// `env` from cloudflare:test carries the bindings declared in wrangler.toml.
declare global {
  namespace Cloudflare {
    interface Env extends FleetEnv {}
  }
}
