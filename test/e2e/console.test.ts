import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM_PATH, chromiumMissing } from "../support/chromium";
import { startDevServer, type DevServer } from "../support/dev-server";
import { SimAgent } from "../support/sim-agents";

// The console in a real browser (Debian's chromium, driven by playwright-core) over `npm start`.
// Without chromium the test skips (announced by test/support/announce-skips.ts); under CI it fails.
const missing = chromiumMissing();
const SCREENSHOTS = join("test-output", "screenshots");
const HOSTILE = "<img src=x onerror=alert(1)>";
const AGENTS = 20;

describe.skipIf(missing !== null && !process.env.CI)("the fleet console in Chromium", () => {
  let server: DevServer;
  let browser: Browser;
  let page: Page;
  const agents: SimAgent[] = [];
  const dialogs: string[] = [];
  const consoleErrors: string[] = [];
  const requestedUrls: string[] = [];

  beforeAll(async () => {
    if (missing) throw new Error(`the browser test cannot run: ${missing}`);
    mkdirSync(SCREENSHOTS, { recursive: true });
    // Short long polls, so simulated agents see new revisions and actions within a test's time.
    // The stores send their check-in counts every 10 s (CHECKIN_VIEW_LAG; the default minute would
    // show "this minute so far" only at the next minute's send, docs/console.md).
    server = await startDevServer({ CHECKIN_LONG_POLL: "3s", CHECKIN_JITTER: "0s", CHECKIN_MIN_POLL: "1s", CHECKIN_VIEW_LAG: "10s" });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("dialog", (dialog) => {
      dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.accept();
    });
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(`pageerror: ${error.message}`));
    page.on("request", (request) => requestedUrls.push(request.url()));
  });

  afterAll(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    await browser?.close();
    await server?.stop();
  });

  /** Waits until the element's text is exactly `text` (the page updates by itself: pushes, reloads). */
  async function textIs(selector: string, text: string, timeout = 30_000): Promise<void> {
    await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent?.trim() === t, [selector, text] as const, { timeout });
  }

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  it("signs in with the admin token, kept in session storage and never in a URL", async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel("Admin token or admin API key").fill("not-the-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That token or key is not accepted.").waitFor();
    await shot("sign-in");
    // By keyboard: the field has focus after a failed attempt too, and Enter submits.
    await page.getByLabel("Admin token or admin API key").fill("");
    expect(await page.evaluate(() => document.activeElement?.getAttribute("name"))).toBe("credential");
    await page.keyboard.type(server.adminToken);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    // Each page puts focus on its content, so the next Tab reaches the page's first control, not the header's.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("main");
    // The overview's controls come with its first push: until then "Waiting…" holds none to reach.
    await textIs("[data-tile=active]", "0");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.getElementById("main")!.contains(document.activeElement))).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem("fleet-console-credential"))).toBe(server.adminToken);
    await page.locator(".live-live").waitFor();
  });

  it("creates a policy and an enrollment key whose token is shown once with its install command", async () => {
    await page.getByRole("link", { name: "Policies", exact: true }).click();
    await page.getByLabel("Id", { exact: true }).fill("web");
    await page.getByLabel("Name", { exact: true }).fill("Web servers");
    await page.getByRole("button", { name: "Create policy" }).click();
    await page.getByRole("link", { name: "Web servers", exact: true }).waitFor();
    await shot("policies");

    await page.getByRole("link", { name: "Enrollment keys", exact: true }).click();
    await page.getByLabel("Policy").selectOption("web");
    await page.getByLabel("Name").fill("browser-test");
    await page.getByRole("button", { name: "Create key" }).click();
    const token = await page.locator("[data-secret=token]").inputValue();
    expect(token.length).toBeGreaterThan(20);
    expect(await page.locator("[data-secret=command]").inputValue()).toBe(`sudo elastic-agent install --url=${server.url} --enrollment-token=${token}`);
    await page.getByRole("cell", { name: "browser-test" }).waitFor();
    await shot("enrollment-keys");

    // 20 agents enroll with it, one of them with a hostname that is markup.
    for (let i = 0; i < AGENTS; i++) agents.push(new SimAgent(server.url, i === 7 ? HOSTILE : `web-${String(i).padStart(2, "0")}`));
    await Promise.all(agents.map((agent) => agent.enroll(token)));
    for (const agent of agents) agent.start();
  });

  it("counts the agents by status on the overview as they check in, pushed live", async () => {
    await page.getByRole("link", { name: "Overview", exact: true }).click();
    // Marks this document: a reload would lose it.
    await page.evaluate(() => Object.assign(window, { consoleNotReloaded: true }));
    await textIs("[data-status=online]", String(AGENTS));
    await textIs("[data-tile=active]", String(AGENTS));
    expect(await page.locator("[data-status=offline]").textContent()).toBe("0");
    expect(await page.locator("[data-status=enrolling]").textContent()).toBe("0");
    await page.getByRole("cell", { name: "Web servers" }).waitFor();
    // Check-ins are counted, not agents: 20 agents polling every ~3 s make more than 20 a minute,
    // which the hubs push to the page (the stores send their counts every 10 s, above).
    await page.waitForFunction(
      (agents) => Number(document.querySelector("[data-checkins-now]")?.textContent) > agents || Number(document.querySelector("[data-tile=checkins]")?.textContent) > agents,
      AGENTS,
      { timeout: 45_000 },
    );
    expect(await page.locator("svg.sparkline polyline").count()).toBe(1);
    expect(await page.evaluate(() => (window as unknown as { consoleNotReloaded?: boolean }).consoleNotReloaded)).toBe(true);
    await shot("overview");
  });

  it("publishes a new revision, shows its diff, and sees it reach every agent", async () => {
    await page.getByRole("link", { name: "Web servers", exact: true }).click();
    await textIs("[data-reach]", `${AGENTS} of ${AGENTS} active agents run revision 1.`);
    const editor = page.getByLabel("Policy content (JSON), prefilled with the latest revision");
    const content = JSON.parse(await editor.inputValue()) as Record<string, unknown>;
    await editor.fill(JSON.stringify({ ...content, agent: { logging: { level: "debug" } } }, null, 2));
    await page.getByRole("button", { name: "Publish revision" }).click();
    await page.getByText("Published revision 2.").waitFor();
    await textIs("[data-reach]", `${AGENTS} of ${AGENTS} active agents run revision 2.`);
    await page.locator("[data-diff='2']").click();
    await page.locator(".changes li", { hasText: "agent.logging.level" }).waitFor();
    expect(await page.locator(".changes li", { hasText: "agent.logging.level" }).textContent()).toBe('agent.logging.level added → "debug"');
    await shot("policy-revision");
  });

  it("starts a staged rollout, promotes it, and the last stage reaches every agent", async () => {
    const editor = page.getByLabel("Policy content (JSON), prefilled with the latest revision");
    const content = JSON.parse(await editor.inputValue()) as Record<string, unknown>;
    await editor.fill(JSON.stringify({ ...content, agent: { logging: { level: "warning" } } }, null, 2));
    await page.getByLabel("Stages (cumulative %)").fill("50, 100");
    await page.getByRole("button", { name: "Start staged rollout" }).click();
    await page.getByText("Staged rollout started.").waitFor();
    await textIs("[data-rollout-stage]", "1 of 2 (50%, 100%)");
    await shot("rollout-stage-1");
    // Paused first, so the hub's own evaluation (every 10 s) cannot promote the stage before the click.
    await page.getByRole("button", { name: "Pause" }).click();
    await textIs("[data-rollout-status]", "paused");
    expect(await page.getByRole("button", { name: "Resume" }).isEnabled()).toBe(true);
    await page.getByRole("button", { name: "Promote to next stage" }).click();
    await textIs("[data-rollout-stage]", "2 of 2 (50%, 100%)");
    await textIs("[data-reach]", `${AGENTS} of ${AGENTS} active agents run revision 3.`, 45_000);
    expect(await page.locator("#staged-rollout table tbody tr").count()).toBe(2);
    // The stages over time: a series (acked, failed, pending) per stage, from the rollout's samples.
    for (const stage of ["0", "1"]) {
      for (const series of ["acked", "failed", "pending"]) {
        // Attached, not "visible": a series that stays at 0 (no failures) is a flat line with no height.
        const line = page.locator(`#staged-rollout g[data-stage="${stage}"] polyline[data-series="${series}"]`);
        await line.waitFor({ state: "attached" });
        expect(Number(await line.getAttribute("data-points"))).toBeGreaterThanOrEqual(1);
      }
    }
    const label = (await page.locator("#staged-rollout figure svg").getAttribute("aria-label")) ?? "";
    expect(label).toMatch(/50%: \d+ acked, 0 failed, \d+ pending of \d+; 100%: \d+ acked/);
    await shot("rollout-promoted");
  });

  it("lists the agents, the hostile hostname as text, and unenrolls one agent from its page", async () => {
    await page.getByRole("link", { name: "Agents", exact: true }).click();
    await page.locator("#agents-table tbody tr[data-agent-row]").nth(AGENTS - 1).waitFor();
    expect(await page.locator("#agents-table tbody tr[data-agent-row]").count()).toBe(AGENTS);
    const hostile = page.locator("#agents-table a.hostname", { hasText: HOSTILE });
    expect(await hostile.textContent()).toBe(HOSTILE);
    expect(await hostile.isVisible()).toBe(true);
    expect(await page.locator("#agents-table img").count()).toBe(0);
    await shot("agents");

    await hostile.click();
    await page.getByRole("heading", { name: `Agent ${HOSTILE}` }).waitFor();
    expect(await page.locator("main img").count()).toBe(0);
    await page.getByRole("cell", { name: "filestream-default", exact: true }).waitFor();
    // Enrolled, then online: the history the agent's store keeps, newest first.
    expect(await page.locator("ol.history li .badge").allTextContents()).toEqual(["online", "enrolled"]);
    await shot("agent-hostile");

    await page.getByRole("link", { name: "Agents", exact: true }).click();
    await page.locator("#agents-table a.hostname", { hasText: "web-03" }).click();
    await page.getByRole("heading", { name: "Agent web-03" }).waitFor();
    await page.getByRole("button", { name: "Unenroll" }).click();
    await page.getByText("Unenroll: sent.").waitFor();
    await page.getByRole("link", { name: "Overview", exact: true }).click();
    await textIs("[data-tile=active]", String(AGENTS - 1));
    await textIs("[data-status=unenrolled]", "1");
  });

  it("applies a bulk operation to every agent of the filtered policy", async () => {
    await page.goto(`${server.url}/#/agents?policy_id=web`);
    await page.locator("#agents-table tbody tr[data-agent-row]").first().waitFor();
    await page.getByRole("checkbox", { name: /every active agent of policy web/ }).check();
    await page.getByLabel("Add tags").fill("fleet, eu");
    await page.getByRole("button", { name: "Update tags" }).click();
    await page.getByText("Update tags: started for every agent of policy web").waitFor();
    // The bulk job pages through the policy's roster: every active agent gets the tags, the unenrolled one does not.
    const deadline = Date.now() + 30_000;
    let tagged = 0;
    while (Date.now() < deadline) {
      const res = await fetch(`${server.url}/api/fleet/agents?tag=eu&perPage=50`, { headers: { Authorization: `Bearer ${server.adminToken}` } });
      tagged = ((await res.json()) as { total: number }).total;
      if (tagged === AGENTS - 1) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(tagged).toBe(AGENTS - 1);
  });

  it("shows actions with their progress", async () => {
    await page.getByRole("link", { name: "Actions", exact: true }).click();
    const unenroll = page.locator("tr[data-action]", { hasText: "UNENROLL" });
    await unenroll.waitFor();
    // The action's counts follow the ack through the bulk job; the page reloads them when the fleet changes.
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll<HTMLTableRowElement>("tr[data-action]")).some(
          (row) => row.querySelector("td:nth-child(2)")?.textContent === "UNENROLL" && /1\/1 acked$/.test(row.querySelector("td:nth-child(4)")?.textContent ?? ""),
        ),
      undefined,
      { timeout: 30_000 },
    );
    expect(await unenroll.locator("td").nth(2).textContent()).toBe("COMPLETE");
    await shot("actions");
  });

  it("ran no script from agent data, broke no CSP rule, and put the credential in no URL; signs out", async () => {
    expect(dialogs.filter((d) => d.startsWith("alert"))).toEqual([]);
    expect(dialogs).toEqual(["confirm: Unenroll this agent?"]);
    expect(consoleErrors.filter((e) => /Content Security Policy|pageerror/.test(e))).toEqual([]);
    expect(requestedUrls.filter((u) => u.includes(server.adminToken))).toEqual([]);

    // Readable on a phone: the same overview at a phone's width.
    await page.getByRole("link", { name: "Overview", exact: true }).click();
    await textIs("[data-tile=active]", String(AGENTS - 1));
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("overview-phone");
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("fleet-console-credential"))).toBeNull();
  });
});
