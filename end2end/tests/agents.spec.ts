import { expect, test } from "@playwright/test";
import { addProvider, FAKE_UPSTREAM, jsEnabled, open, register, settle, uniqueEmail, watchPageErrors } from "./support";

watchPageErrors();

test("create an agent, edit it twice, restore v1, duplicate, export and import", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "agent"));
  await addProvider(page, "Fake LLM");

  await open(page, "/agents");
  await expect(page.getByRole("heading", { name: "No agents yet" })).toBeVisible();
  await page.getByRole("link", { name: "New agent" }).first().click();
  await expect(page).toHaveURL(/\/agents\/new$/);
  await settle(page);
  await page.getByLabel("Name", { exact: true }).fill("Code Reviewer");
  await expect(page.getByLabel("Provider connection")).toHaveValue(/[0-9a-f-]{36}/);
  await expect(page.getByLabel("Model", { exact: true })).toHaveValue("fake-large");
  await page.getByLabel("System prompt").fill("Review the code you are given.");
  await page.getByRole("button", { name: "Create agent" }).click();
  await expect(page).toHaveURL(/\/agents\/[0-9a-f-]{36}$/);
  await settle(page);
  const agentUrl = page.url();
  await expect(page.getByRole("heading", { name: "Code Reviewer" })).toBeVisible();
  await expect(page.getByTestId("agent-version")).toHaveText("version 1");

  await page.getByLabel("System prompt").fill("Be brief.");
  await page.getByRole("button", { name: "Save new version" }).click();
  await expect(page.getByTestId("agent-version")).toHaveText("version 2");
  await settle(page);
  await page.getByLabel("Temperature").fill("0.7");
  await page.getByRole("button", { name: "Save new version" }).click();
  await expect(page.getByTestId("agent-version")).toHaveText("version 3");
  await settle(page);

  await page.getByRole("link", { name: "History" }).click();
  await expect(page).toHaveURL(/\/history$/);
  await settle(page);
  const v2 = page.locator("[data-version='2']");
  await expect(v2.getByRole("cell", { name: "Review the code you are given." })).toBeVisible();
  await expect(v2.getByRole("cell", { name: "Be brief." })).toBeVisible();
  await page.getByRole("button", { name: "Restore this version (version 1)" }).click();
  await expect(page.locator("[data-version='4']")).toContainText("restored from version 1");
  await settle(page);

  await open(page, agentUrl.replace(/^https?:\/\/[^/]+/, ""));
  await expect(page.getByTestId("agent-version")).toHaveText("version 4");
  await expect(page.getByLabel("System prompt")).toHaveValue("Review the code you are given.");
  await expect(page.getByLabel("Temperature")).toHaveValue("");

  // Export is a plain download link; importing it as is collides with the slug.
  const href = await page.getByRole("link", { name: "Export JSON" }).getAttribute("href");
  const doc = await (await page.request.get(href!)).text();
  expect(JSON.parse(doc).provider).toBe("Fake LLM");
  await open(page, "/agents/import");
  await page.getByLabel("Export document (JSON)").fill(doc);
  await page.getByRole("button", { name: "Import agent" }).click();
  await expect(page.getByTestId("import-problems")).toContainText("slug");
  await settle(page);
  await page.getByLabel("Export document (JSON)").fill(doc.replace('"slug":"code-reviewer"', '"slug":"imported"'));
  await page.getByRole("button", { name: "Import agent" }).click();
  await expect(page).toHaveURL(/\/agents\/[0-9a-f-]{36}$/);
  await settle(page);
  await expect(page.getByLabel("Slug")).toHaveValue("imported");
  await expect(page.getByLabel("System prompt")).toHaveValue("Review the code you are given.");

  await page.getByRole("button", { name: "Duplicate" }).click();
  await expect(page.getByRole("heading", { name: "Code Reviewer (copy)" })).toBeVisible();
  await settle(page);

  await open(page, "/agents?q=copy");
  await expect(page.getByRole("link", { name: "Code Reviewer (copy)" })).toBeVisible();
  await expect(page.getByRole("list", { name: "Agents" }).getByRole("listitem")).toHaveCount(1);
});

test("bad agent input is named beside each field", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "agentbad"));
  await addProvider(page, "Fake LLM");
  await open(page, "/agents/new");
  await page.getByLabel("Name", { exact: true }).fill("Hot");
  await page.getByLabel("Slug").fill("Not A Slug");
  await page.getByLabel("Temperature").fill("5");
  await page.getByRole("button", { name: "Create agent" }).click();
  await expect(page.getByText("Use lowercase letters, digits and single dashes")).toBeVisible();
  await expect(page.getByText("Use a number from 0 to 2")).toBeVisible();
  await expect(page).toHaveURL(/\/agents\/new/);
});

test("the model box suggests the chosen connection's models and follows a change of connection", async ({
  page,
}, info) => {
  await register(page, uniqueEmail(info, "agentmodels"));
  await addProvider(page, "Fake LLM");
  // A second connection whose models were typed by hand.
  await open(page, "/providers/new");
  await page.getByLabel("Name").fill("Local box");
  await page.getByLabel("Base URL").fill(FAKE_UPSTREAM);
  await page.getByLabel("Models").fill("local-one\nlocal-two");
  await page.getByRole("button", { name: "Add connection" }).click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);

  await open(page, "/agents/new");
  const options = page.locator("#model-options option");
  if (jsEnabled(page)) {
    // Only the chosen connection's models are offered; another connection brings its own.
    await page.getByLabel("Provider connection").selectOption({ label: "Fake LLM" });
    await expect(options).toHaveCount(2);
    await expect(page.getByLabel("Model", { exact: true })).toHaveValue("fake-large");
    await page.getByLabel("Provider connection").selectOption({ label: "Local box" });
    await expect(page.getByLabel("Model", { exact: true })).toHaveValue("local-one");
    await expect(options).toHaveCount(2);
    await expect(options.first()).toHaveAttribute("value", "local-one");
    // Free text still goes.
    await page.getByLabel("Model", { exact: true }).fill("local-three");
  } else {
    // Without JavaScript every connection's models are offered.
    await expect(options).toHaveCount(4);
    await page.getByLabel("Provider connection").selectOption({ label: "Local box" });
    await page.getByLabel("Model", { exact: true }).fill("local-three");
  }
  await page.getByLabel("Name", { exact: true }).fill("Local helper");
  await page.getByRole("button", { name: "Create agent" }).click();
  await expect(page).toHaveURL(/\/agents\/[0-9a-f-]{36}$/);
  await settle(page);
  await expect(page.getByLabel("Model", { exact: true })).toHaveValue("local-three");
});
