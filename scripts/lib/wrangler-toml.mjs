// wrangler.toml as the local runners (scripts/dev.mjs, scripts/bench/serve.mjs) need it, without a TOML
// dependency: only the shapes this project's file uses.

/** The few wrangler.toml shapes this needs: [vars], [[durable_objects.bindings]], [[r2_buckets]], plain tables ([dev]), top-level keys. */
export function parseWranglerToml(text) {
  const out = { vars: {}, durableObjects: [], r2: [], compatibility_flags: [] };
  let section = "";
  let current = null;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\s+#.*$/, "").trim();
    if (!line || line.startsWith("#")) continue;
    let m;
    if ((m = /^\[\[(.+)\]\]$/.exec(line))) {
      section = m[1];
      current = {};
      if (section === "durable_objects.bindings") out.durableObjects.push(current);
      else if (section === "r2_buckets") out.r2.push(current);
      continue;
    }
    if ((m = /^\[(.+)\]$/.exec(line))) {
      section = m[1];
      // A plain table such as [dev]: its keys under out[name]; [vars] has its own branch below.
      current = section === "vars" ? null : (out[section] ??= {});
      continue;
    }
    if (!(m = /^([A-Za-z0-9_]+)\s*=\s*(.+)$/.exec(line))) continue;
    const [, key, valueText] = m;
    let value;
    try {
      value = JSON.parse(valueText);
    } catch {
      value = valueText;
    }
    if (section === "") out[key] = value;
    else if (section === "vars") out.vars[key] = typeof value === "string" ? value : JSON.stringify(value);
    else if (current) current[key] = value;
  }
  return out;
}

