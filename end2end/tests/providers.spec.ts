import { expect, test } from "@playwright/test";
import { FAKE_UPSTREAM as FAKE, jsEnabled, open, register, settle, uniqueEmail, watchPageErrors } from "./support";

watchPageErrors();

test("add a provider, test it, edit it, delete it", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "prov"));
  await open(page, "/providers");
  await expect(page.getByRole("heading", { name: "No connections yet" })).toBeVisible();
  await page.getByRole("link", { name: "Add connection" }).first().click();
  await expect(page).toHaveURL(/\/providers\/new$/);
  await settle(page);

  await page.getByLabel("Name").fill("Fake LLM");
  await page.getByLabel("Base URL").fill(FAKE);
  await page.getByLabel("API key").fill("sk-e2e-abcd1234");
  await page.getByRole("button", { name: "Add connection" }).click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);
  await settle(page);
  await expect(page.getByRole("heading", { name: "Fake LLM" })).toBeVisible();
  // The key is never shown again, only its last four characters.
  await expect(page.getByText("••••1234")).toBeVisible();
  await expect(page.locator("#f-api_key")).toHaveValue("");

  await page.getByRole("button", { name: "Test connection" }).click();
  if (jsEnabled(page)) {
    await expect(page.getByTestId("probe")).toContainText("fake-large, fake-small");
  } else {
    await settle(page);
  }
  // The model list was kept, and is editable.
  await expect(page.getByLabel("Models")).toHaveValue("fake-large\nfake-small");

  await page.getByLabel("Name").fill("Fake LLM renamed");
  await page.getByRole("button", { name: "Save changes" }).click();
  await expect(page.getByRole("heading", { name: "Fake LLM renamed" })).toBeVisible();

  await open(page, "/providers");
  await expect(page.getByRole("link", { name: "Fake LLM renamed" })).toBeVisible();
  await page.getByRole("link", { name: "Fake LLM renamed" }).click();
  await settle(page);
  await page.getByText("Delete connection").click();
  await page.getByRole("button", { name: "Delete for good" }).click();
  await expect(page).toHaveURL(/\/providers$/);
  await expect(page.getByRole("heading", { name: "No connections yet" })).toBeVisible();
});

test("bad provider input is named beside each field", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "provbad"));
  await open(page, "/providers/new");
  await page.getByLabel("Name").fill("Internal");
  await page.getByLabel("Base URL").fill("http://10.0.0.7/v1");
  await page.getByRole("button", { name: "Add connection" }).click();
  await expect(page.getByText("This address is on a private network.")).toBeVisible();
  await settle(page);
  // Without JavaScript the page comes back empty after an error: fill it again.
  await page.getByLabel("Name").fill("Internal");
  await page.getByLabel("Base URL").fill("ftp://example.com");
  await page.getByLabel("Extra headers").fill("not a header");
  await page.getByRole("button", { name: "Add connection" }).click();
  await expect(page.getByText("Enter an http:// or https:// address")).toBeVisible();
  await expect(page.getByText("Write one header per line, as Name: value.")).toBeVisible();
  await expect(page).toHaveURL(/\/providers\/new/);
});
