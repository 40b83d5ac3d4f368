import { expect, test } from "@playwright/test";
import {
  addProvider,
  clearReplies,
  createAgent,
  logout,
  open,
  queueReplies,
  register,
  settle,
  uniqueEmail,
  watchPageErrors,
} from "./support";

watchPageErrors();
test.beforeEach(clearReplies);

test("usage adds up an agent's answers; another person sees none of it", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "usage"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Tally");
  await queueReplies([{ steps: [{ text: "Counted." }], input_tokens: 1200, output_tokens: 34 }]);
  await page.getByRole("link", { name: "Start a chat" }).click();
  await settle(page);
  await page.getByLabel("Message", { exact: true }).fill("Count this");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId("answer").last()).toHaveAttribute("data-status", "done", { timeout: 15_000 });

  await open(page, "/usage");
  await expect(page.getByRole("heading", { level: 1, name: "Usage" })).toBeVisible();
  const stat = (name: string) => page.locator(".stat").filter({ hasText: name }).locator("dd");
  await expect(stat("Answers")).toHaveText("1");
  await expect(stat("Input tokens")).toHaveText("1,200");
  await expect(stat("Output tokens")).toHaveText("34");
  const agents = page.getByRole("region", { name: "By agent" });
  const row = agents.getByRole("row").filter({ has: page.getByRole("link", { name: "Tally" }) });
  await expect(row.getByRole("cell")).toHaveText(["1", "1,200", "34", "$0.0000"]);
  await expect(page.getByRole("region", { name: "By model" })).toContainText("fake-large");
  // No price is configured for the fake model: the page says why its cost is $0.
  await expect(page.getByText(/no price in the pricing table.*fake-large/)).toBeVisible();
  await expect(page.locator(".day-chart rect")).toHaveCount(30);

  await page.getByRole("link", { name: "Last 7 days" }).click();
  await expect(page).toHaveURL(/\/usage\?days=7$/);
  await expect(page.getByRole("link", { name: "Last 7 days" })).toHaveAttribute("aria-current", "page");
  await expect(page.locator(".day-chart rect")).toHaveCount(7);
  await expect(stat("Answers")).toHaveText("1");

  await logout(page);
  await register(page, uniqueEmail(info, "usage-other"));
  await open(page, "/usage");
  await expect(page.getByRole("heading", { name: "No usage in this period" })).toBeVisible();
  await expect(page.getByText("Tally")).toHaveCount(0);
});
