import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const SCHEMA_PATH = resolve(process.cwd(), "..", "shared", "reference", "fleet-server", "schema.json");

export type DocumentCheck = (definition: string, document: unknown) => string[];

/**
 * Validates a document against one definition of fleet-server's `schema.json` (read from ../shared,
 * never copied here). Returns the validation errors; null when the reference is absent.
 * Some `required` lists name fields the definition does not declare and fleet-server never writes
 * (`id`, `agent`, `action` on results; `status` on agents): those entries are dropped, every
 * declared required field is enforced.
 */
export const FLEET_SCHEMA_PATH = SCHEMA_PATH;

export function fleetSchemaCheck(): DocumentCheck | null {
  if (!existsSync(SCHEMA_PATH)) {
    // The reason is printed once for the run by test/support/announce-skips.ts; CI never skips.
    if (process.env.CI) throw new Error(`CI must have the reference beside the project: ${SCHEMA_PATH} is absent`);
    return null;
  }
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as {
    definitions: Record<string, { properties?: Record<string, unknown>; required?: string[] }>;
  };
  for (const definition of Object.values(schema.definitions)) {
    if (definition.required && definition.properties) {
      definition.required = definition.required.filter((name) => name in definition.properties!);
    }
  }
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat("raw", true);
  ajv.addSchema({ ...schema, $id: "fleet" });
  return (definition, document) => {
    const validate = ajv.compile({ $ref: `fleet#/definitions/${definition}` });
    return validate(document) ? [] : (validate.errors ?? []).map((e: { instancePath: string; message?: string }) => `${e.instancePath || "/"} ${e.message ?? ""}`);
  };
}
