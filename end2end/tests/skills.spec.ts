import path from "node:path";
import { expect, test } from "@playwright/test";
import { addProvider, createAgent, open, register, settle, uniqueEmail, watchPageErrors } from "./support";

watchPageErrors();

const fixture = (name: string) => path.join(__dirname, "..", "fixtures", name);

test("upload a skill, attach it, re-upload a folder as v2, detach and delete", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "skill"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Note Taker");

  await open(page, "/skills");
  await expect(page.getByRole("heading", { name: "No skills yet" })).toBeVisible();
  await page.getByLabel("Zip file").setInputFiles(fixture("notes.zip"));
  await page.getByRole("button", { name: "Upload skill" }).click();
  await expect(page).toHaveURL(/\/skills\/[0-9a-f-]{36}$/);
  await settle(page);
  await expect(page.getByRole("heading", { name: "notes", exact: true })).toBeVisible();
  await expect(page.getByTestId("skill-version")).toHaveText("version 1");
  // SKILL.md is rendered (front matter hidden) and its link points at the skill's file.
  const md = page.getByRole("article", { name: "SKILL.md" });
  await expect(md.getByRole("heading", { name: "Notes" })).toBeVisible();
  await expect(md.getByRole("link", { name: "the template" })).toHaveAttribute("href", /\/skills\/[0-9a-f-]{36}\/files\/template\.md$/);
  await expect(page.getByRole("link", { name: "scripts/count.py" })).toBeVisible();

  await page.getByLabel("Attach to").selectOption({ label: "Note Taker" });
  await page.getByRole("button", { name: "Attach", exact: true }).click();
  await expect(page.getByRole("link", { name: "Note Taker" })).toBeVisible();
  await settle(page);

  // Attached, it cannot be deleted; the message says why.
  await page.getByText("Delete skill").click();
  await page.getByRole("button", { name: "Delete for good" }).click();
  await expect(page.getByText("This skill is attached to Note Taker, so it cannot be deleted.")).toBeVisible();
  await settle(page);

  // A folder with the same name is the next version.
  await open(page, "/skills");
  await page.getByLabel("Or a folder").setInputFiles(fixture("notes"));
  await page.getByRole("button", { name: "Upload skill" }).click();
  await expect(page.getByTestId("skill-version")).toHaveText("version 2");
  await settle(page);

  await page.getByRole("button", { name: "Detach Note Taker" }).click();
  await expect(page.getByText("No agent uses this skill yet.")).toBeVisible();
  await settle(page);
  await page.getByText("Delete skill").click();
  await page.getByRole("button", { name: "Delete for good" }).click();
  await expect(page).toHaveURL(/\/skills$/);
  await expect(page.getByRole("heading", { name: "No skills yet" })).toBeVisible();
});

test("a broken archive is explained and nothing is stored", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "skillbad"));
  await open(page, "/skills");
  await page.getByLabel("Zip file").setInputFiles(fixture("broken.zip"));
  await page.getByRole("button", { name: "Upload skill" }).click();
  await expect(page.getByText(/The upload was refused: the archive could not be read/).first()).toBeVisible();
  await open(page, "/skills");
  await expect(page.getByRole("heading", { name: "No skills yet" })).toBeVisible();
});
