import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "../..");
const scratch = mkdtempSync(path.join(tmpdir(), "fleet-docs-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function openapiDoc(...args: string[]) {
  return spawnSync("node", ["scripts/openapi-doc.mjs", ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
}

describe("docs/admin-api.md", () => {
  it("is what scripts/openapi-doc.mjs renders from the OpenAPI document today", () => {
    const run = openapiDoc("--check");
    expect(run.stderr.trim()).toBe("docs/admin-api.md is up to date");
    expect(run.status).toBe(0);
  });

  it("is reported stale when it differs from the document", () => {
    const stale = path.join(scratch, "admin-api.md");
    writeFileSync(stale, readFileSync(path.join(root, "docs/admin-api.md"), "utf8").replace("List agent policies", "List policies"));
    const run = openapiDoc("--check", "--file", stale);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("is out of date with the OpenAPI document");
  });

  it("documents every admin route of the document with its body fields", () => {
    const doc = readFileSync(path.join(root, "docs/admin-api.md"), "utf8");
    expect(doc).toContain("## DELETE `/api/fleet/enrollment_api_keys/{id}`");
    expect(doc).toContain("## POST `/api/fleet/agents/bulk_upgrade`");
    // A body's fields with their constraints, and no unresolved zod definition names.
    expect(doc).toMatch(/policy_id: string {2}\/\/ ≥ 1 chars/);
    expect(doc).not.toContain("__schema");
  });
});

/** README.md, BENCHMARKS.md and everything under docs/. */
function markdownFiles(): string[] {
  const docs = path.join(root, "docs");
  return ["README.md", "BENCHMARKS.md", ...readdirSync(docs).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)].filter((f) => existsSync(path.join(root, f)));
}

/** GitHub's heading anchors, plus explicit `<a id>`s. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of markdown.replace(/```[\s\S]*?```/g, "").split("\n")) {
    const heading = line.match(/^#{1,6}\s+(.*)$/);
    if (heading) {
      const slug = heading[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
      const n = seen.get(slug) ?? 0;
      seen.set(slug, n + 1);
      anchors.add(n === 0 ? slug : `${slug}-${n}`);
    }
    for (const m of line.matchAll(/<a id="([^"]+)"/g)) anchors.add(m[1]!);
  }
  return anchors;
}

/**
 * Pages other branches of issue #17 add (operations and hardening docs, the license, the dev-vars
 * example). Linked already; tolerated only while absent, checked like any link once they exist.
 */
const ADDED_ELSEWHERE = new Set(["docs/operations.md", "docs/hardening.md", "LICENSE", ".dev.vars.example"]);

describe("links in the documentation", () => {
  it("lead to files and headings that exist", () => {
    const broken: string[] = [];
    for (const file of markdownFiles()) {
      const text = readFileSync(path.join(root, file), "utf8").replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue; // https:, mailto:
        const [filePart, anchor] = target!.split("#") as [string, string | undefined];
        const resolved = filePart === "" ? path.join(root, file) : path.resolve(path.dirname(path.join(root, file)), filePart);
        if (!existsSync(resolved) && ADDED_ELSEWHERE.has(path.relative(root, resolved))) continue;
        if (!resolved.startsWith(root + path.sep) || !existsSync(resolved)) {
          broken.push(`${file}: ${target} (no such file in the repository)`);
          continue;
        }
        if (anchor && statSync(resolved).isFile() && resolved.endsWith(".md") && !anchorsOf(readFileSync(resolved, "utf8")).has(anchor)) {
          broken.push(`${file}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("would notice a broken one", () => {
    expect(anchorsOf("## Files, artifacts and the PGP key\n")).toContain("files-artifacts-and-the-pgp-key");
    expect(anchorsOf("## `GET /x`\n")).toContain("get-x");
  });
});
