import type { EsConfig } from "./config";
import { esRequest } from "./client";
import { TEMPLATES, templatePriority, type TemplateName } from "./indices";

const installed = new Map<string, Promise<void>>();

/**
 * Installs an index template per fleet index before the first write from this isolate. Where
 * Kibana's Fleet plugin already created the indices (a full stack), the templates do not change
 * them; they shape the indices only where this server creates them.
 */
export function ensureTemplates(config: EsConfig): Promise<void> {
  let pending = installed.get(config.url);
  if (!pending) {
    pending = installAll(config).catch((err: unknown) => {
      installed.delete(config.url);
      throw err;
    });
    installed.set(config.url, pending);
  }
  return pending;
}

/** After a connection failure the cluster may have been replaced: install again before the next write. */
export function forgetTemplates(config: EsConfig): void {
  installed.delete(config.url);
}

async function installAll(config: EsConfig): Promise<void> {
  await Promise.all(
    Object.entries(TEMPLATES).map(([index, properties]) =>
      esRequest(config, {
        method: "PUT",
        // Template names may not contain `*`: `.fleet-fileds-fromhost-meta-*` → edge-fleet-fleet-fileds-fromhost-meta.
        path: `/_index_template/edge-fleet${index.replaceAll(".", "-").replace(/-?\*$/, "")}`,
        body: {
          index_patterns: [index],
          priority: templatePriority(index as TemplateName),
          template: {
            settings: { number_of_shards: 1, auto_expand_replicas: "0-1", hidden: true },
            mappings: { dynamic: false, properties },
          },
          _meta: { managed_by: "edge-fleet-server" },
        },
      }),
    ),
  );
}
