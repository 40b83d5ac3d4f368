import { execFileSync } from "node:child_process";
import path from "node:path";
import { expect, test } from "@playwright/test";
import {
  addProvider,
  clearReplies,
  createAgent,
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

const PYTHON = path.join(__dirname, "..", ".venv", "bin", "python");
const CLIENT = path.join(__dirname, "..", "openai_client.py");

test("an API key from Settings drives an agent through the official OpenAI Python client", async ({
  page,
  baseURL,
}, info) => {
  await register(page, uniqueEmail(info, "api"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Py Helper");

  await open(page, "/settings");
  await expect(page.getByText("No API keys yet.")).toBeVisible();
  await page.getByLabel("Key name").fill("laptop");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.getByTestId("new-key").textContent()) ?? "";
  expect(key).toMatch(/^agk_[A-Za-z0-9_-]{40,}$/);
  await expect(page.getByText("Copy it now: it is shown only this once.")).toBeVisible();
  const row = page.getByTestId("api-key");
  await expect(row).toContainText("laptop");
  await expect(row).toContainText(key.slice(0, 10));
  await expect(row).toContainText("never used");
  // Shown once: a fresh page lists it by prefix only.
  await open(page, "/settings");
  await expect(page.getByTestId("new-key")).toHaveCount(0);
  expect(await page.content()).not.toContain(key);

  // The last two die mid-answer (the connection drops after the first words).
  const dying = (text: string) => ({ steps: [...text.split(/(?<= )/).map((w) => ({ text: w })), "drop"] });
  await queueReplies([
    slowText("Hi, Python."),
    slowText("one two three four", 20),
    dying("half an "),
    dying("half an "),
  ]);
  const out = JSON.parse(execFileSync(PYTHON, [CLIENT, baseURL ?? "", key, "py-helper"], { encoding: "utf8" }));
  expect(out.models).toEqual(["py-helper"]);
  expect(out.whole).toBe("Hi, Python.");
  expect(out.whole_finish).toBe("stop");
  expect(out.whole_tokens).toBeGreaterThan(0);
  expect(out.deltas.join("")).toBe("one two three four");
  expect(out.deltas.length).toBeGreaterThanOrEqual(4);
  expect(out.stream_finish).toBe("stop");
  expect(out.stream_tokens).toBeGreaterThan(0);
  expect(out.unknown_model).toBe("model_not_found");
  expect(out.wrong_key).toBe("refused");
  // A broken answer is an error the client raises, never a finished one.
  expect(out.broken_stream).toBe("APIError");
  expect(out.broken_stream_text).toBe("half an ");
  expect(out.broken_whole).toBe(502);

  // The API's conversations are in the chat list; the key shows when it was used.
  await open(page, "/chat");
  await expect(page.getByRole("link", { name: "Hello from Python" })).toBeVisible();
  await open(page, "/settings");
  await expect(page.getByTestId("api-key")).toContainText("last used");

  // Revoked, it stops working.
  await page.getByRole("button", { name: "Revoke" }).click();
  await expect(page.getByText("No API keys yet.")).toBeVisible();
  await settle(page);
  expect(() => execFileSync(PYTHON, [CLIENT, baseURL ?? "", key, "py-helper"], { encoding: "utf8", stdio: "pipe" })).toThrow(
    /AuthenticationError|401/,
  );
});
