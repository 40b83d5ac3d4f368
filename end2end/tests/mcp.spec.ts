import path from "node:path";
import { expect, test } from "@playwright/test";
import { addProvider, createAgent, jsEnabled, open, register, settle, uniqueEmail, watchPageErrors } from "./support";

watchPageErrors();

// Our own stdio MCP server: `add` (marked read-only) and `write_note` (may write).
const FIXTURE = path.join(__dirname, "..", "fixtures", "mcp-fixture.mjs");
const ENV_SECRET = "e2e-env-secret-9137";

test("add an MCP server, approve its command line, connect, attach it to an agent", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "mcp"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Calculator");

  await open(page, "/mcp");
  await expect(page.getByRole("heading", { name: "No MCP servers yet" })).toBeVisible();
  await page.getByRole("link", { name: "Add server" }).first().click();
  await expect(page).toHaveURL(/\/mcp\/new$/);
  await settle(page);
  // A bad environment line is named, and nothing is added.
  await page.getByLabel("Name", { exact: true }).fill("Fixture");
  await page.getByLabel("Command", { exact: true }).fill("node");
  await page.getByLabel("Arguments").fill(FIXTURE);
  await page.getByLabel("Environment").fill("1BAD=x");
  await page.getByRole("button", { name: "Add server" }).click();
  await expect(page.getByText("Write one variable per line, as NAME=value")).toBeVisible();
  await settle(page);
  await page.getByLabel("Name", { exact: true }).fill("Fixture");
  await page.getByLabel("Command", { exact: true }).fill("node");
  await page.getByLabel("Arguments").fill(FIXTURE);
  await page.getByLabel("Environment").fill(`API_TOKEN=${ENV_SECRET}`);
  await page.getByRole("button", { name: "Add server" }).click();
  await expect(page).toHaveURL(/\/mcp\/[0-9a-f-]{36}$/);
  await settle(page);

  // Nothing runs before the owner approves the exact line shown (env values as fingerprints).
  await expect(page.getByTestId("mcp-status")).toHaveText("Needs approval");
  await expect(page.getByTestId("command-line")).toHaveText(/^API_TOKEN=<hmac:[0-9a-f]{8}> node /);
  await expect(page.getByTestId("command-line")).toContainText(` node ${FIXTURE}`);
  await expect(page.getByRole("button", { name: "Connect and list tools" })).toHaveCount(0);
  await page.getByRole("button", { name: "Approve and allow to run" }).click();
  await expect(page.getByTestId("mcp-status")).toHaveText("Never connected");
  await settle(page);
  await page.getByRole("button", { name: "Connect and list tools" }).click();
  await expect(page.getByTestId("mcp-status")).toHaveText("Connected");
  await settle(page);
  const tools = page.getByRole("list", { name: "Tools" });
  await expect(tools.getByText("add", { exact: true })).toBeVisible();
  await expect(tools.getByText("write_note", { exact: true })).toBeVisible();
  await expect(tools.getByText("may write")).toBeVisible();
  await expect(tools.getByText("marked read-only")).toBeVisible();
  await expect(page.getByTestId("mcp-trust")).toContainText("Every tool of this server asks before it runs");
  await tools.getByText("Input schema").first().click();
  await expect(tools.getByText('"required"').first()).toBeVisible();
  expect(await page.content()).not.toContain(ENV_SECRET);

  await page.getByLabel("Attach to").selectOption({ label: "Calculator" });
  await page.getByRole("button", { name: "Attach", exact: true }).click();
  await expect(page.getByRole("link", { name: "Calculator" })).toBeVisible();
  await settle(page);

  // Attached, it cannot be deleted.
  await page.getByText("Delete server").click();
  await page.getByRole("button", { name: "Delete for good" }).click();
  await expect(page.getByText("This server is attached to Calculator, so it cannot be deleted.")).toBeVisible();
  await settle(page);

  // The agent's editor lists the server and its tools with the policy that applies.
  await page.getByRole("link", { name: "Calculator" }).click();
  await expect(page).toHaveURL(/\/agents\/[0-9a-f-]{36}$/);
  await settle(page);
  await expect(page.getByTestId("agent-version")).toHaveText("version 2");
  const policy = (tool: string) => page.locator(`tr[data-tool="${tool}"] [data-testid="tool-policy"]`);
  // A server's read-only hint grants nothing by itself: both ask until a policy says otherwise.
  await expect(policy("Fixture/add")).toHaveText("ask");
  await expect(policy("Fixture/write_note")).toHaveText("ask");
  if (jsEnabled(page)) {
    // Each row's menu sets its tool's policy (it writes the line the form sends).
    await page.getByLabel("Policy for Fixture/write_note").selectOption("deny");
    await expect(policy("Fixture/write_note")).toHaveText("deny");
    await expect(page.getByLabel("Tool policies")).toHaveValue("Fixture/write_note=deny");
  } else {
    await expect(page.getByLabel("Policy for Fixture/write_note")).toBeDisabled();
    await page.getByLabel("Tool policies").fill("Fixture/write_note=deny");
  }
  await page.getByRole("button", { name: "Save new version" }).click();
  await expect(page.getByTestId("agent-version")).toHaveText("version 3");
  await expect(policy("Fixture/write_note")).toHaveText("deny");
  await expect(page.getByLabel("Policy for Fixture/write_note")).toHaveValue("deny");

  // The list finds it by name.
  await open(page, "/mcp?q=fixt");
  await expect(page.getByRole("link", { name: "Fixture" })).toBeVisible();
  await open(page, "/mcp?q=nothing-like-it");
  await expect(page.getByText("No server matches.")).toBeVisible();
});

test("import servers from another client's mcpServers JSON, all or nothing", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "mcp-import"));
  await open(page, "/mcp");
  // One bad entry: nothing is created, and the problem names the entry and the field.
  const broken = { mcpServers: { Files: { command: "node", args: [FIXTURE] }, broken: { args: ["--flag"] } } };
  await page.getByLabel("mcpServers JSON").fill(JSON.stringify(broken));
  await page.getByRole("button", { name: "Import servers" }).click();
  await expect(page.getByTestId("import-problems")).toContainText("mcpServers.broken.command");
  await settle(page);
  await expect(page.getByRole("heading", { name: "No MCP servers yet" })).toBeVisible();

  const good = {
    mcpServers: {
      Files: { command: "node", args: [FIXTURE], env: { API_TOKEN: ENV_SECRET } },
      Remote: { type: "http", url: "https://mcp.example.com/mcp" },
    },
  };
  await page.getByLabel("mcpServers JSON").fill(JSON.stringify(good));
  await page.getByRole("button", { name: "Import servers" }).click();
  await expect(page.getByRole("link", { name: "Remote", exact: true })).toBeVisible();
  await expect(page.getByRole("link", { name: "Files", exact: true })).toBeVisible();
  await settle(page);

  // An imported command waits for approval like one added by hand.
  await page.getByRole("link", { name: "Files", exact: true }).click();
  await expect(page).toHaveURL(/\/mcp\/[0-9a-f-]{36}$/);
  await settle(page);
  await expect(page.getByTestId("mcp-status")).toHaveText("Needs approval");
  await expect(page.getByTestId("command-line")).toHaveText(/^API_TOKEN=<hmac:[0-9a-f]{8}> node /);
  expect(await page.content()).not.toContain(ENV_SECRET);
});
