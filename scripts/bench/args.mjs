/**
 * `--key value`, `--key=value` and bare `--flag` (true). Keys listed in `repeatable` collect every
 * occurrence into an array (serve.mjs's `--var K=V`).
 */
export function parseArgs(argv, repeatable = []) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    let key, value;
    if (eq > 0) [key, value] = [a.slice(2, eq), a.slice(eq + 1)];
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) [key, value] = [a.slice(2), argv[++i]];
    else [key, value] = [a.slice(2), true];
    if (repeatable.includes(key)) (out[key] ??= []).push(value);
    else out[key] = value;
  }
  return out;
}
