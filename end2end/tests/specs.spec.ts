import { expect, test } from "@playwright/test";
import { logout, open, register, settle, uniqueEmail, watchPageErrors } from "./support";

watchPageErrors();

const V1 = "# Todo\n\n- [ ] add items\n- [ ] tick items\n\n<script>window.pwned = 1</script>\n";
const V2 = "# Todo\n\n- [ ] add items\n- [ ] tick items\n- [ ] delete items\n";

test("write a spec, edit it into version 2, read version 1, download it, duplicate and delete", async ({
  page,
}, info) => {
  await register(page, uniqueEmail(info, "spec"));
  await open(page, "/specs");
  await expect(page.getByRole("heading", { name: "No specs yet" })).toBeVisible();
  await page.getByRole("link", { name: "New spec" }).first().click();
  await expect(page).toHaveURL(/\/specs\/new$/);
  await settle(page);
  await page.getByLabel("Name", { exact: true }).fill("Todo app");
  await page.getByLabel("Spec (Markdown)").fill(V1);
  await page.getByRole("button", { name: "Create spec" }).click();
  await expect(page).toHaveURL(/\/specs\/[0-9a-f-]{36}$/);
  await settle(page);
  const specPath = new URL(page.url()).pathname;
  await expect(page.getByRole("heading", { level: 1, name: "Todo app" })).toBeVisible();
  await expect(page.getByTestId("spec-version")).toHaveText("version 1");
  const body = page.getByTestId("spec-body");
  await expect(body.getByRole("heading", { name: "Todo" })).toBeVisible();
  // The text is rendered, never run.
  await expect(body.locator("script")).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();

  await page.getByRole("link", { name: "Edit", exact: true }).click();
  await expect(page).toHaveURL(/\?edit=1$/);
  await settle(page);
  await expect(page.getByLabel("Spec (Markdown)")).toHaveValue(V1);
  await page.getByLabel("Spec (Markdown)").fill(V2);
  await page.getByRole("button", { name: "Save as a new version" }).click();
  await expect(page.getByTestId("spec-version")).toHaveText("version 2");
  await settle(page);
  await expect(body).toContainText("delete items");

  // Version 1 is kept as it was.
  await page.getByTestId("spec-versions").getByRole("link", { name: "version 1" }).click();
  await expect(page.getByTestId("spec-version")).toHaveText("version 1");
  await settle(page);
  await expect(page.getByText("You are reading version 1; the newest is version 2.")).toBeVisible();
  await expect(body).not.toContainText("delete items");
  const href = await page.getByRole("link", { name: "Download .md" }).getAttribute("href");
  const file = await page.request.get(href!);
  expect(file.headers()["content-disposition"]).toContain('filename="Todo-app.md"');
  expect(await file.text()).toBe(V1);

  await open(page, specPath);
  await page.getByRole("button", { name: "Duplicate" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Todo app (copy)" })).toBeVisible();
  await expect(page.getByTestId("spec-version")).toHaveText("version 1");
  await settle(page);
  await open(page, "/specs");
  await expect(page.getByRole("list", { name: "Specs" }).getByRole("listitem")).toHaveCount(2);

  await page.getByRole("link", { name: "Todo app (copy)" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Todo app (copy)" })).toBeVisible();
  await settle(page);
  await page.getByText("Delete spec").click();
  await page.getByRole("button", { name: "Delete for good" }).click();
  await expect(page).toHaveURL(/\/specs$/);
  await settle(page);
  await expect(page.getByRole("list", { name: "Specs" }).getByRole("listitem")).toHaveCount(1);
  await expect(page.getByRole("link", { name: "Todo app", exact: true })).toBeVisible();
});

test("a spec over 1 MB is refused with the limit named and nothing is stored", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "specbig"));
  await open(page, "/specs/new");
  await page.getByLabel("Name", { exact: true }).fill("Too big");
  await page.getByLabel("Spec (Markdown)").fill("# Big\n" + "x".repeat(1024 * 1024));
  await page.getByRole("button", { name: "Create spec" }).click();
  await expect(page.getByText("This is larger than 1048576 bytes.")).toBeVisible();
  await expect(page).toHaveURL(/\/specs\/new/);
  await open(page, "/specs");
  await expect(page.getByRole("heading", { name: "No specs yet" })).toBeVisible();
});

test("another person can neither open nor download someone's spec", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "specowner"));
  await open(page, "/specs/new");
  await page.getByLabel("Name", { exact: true }).fill("Private plans");
  await page.getByLabel("Spec (Markdown)").fill("# Secret\n");
  await page.getByRole("button", { name: "Create spec" }).click();
  await expect(page).toHaveURL(/\/specs\/[0-9a-f-]{36}$/);
  await settle(page);
  const specPath = new URL(page.url()).pathname;
  await logout(page);

  await register(page, uniqueEmail(info, "specother"));
  await open(page, specPath);
  await expect(page.getByText("This spec does not exist, or it is not yours.")).toBeVisible();
  await expect(page.getByText("Secret")).toHaveCount(0);
  expect((await page.request.get(`${specPath}/download`)).status()).toBe(404);
  await open(page, "/specs");
  await expect(page.getByRole("heading", { name: "No specs yet" })).toBeVisible();
});
