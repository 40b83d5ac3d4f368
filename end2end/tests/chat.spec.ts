import { expect, Page, test } from "@playwright/test";
import {
  addProvider,
  attachFixtureMcp,
  clearReplies,
  FAKE_UPSTREAM,
  createAgent,
  jsEnabled,
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

const WORDS = Array.from({ length: 24 }, (_, i) => `w${i + 1}`).join(" ");

/** From the agent's page: a new conversation with `text`; ends on the conversation. */
async function startChat(page: Page, text: string) {
  await page.getByRole("link", { name: "Start a chat" }).click();
  await expect(page).toHaveURL(/\/chat\?agent=/);
  await settle(page);
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
  await settle(page);
}

function answer(page: Page) {
  return page.getByTestId("answer").last();
}

async function send(page: Page, text: string) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

test("an answer streams token by token; stop keeps it; regenerate and edit make versions", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "chat"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Helper");

  // Streams: several different lengths of the same answer are seen before it is done.
  await queueReplies([slowText(WORDS, 120)]);
  await startChat(page, "Count for me");
  await expect(page.getByTestId("user-message")).toHaveText(/Count for me/);
  if (jsEnabled(page)) {
    const seen = new Set<string>();
    await expect(async () => {
      seen.add((await answer(page).locator(".markdown").first().textContent()) ?? "");
      expect(seen.size).toBeGreaterThanOrEqual(4);
    }).toPass({ intervals: [50], timeout: 10_000 });
    expect([...seen].some((s) => s.includes("w1") && !s.includes("w24"))).toBeTruthy();
  }
  await expect(answer(page)).toHaveAttribute("data-status", "done", { timeout: 15_000 });
  await expect(answer(page).locator(".markdown")).toHaveText(WORDS);
  await expect(answer(page).getByTestId("message-usage")).toContainText("fake-large");
  await expect(page.getByTestId("conversation-usage")).toContainText("out");

  // Stop: what came is kept, marked stopped.
  await queueReplies([slowText(WORDS, 250)]);
  await send(page, "Count slowly");
  await expect(page.getByTestId("answer")).toHaveCount(2);
  await expect(answer(page).locator(".markdown")).toContainText("w2", { timeout: 10_000 });
  await settle(page);
  await answer(page).getByTestId("stop").click();
  await expect(answer(page)).toHaveAttribute("data-status", "stopped");
  await expect(answer(page).getByTestId("answer-status")).toContainText("Stopped.");
  const kept = (await answer(page).locator(".markdown").textContent()) ?? "";
  expect(kept).toContain("w1");
  expect(kept).not.toContain("w24");
  await settle(page);

  // Regenerate: a second version of the answer; the first stays reachable.
  await queueReplies([slowText("A fresh second answer.")]);
  await answer(page).getByTestId("regenerate").click();
  await expect(answer(page).locator(".markdown")).toHaveText("A fresh second answer.");
  await expect(answer(page).getByTestId("branches")).toContainText("2 / 2");
  await settle(page);
  await answer(page).getByRole("button", { name: "Previous version" }).click();
  await expect(answer(page).getByTestId("branches")).toContainText("1 / 2");
  await expect(answer(page)).toHaveAttribute("data-status", "stopped");
  await settle(page);

  // Edit the first message: a new branch from there, the old one kept.
  await queueReplies([slowText("Answer to the edit.")]);
  const first = page.getByTestId("user-message").first();
  await first.locator("summary", { hasText: "Edit" }).click();
  await first.getByRole("textbox").fill("Count backwards");
  await first.getByRole("button", { name: "Save and send" }).click();
  await expect(page.getByTestId("user-message")).toHaveCount(1);
  await expect(page.getByTestId("user-message").first()).toContainText("Count backwards");
  await expect(page.getByTestId("user-message").first().getByTestId("branches")).toContainText("2 / 2");
  await expect(answer(page).locator(".markdown")).toHaveText("Answer to the edit.");
  await settle(page);
  await page.getByTestId("user-message").first().getByRole("button", { name: "Previous version" }).click();
  await expect(page.getByTestId("user-message").first()).toContainText("Count for me");
  await expect(page.getByTestId("user-message")).toHaveCount(2);

  // The conversation is in the list, found by a word of its text.
  await open(page, "/chat?q=backwards");
  await expect(page.getByRole("link", { name: "Count for me" })).toBeVisible();
});

test("reloading mid-answer picks it up where it was, without gaps or repeats", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "resume"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Helper");
  await queueReplies([slowText(WORDS, 150)]);
  await startChat(page, "Go");
  await expect(answer(page).locator(".markdown")).toContainText("w3", { timeout: 10_000 });
  await page.reload();
  await settle(page);
  await expect(answer(page)).toHaveAttribute("data-status", "done", { timeout: 15_000 });
  await expect(answer(page).locator(".markdown")).toHaveText(WORDS);
});

test("a tool call the policy asks about waits for approval; allowed it runs, denied it is refused", async ({
  page,
}, info) => {
  await register(page, uniqueEmail(info, "tools"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Scribe");
  await attachFixtureMcp(page, "Scribe");
  await page.getByRole("link", { name: "Scribe" }).click();
  await settle(page);

  await queueReplies([
    { steps: [{ text: "Saving it. " }, { tool_call: { id: "c1", name: "Fixture__write_note", input: { text: "milk" } } }] },
    slowText("Your note is saved."),
  ]);
  await startChat(page, "Note: milk");
  const card = answer(page).getByTestId("tool-call");
  await expect(card).toHaveAttribute("data-state", "asking");
  await expect(card).toContainText("Fixture/write_note");
  await expect(card).toContainText('"text": "milk"');
  await expect(answer(page)).toHaveAttribute("data-status", "waiting");
  await card.getByTestId("allow").click();
  await expect(answer(page)).toHaveAttribute("data-status", "done");
  await expect(card).toHaveAttribute("data-state", "done");
  await card.getByText("Result").click();
  await expect(card.getByTestId("tool-result")).toHaveText("noted: milk");
  await expect(answer(page).locator(".markdown").last()).toHaveText("Your note is saved.");
  await settle(page);

  await queueReplies([
    { steps: [{ tool_call: { id: "c2", name: "Fixture__write_note", input: { text: "eggs" } } }] },
    slowText("Understood, no note."),
  ]);
  await send(page, "Note: eggs");
  const second = answer(page).getByTestId("tool-call");
  await expect(second).toHaveAttribute("data-state", "asking");
  await second.getByTestId("deny").click();
  await expect(answer(page)).toHaveAttribute("data-status", "done");
  await expect(second).toHaveAttribute("data-state", "denied");
  await expect(answer(page).locator(".markdown").last()).toHaveText("Understood, no note.");
});

test("model output with scripts, handlers and javascript: links is shown inert", async ({ page }, info) => {
  const dialogs: string[] = [];
  page.on("dialog", async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  await register(page, uniqueEmail(info, "xss"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Echo");
  const evil = [
    "Look: <img src=x onerror=\"window.__xss=1;alert('img')\">",
    "<script>window.__xss=2;alert('script')</script>",
    "<svg onload=\"alert('svg')\"><circle r=\"5\"/></svg>",
    "[click me](javascript:alert('link'))",
    "",
    "```rust",
    "fn main() {}",
    "```",
  ].join("\n");
  await queueReplies([{ steps: [{ text: evil }] }]);
  await startChat(page, "Say something nasty");
  const body = answer(page).locator(".markdown");
  await expect(answer(page)).toHaveAttribute("data-status", "done");
  await expect(body).toContainText("<img src=x onerror=");
  await expect(body).toContainText("<script>window.__xss=2;");
  await expect(body.locator("img, script, svg, iframe")).toHaveCount(0);
  await expect(body.getByRole("link", { name: "click me" })).toHaveCount(0);
  await expect(body.getByText("click me")).toBeVisible();
  await expect(body.locator(".code-lang")).toHaveText("rust");
  // Highlighted, the same from the server and once hydrated.
  await expect(body.locator("code .tok-k")).toHaveText("fn");
  if (jsEnabled(page)) {
    await body.getByRole("button", { name: "Copy" }).click();
    await expect(body.getByRole("button", { name: "Copied" })).toBeVisible();
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  }
  await page.reload();
  await settle(page);
  await expect(body.locator("img, script, svg")).toHaveCount(0);
  expect(dialogs).toEqual([]);
});

test("the sidebar lists conversations by day; pin, rename, search and delete there; another agent takes over", async ({
  page,
}, info) => {
  await register(page, uniqueEmail(info, "sidebar"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Second");
  await createAgent(page, "Helper");
  const agentPage = page.url();
  await queueReplies([slowText("One."), slowText("Two."), slowText("Three.")]);
  await startChat(page, "Alpha question");
  await expect(answer(page)).toHaveAttribute("data-status", "done", { timeout: 15_000 });
  await open(page, new URL(agentPage).pathname);
  await startChat(page, "Beta question");
  await expect(answer(page)).toHaveAttribute("data-status", "done", { timeout: 15_000 });
  const beta = page.url();
  // Without JavaScript a form's answer sends the page back to itself, with an empty query.
  const onBeta = new RegExp(`${new URL(beta).pathname}\\??$`);

  const sidebar = page.getByRole("complementary", { name: "Conversations" });
  const row = (title: string) => sidebar.getByRole("listitem").filter({ hasText: title });
  await expect(sidebar.getByRole("heading", { name: "Today" })).toBeVisible();
  await expect(sidebar.getByRole("link", { name: "Beta question" })).toHaveAttribute("aria-current", "page");
  await expect(sidebar.getByRole("link")).toContainText(["New conversation", "Beta question", "Alpha question"]);

  // Pin the older one: it heads the list under "Pinned".
  await row("Alpha question").getByLabel("Conversation actions").click();
  await row("Alpha question").getByRole("button", { name: "Pin" }).click();
  await expect(sidebar.getByRole("heading", { name: "Pinned" })).toBeVisible();
  await expect(sidebar.getByRole("link")).toContainText(["New conversation", "Alpha question", "Beta question"]);
  await expect(page).toHaveURL(onBeta);

  // Rename the open one in place: the page's title follows.
  await settle(page);
  await row("Beta question").getByLabel("Conversation actions").click();
  await row("Beta question").getByLabel("Title").fill("Renamed beta");
  await row("Beta question").getByRole("button", { name: "Rename" }).click();
  await expect(page.locator("h1.chat-title")).toHaveText("Renamed beta");
  await expect(sidebar.getByRole("link", { name: "Renamed beta" })).toBeVisible();

  // Search narrows the list.
  await settle(page);
  await sidebar.getByRole("searchbox").fill("alpha");
  await sidebar.getByRole("searchbox").press("Enter");
  await expect(sidebar.getByRole("link", { name: "Alpha question" })).toBeVisible();
  await expect(sidebar.getByRole("link", { name: "Renamed beta" })).toHaveCount(0);
  await open(page, new URL(beta).pathname);

  // Delete the other one from here: this conversation stays open.
  await row("Alpha question").getByLabel("Conversation actions").click();
  await row("Alpha question").getByRole("button", { name: "Delete" }).click();
  await expect(sidebar.getByRole("link", { name: "Alpha question" })).toHaveCount(0);
  await expect(page).toHaveURL(onBeta);
  await expect(page.locator("h1.chat-title")).toHaveText("Renamed beta");

  // Another agent picked in the composer answers from now on.
  await settle(page);
  await page.getByLabel("Agent", { exact: true }).selectOption({ label: "Second" });
  await send(page, "Over to you");
  await expect(answer(page)).toHaveAttribute("data-status", "done", { timeout: 15_000 });
  await expect(answer(page).locator(".markdown")).toHaveText("Three.");
  await expect(page.locator(".chat-header").getByRole("link", { name: "Second" })).toBeVisible();
  await expect(page.getByLabel("Agent", { exact: true })).toHaveValue(/.+/);
  await expect(page.getByLabel("Agent", { exact: true }).locator("option:checked")).toHaveText("Second");
});

test("export a conversation; share it read-only with someone signed out, then stop sharing", async ({
  page,
  browser,
}, info) => {
  await register(page, uniqueEmail(info, "share"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Helper");
  await queueReplies([slowText("Here is **the plan**.")]);
  await startChat(page, "Plan my week");
  await expect(answer(page)).toHaveAttribute("data-status", "done", { timeout: 15_000 });

  // Export as Markdown: every message of the branch shown.
  await page.getByText("Export", { exact: true }).click();
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Markdown (.md)" }).click(),
  ]);
  expect(download.suggestedFilename()).toBe("plan-my-week.md");
  const md = await (await download.createReadStream()).toArray();
  const text = Buffer.concat(md).toString("utf8");
  expect(text).toContain("# Plan my week");
  expect(text).toContain("Plan my week");
  expect(text).toContain("Here is **the plan**.");

  // Share: a link that someone signed out can read. (The menu stays open once hydrated;
  // without JavaScript the form's answer reloads the page with it closed.)
  const shareMenu = page.locator("details.popover").filter({ has: page.locator("summary", { hasText: /^Share$/ }) });
  const openShare = async () => {
    if (!(await shareMenu.evaluate((d: HTMLDetailsElement) => d.open))) await shareMenu.locator("summary").click();
  };
  await openShare();
  await page.getByRole("button", { name: "Create link" }).click();
  await settle(page);
  await openShare();
  const link = page.getByTestId("share-link");
  await expect(link).toBeVisible();
  const path = (await link.getAttribute("href")) ?? "";
  expect(path).toMatch(/^\/s\/[A-Za-z0-9_-]{43}$/);
  const stranger = await browser.newContext({ javaScriptEnabled: jsEnabled(page) });
  const theirs = await stranger.newPage();
  await theirs.goto(path);
  await expect(theirs.getByRole("heading", { level: 1, name: "Plan my week" })).toBeVisible();
  await expect(theirs.getByTestId("answer").locator("strong")).toHaveText("the plan");
  await expect(theirs.getByRole("link", { name: "Agents" })).toHaveCount(0);
  await expect(theirs.getByLabel("Message", { exact: true })).toHaveCount(0);

  // Stopped, the link shows nothing any more.
  await settle(page);
  await openShare();
  await page.getByRole("button", { name: "Stop sharing" }).click();
  await settle(page);
  await openShare();
  await expect(page.getByRole("button", { name: "Create link" })).toBeVisible();
  await theirs.goto(path);
  await expect(theirs.getByText("This link does not work")).toBeVisible();
  await expect(theirs.getByText("the plan")).toHaveCount(0);
  await stranger.close();
});

/** The body of the last chat request the fake upstream got. */
async function lastRequest(): Promise<{ messages: { role: string; content: unknown }[] }> {
  const res = await fetch(`${FAKE_UPSTREAM.replace(/\/v1$/, "")}/__fake/last`);
  return res.json();
}

// A 1×1 PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
  "base64",
);

test("continue a cut-off answer and rate it; attach an image and a text file for either kind of provider", async ({
  page,
}, info) => {
  await register(page, uniqueEmail(info, "files"));
  await addProvider(page, "Fake LLM");
  await createAgent(page, "Looker");

  // An answer that broke off is continued as a new version that starts with it.
  await queueReplies([{ steps: [{ text: "The first half " }, "drop"] }, slowText("and the second half.")]);
  await startChat(page, "Tell me in two halves");
  await expect(answer(page)).toHaveAttribute("data-status", "incomplete", { timeout: 15_000 });
  await answer(page).getByTestId("continue").click();
  await expect(answer(page)).toHaveAttribute("data-status", "done", { timeout: 15_000 });
  await expect(answer(page).locator(".markdown")).toHaveText("The first half and the second half.");
  await expect(answer(page).getByTestId("branches")).toContainText("2 / 2");

  // Rated down with a note; the rating and the note are there after a reload.
  await settle(page);
  await answer(page).getByTestId("rate-down").click();
  await expect(answer(page).getByTestId("rate-down")).toHaveAttribute("aria-pressed", "true");
  await settle(page);
  await answer(page).getByText("Note", { exact: true }).click();
  await answer(page).getByLabel("What made this answer good or bad? (optional)").fill("Took two tries.");
  // Saved before the reload: the form's own answer (a page without JavaScript) or the
  // server function's (hydrated) must not race it.
  const saved = jsEnabled(page)
    ? page.waitForResponse((r) => r.url().includes("/api/chat/rate"))
    : page.waitForNavigation();
  await answer(page).getByTestId("rate-note-save").click();
  await saved;
  await page.reload();
  await settle(page);
  await expect(answer(page).getByTestId("rate-down")).toHaveAttribute("aria-pressed", "true");
  await expect(answer(page).getByTestId("rate-up")).toHaveAttribute("aria-pressed", "false");
  await expect(answer(page).getByLabel("What made this answer good or bad? (optional)")).toHaveValue("Took two tries.");

  if (!jsEnabled(page)) {
    // Files are uploaded by the hydrated page; without JavaScript there is no button
    // that could not work.
    await expect(page.getByTestId("attach")).toHaveCount(0);
    return;
  }
  const attach = async () => {
    await page.getByTestId("attach-input").setInputFiles([
      { name: "dot.png", mimeType: "image/png", buffer: PNG },
      { name: "notes.md", mimeType: "text/markdown", buffer: Buffer.from("# Notes\nBuy milk.\n") },
    ]);
    await expect(page.getByTestId("attachment-chip")).toHaveCount(2);
    await expect(page.getByTestId("attachment-chip").first()).toContainText("dot.png");
    await expect(page.getByTestId("attachment-chip").first().locator("img")).toBeVisible();
  };

  // OpenAI: the image as an image_url part, the file as named text.
  await attach();
  await queueReplies([slowText("A dot and a note.")]);
  await send(page, "What are these?");
  await expect(answer(page).locator(".markdown")).toHaveText("A dot and a note.", { timeout: 15_000 });
  await expect(page.getByTestId("attachment-chip")).toHaveCount(0);
  const question = page.getByTestId("user-message").last();
  await expect(question.getByTestId("message-image")).toBeVisible();
  await expect(question.getByTestId("message-file")).toContainText("notes.md");
  let req = await lastRequest();
  const parts = req.messages.filter((m) => m.role === "user").pop()?.content as {
    type: string;
    text?: string;
    image_url?: { url: string };
  }[];
  expect(parts.map((p) => p.type)).toEqual(["text", "image_url", "text"]);
  expect(parts[0].text).toContain("Attached file `notes.md`");
  expect(parts[0].text).toContain("Buy milk.");
  expect(parts[1].image_url?.url).toBe(`data:image/png;base64,${PNG.toString("base64")}`);

  // Anthropic: an image block with base64 data.
  await open(page, "/providers/new");
  await page.getByLabel("Name").fill("Fake Anthropic");
  await page.getByLabel("API", { exact: true }).selectOption("anthropic");
  await page.getByLabel("Base URL").fill(FAKE_UPSTREAM.replace(/\/v1$/, ""));
  await page.getByLabel("API key").fill("sk-e2e-abcd1234");
  await page.getByRole("button", { name: "Add connection" }).click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);
  await open(page, "/agents/new");
  await page.getByLabel("Name", { exact: true }).fill("Claude");
  await page.getByLabel("Provider connection").selectOption({ label: "Fake Anthropic" });
  await page.getByLabel("Model", { exact: true }).fill("fake-large");
  await page.getByRole("button", { name: "Create agent" }).click();
  await expect(page).toHaveURL(/\/agents\/[0-9a-f-]{36}$/);
  await settle(page);
  await queueReplies([slowText("Still a dot.")]);
  await startChatWithFiles(page, attach);
  await expect(answer(page).locator(".markdown")).toHaveText("Still a dot.", { timeout: 15_000 });
  req = await lastRequest();
  const blocks = req.messages[0].content as { type: string; text?: string; source?: { data: string } }[];
  expect(blocks.map((b) => b.type)).toEqual(["text", "image", "text"]);
  expect(blocks[1].source?.data).toBe(PNG.toString("base64"));
  expect(blocks[2].text).toBe("Look again");
});

/** From the agent's page: a new conversation whose first message carries files. */
async function startChatWithFiles(page: Page, attach: () => Promise<void>) {
  await page.getByRole("link", { name: "Start a chat" }).click();
  await expect(page).toHaveURL(/\/chat\?agent=/);
  await settle(page);
  await attach();
  await page.getByLabel("Message", { exact: true }).fill("Look again");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
  await settle(page);
}
