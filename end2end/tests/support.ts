import { expect, Page, TestInfo, test } from "@playwright/test";

export const PASSWORD = "correct horse battery";
export const ADMIN = { email: "admin@example.com", password: PASSWORD };

/** A unique email per test and project, so runs never collide. */
export function uniqueEmail(info: TestInfo, tag: string): string {
  const project = info.project.name.replace(/[^a-z]/g, "");
  return `${tag}-${project}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

export function jsEnabled(_page: Page): boolean {
  return test.info().project.use.javaScriptEnabled !== false;
}

/** Opens a page; with JavaScript on, waits until the client has hydrated it. */
export async function open(page: Page, path: string) {
  await page.goto(path);
  await settle(page);
}

/** After a navigation: waits for hydration when JavaScript runs. */
export async function settle(page: Page) {
  if (jsEnabled(page)) {
    await page.locator("html[data-hydrated]").waitFor({ state: "attached" });
  }
}

export async function register(page: Page, email: string, displayName = "") {
  await open(page, "/register");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  if (displayName) await page.getByLabel("Display name").fill(displayName);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/$/);
  await settle(page);
}

export async function login(page: Page, email: string, password = PASSWORD) {
  await open(page, "/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

export async function logout(page: Page) {
  // The menu is a <details>: a click that lands while the page re-renders it can leave it
  // closed, so open it until its item shows.
  const signOut = page.getByRole("menuitem", { name: "Sign out" });
  await expect(async () => {
    if (!(await signOut.isVisible())) await page.getByLabel("Account menu").click();
    await expect(signOut).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 10_000 });
  await signOut.click();
  await expect(page).toHaveURL(/\/login$/);
  await settle(page);
}

/** The fake LLM provider the test script started (members may reach it: the server exempts it). */
export const FAKE_UPSTREAM = process.env.FAKE_UPSTREAM_URL ?? "http://127.0.0.2:9/v1";

/** Adds a provider connection to the fake upstream and lists its models; ends on its page. */
export async function addProvider(page: Page, name: string) {
  await open(page, "/providers/new");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Base URL").fill(FAKE_UPSTREAM);
  await page.getByLabel("API key").fill("sk-e2e-abcd1234");
  await page.getByRole("button", { name: "Add connection" }).click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);
  await settle(page);
  await page.getByRole("button", { name: "Test connection" }).click();
  await expect(page.getByLabel("Models")).toHaveValue("fake-large\nfake-small");
}

/** Creates an agent on the first connection with its first model; ends on its page. */
export async function createAgent(page: Page, name: string) {
  await open(page, "/agents/new");
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByRole("button", { name: "Create agent" }).click();
  await expect(page).toHaveURL(/\/agents\/[0-9a-f-]{36}$/);
  await settle(page);
}

/** Fails the test on anything the page itself reports as broken (a panic, a hydration
 * mismatch, a CSP violation), even when the flow itself got through. Failed HTTP answers
 * a test provokes on purpose (401, 403, 422) are not errors of the page. */
export function watchPageErrors() {
  const pageErrors: string[] = [];
  test.beforeEach(({ page }) => {
    pageErrors.length = 0;
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
    });
  });
  test.afterEach(() => {
    expect(pageErrors).toEqual([]);
  });
}

/** Our own stdio MCP server: `add` (marked read-only) and `write_note` (may write). */
export const MCP_FIXTURE = `${__dirname}/../fixtures/mcp-fixture.mjs`;

/** Adds the MCP fixture as "Fixture", approves, connects and attaches it to `agent`. */
export async function attachFixtureMcp(page: Page, agent: string) {
  await open(page, "/mcp/new");
  await page.getByLabel("Name", { exact: true }).fill("Fixture");
  await page.getByLabel("Command", { exact: true }).fill("node");
  await page.getByLabel("Arguments").fill(MCP_FIXTURE);
  await page.getByRole("button", { name: "Add server" }).click();
  await expect(page).toHaveURL(/\/mcp\/[0-9a-f-]{36}$/);
  await settle(page);
  await page.getByRole("button", { name: "Approve and allow to run" }).click();
  await expect(page.getByTestId("mcp-status")).toHaveText("Never connected");
  await settle(page);
  await page.getByRole("button", { name: "Connect and list tools" }).click();
  await expect(page.getByTestId("mcp-status")).toHaveText("Connected");
  await settle(page);
  await page.getByLabel("Attach to").selectOption({ label: agent });
  await page.getByRole("button", { name: "Attach", exact: true }).click();
  await expect(page.getByRole("link", { name: agent })).toBeVisible();
  await settle(page);
}

/** What the fake upstream answers the next chat requests with, in order (see
 * fake-upstream's `Reply`: `steps` of `{text}`, `{tool_call}`, `{sleep_ms}`…). */
export async function queueReplies(replies: object[]) {
  const base = FAKE_UPSTREAM.replace(/\/v1$/, "");
  const res = await fetch(`${base}/__fake/replies`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(replies),
  });
  expect(res.ok).toBeTruthy();
}

/** Empties the fake upstream's queue (a failed test must not leave replies for the next). */
export async function clearReplies() {
  const res = await fetch(`${FAKE_UPSTREAM.replace(/\/v1$/, "")}/__fake/replies`, { method: "DELETE" });
  expect(res.ok).toBeTruthy();
}

/** A text reply a word at a time, `cadence` ms apart. */
export function slowText(text: string, cadence = 0): object {
  return { steps: text.split(/(?<= )/).map((w) => ({ text: w })), cadence_ms: cadence };
}
