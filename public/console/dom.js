// DOM building without markup: every string becomes a text node or an attribute value, never HTML.
// Everything an agent sends (hostnames, messages, tags, component names) is shown through these.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * el("a", { href: "#/x", class: "link", onclick: fn }, "text", child, [more]) → an element.
 * Attributes are set with setAttribute (no markup is ever parsed), `on*` keys add listeners, and null,
 * undefined or false attributes and children are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** The same for SVG elements (charts). */
export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "value" && "value" in node) node.value = String(value);
    else if (name === "checked" || name === "selected" || name === "disabled") node[name] = Boolean(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces a node's children. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A local, readable time for an ISO string (or "—"). */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** "3 min ago" for an ISO time, relative to now. */
export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return String(iso);
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} d ago`;
}

/** Bytes as B / KiB / MiB. */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A status badge: the status word (text) with a class for its colour. */
export function badge(status) {
  const word = String(status ?? "unknown");
  return el("span", { class: `badge status-${/^[a-z_]+$/.test(word) ? word : "unknown"}` }, word);
}

/** A labelled form field: <label>text <input …></label>, so every control has its name. */
export function field(label, control, hint) {
  return el("label", { class: "field" }, el("span", { class: "field-label" }, label), control, hint ? el("small", {}, hint) : null);
}

/** A <select> of [value, text] pairs. */
export function select(name, options, selected) {
  return el("select", { name }, options.map(([value, text]) => el("option", { value, selected: value === selected }, text)));
}

/** A table with a caption, header cells and rows of cells (nodes or text). */
export function table(caption, headers, rows, attrs = {}) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      attrs,
      el("caption", {}, caption),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headers.length, class: "empty" }, "Nothing here yet."))),
    ),
  );
}
