import { expect, Page, test } from "@playwright/test";
import {
  addProvider,
  attachFixtureMcp,
  clearReplies,
  createAgent,
  logout,
  open,
  queueReplies,
  register,
  settle,
  slowText,
  uniqueEmail,
  watchPageErrors,
} from "./support";

watchPageErrors();
test.beforeEach(clearReplies);

const WORDS = Array.from({ length: 30 }, (_, i) => `w${i + 1}`).join(" ");

function answer(page: Page) {
  return page.getByTestId("answer").last();
}

test("an answer's run has a trace of its model and tool calls, and leads back to the answer", async ({
  page,
}, info) => {
  await register(page, uniqueEmail(info, "trace"), "Tess");
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Tracer");
  await attachFixtureMcp(page, "Tracer");
  await page.getByRole("link", { name: "Tracer" }).click();
  await settle(page);
  await queueReplies([
    {
      steps: [{ text: "Writing it down. " }, { tool_call: { id: "c1", name: "Fixture__write_note", input: { text: "tea" } } }],
      input_tokens: 40,
      output_tokens: 12,
    },
    { steps: [{ text: "Noted: tea." }], input_tokens: 70, output_tokens: 4 },
  ]);
  await page.getByRole("link", { name: "Start a chat" }).click();
  await settle(page);
  await page.getByLabel("Message", { exact: true }).fill("Note: tea");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
  await settle(page);
  await answer(page).getByTestId("allow").click();
  await expect(answer(page)).toHaveAttribute("data-status", "done");
  await settle(page);

  await answer(page).getByTestId("answer-trace").click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]{36}$/);
  await settle(page);
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Done");
  await expect(page.getByTestId("run-tokens")).toHaveText("110 in / 16 out");
  const trace = page.getByRole("list", { name: "Trace" });
  await expect(trace.getByTestId("step-model")).toHaveCount(2);
  await expect(trace.getByTestId("step-model").first()).toContainText("fake-large");
  await expect(trace.getByTestId("step-model").first()).toContainText("tool_use");
  await expect(trace.getByTestId("step-model").first().getByTestId("step-figures")).toContainText("40 in / 12 out");
  await expect(trace.getByTestId("step-model").last()).toContainText("Noted: tea.");
  const tool = trace.getByTestId("step-tool");
  await expect(tool).toContainText("Fixture/write_note");
  await expect(tool.getByTestId("step-approval")).toHaveText("Allowed by Tess");
  await tool.getByText("Arguments").click();
  await expect(tool).toContainText('"text": "tea"');
  await tool.getByText("Result").click();
  await expect(tool).toContainText("noted: tea");

  await page.getByRole("link", { name: "Open the answer" }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}(#m-[0-9a-f-]{36})?$/);
  await settle(page);
  await expect(answer(page).locator(".markdown").last()).toHaveText("Noted: tea.");
});

test("the runs list shows live and past runs, filters them and stops one; nobody else sees them", async ({
  page,
}, info) => {
  await register(page, uniqueEmail(info, "runs"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Runner");
  await queueReplies([slowText("Quick answer.")]);
  await page.getByRole("link", { name: "Start a chat" }).click();
  await settle(page);
  await page.getByLabel("Message", { exact: true }).fill("First");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
  await expect(answer(page)).toHaveAttribute("data-status", "done", { timeout: 15_000 });
  await settle(page);
  // A new conversation from the chat page, below which the first one is now listed (its
  // link covers its own card only).
  await queueReplies([slowText(WORDS, 400)]);
  await page.getByRole("link", { name: "Runner" }).click();
  await settle(page);
  await page.getByRole("link", { name: "Start a chat" }).click();
  await settle(page);
  await expect(page.getByRole("link", { name: "First" })).toBeVisible();
  await page.getByLabel("Message", { exact: true }).fill("Second, slowly");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page.getByTestId("user-message")).toHaveText(/Second, slowly/);
  await expect(answer(page).locator(".markdown")).toContainText("w1", { timeout: 10_000 });

  await open(page, "/runs");
  await expect(page.getByRole("heading", { level: 1, name: "Runs" })).toBeVisible();
  const rows = page.getByTestId("run-row");
  await expect(rows).toHaveCount(2);
  await expect(rows.first()).toHaveAttribute("data-status", /running|waiting/);
  await expect(rows.last()).toHaveAttribute("data-status", "done");
  await expect(rows.first()).toContainText("Runner");
  await expect(rows.first()).toContainText("Chat");

  // Filters are a plain form: they work the same with or without JavaScript.
  await page.getByLabel("Status").selectOption("live");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/status=live/);
  await expect(rows).toHaveCount(1);
  await page.getByLabel("Kind").selectOption("api");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByText("No runs match these filters.")).toBeVisible();
  await open(page, "/runs?status=sleeping");
  await expect(page.getByRole("alert")).toContainText("Some fields need attention");
  await expect(page.getByRole("alert")).toContainText("status");

  // The live run's trace grows while it runs; stopping it keeps what it wrote.
  await open(page, "/runs?status=live");
  await rows.first().getByRole("link").first().click();
  await expect(page).toHaveURL(/\/runs\/[0-9a-f-]{36}$/);
  await settle(page);
  const runUrl = page.url();
  await expect(page.getByTestId("step-model").first()).toContainText("w3", { timeout: 10_000 });
  await page.getByTestId("run-stop").click();
  await expect(page.getByTestId("run-status")).toHaveText("Stopped", { timeout: 10_000 });
  await expect(page.getByTestId("run-stop")).toHaveCount(0);
  await open(page, "/runs");
  await expect(rows.first()).toHaveAttribute("data-status", "stopped");

  await logout(page);
  await register(page, uniqueEmail(info, "runs-other"));
  await open(page, "/runs");
  await expect(page.getByRole("heading", { name: "No runs yet" })).toBeVisible();
  await page.goto(runUrl);
  await settle(page);
  await expect(page.getByText("This run does not exist, or it is not yours.")).toBeVisible();
});
