import { expect, test } from "@playwright/test";
import { ADMIN, PASSWORD, login, logout, open, register, settle, uniqueEmail, watchPageErrors } from "./support";

watchPageErrors();

test("register, sign out, sign in, rename yourself, sign out", async ({ page }, info) => {
  const email = uniqueEmail(info, "ann");
  await register(page, email, "Ann Example");
  await expect(page.getByRole("heading", { name: "Welcome, Ann Example" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Main" }).first()).toBeVisible();

  await logout(page);
  await login(page, email);
  await expect(page).toHaveURL(/\/$/);
  await settle(page);
  await expect(page.getByTestId("user-name")).toHaveText("Ann Example");

  await page.getByLabel("Account menu").click();
  await page.getByRole("menuitem", { name: "Settings" }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await settle(page);
  await page.getByLabel("Display name").fill("Ann Renamed");
  await page.getByRole("button", { name: "Save profile" }).click();
  await expect(page.getByTestId("user-name")).toHaveText("Ann Renamed");

  await logout(page);
  await open(page, "/settings");
  await expect(page).toHaveURL(/\/login\?next=\/settings$/);
});

test("a wrong password is explained and nothing else happens", async ({ page }, info) => {
  const email = uniqueEmail(info, "wrong");
  await register(page, email);
  await logout(page);
  await login(page, email, "definitely not it");
  await expect(page.getByRole("alert").filter({ hasText: "Email or password is incorrect." })).toBeVisible();
  await expect(page).toHaveURL(/\/login/);
});

test("bad registration input is shown beside each field", async ({ page }) => {
  await open(page, "/register");
  await page.getByLabel("Email").fill("not-an-email");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByText("Enter an email address like name@example.com.")).toBeVisible();
  await expect(page.getByText("Use at least 8 characters.")).toBeVisible();
});

test("a second person sees only their own account", async ({ page }, info) => {
  const first = uniqueEmail(info, "first");
  const second = uniqueEmail(info, "second");
  await register(page, first, "First Person");
  await logout(page);
  await register(page, second, "Second Person");
  await expect(page.getByTestId("user-name")).toHaveText("Second Person");
  await expect(page.getByText("First Person")).toHaveCount(0);
  // Not an admin: no administration link, and the page refuses.
  await expect(page.getByRole("link", { name: "Administration" })).toHaveCount(0);
  await open(page, "/admin");
  await expect(page.getByText("You are not allowed to do this.")).toBeVisible();
});

test("every section is reachable from the navigation", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "nav"));
  for (const name of ["Chat", "Agents", "Skills", "MCP servers", "Specs", "Builds", "Usage", "Settings"]) {
    await page.getByRole("navigation", { name: "Main" }).first().getByRole("link", { name, exact: true }).click();
    await settle(page);
    await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
  }
  await open(page, "/no/such/page");
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});

test("the theme switch sticks across pages", async ({ page }, info) => {
  await register(page, uniqueEmail(info, "theme"));
  await page.getByRole("button", { name: "Dark" }).click();
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
  await open(page, "/settings");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
  await expect(page.getByRole("button", { name: "Dark" })).toHaveAttribute("aria-pressed", "true");
});

test("an admin closes registration and newcomers are told so", async ({ page, browser }, info) => {
  await login(page, ADMIN.email, ADMIN.password);
  await expect(page).toHaveURL(/\/$/);
  await open(page, "/admin");
  // The test script installs bubblewrap: the start-up probe finds the sandbox working.
  await expect(page.getByTestId("sandbox-state")).toHaveText("Working");
  await page.getByRole("button", { name: "Close registration" }).click();
  await expect(page.getByTestId("registration-state")).toHaveText(/cannot be created/);
  try {
    await logout(page);
    await open(page, "/register");
    await expect(page.getByText("Registration is closed on this server. Ask an administrator")).toBeVisible();
    await page.getByLabel("Email").fill(uniqueEmail(info, "late"));
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await expect(page.getByRole("alert").filter({ hasText: "Registration is closed on this server." })).toBeVisible();
  } finally {
    // Reopen it from a session of its own, whatever state this page was left in: every
    // later test registers someone.
    const { baseURL, javaScriptEnabled } = info.project.use;
    const context = await browser.newContext({ baseURL, javaScriptEnabled });
    const admin = await context.newPage();
    await login(admin, ADMIN.email, ADMIN.password);
    await expect(admin).toHaveURL(/\/$/);
    await open(admin, "/admin");
    await admin.getByRole("button", { name: "Open registration" }).click();
    await expect(admin.getByTestId("registration-state")).toHaveText(/may create an account/);
    await context.close();
  }
});

test("the people table fits its card at 1280 px, its buttons included", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await login(page, ADMIN.email, ADMIN.password);
  await expect(page).toHaveURL(/\/$/);
  await open(page, "/admin");
  const card = page.locator("section.card", { has: page.getByRole("heading", { name: "Users" }) });
  const button = card.getByRole("button", { name: /^(Disable|Enable) / }).first();
  await expect(button).toBeVisible();
  const [c, b] = [await card.boundingBox(), await button.boundingBox()];
  expect(c && b).toBeTruthy();
  if (c && b) expect(b.x + b.width).toBeLessThanOrEqual(c.x + c.width);
  const [wrap, table] = [await card.locator(".table-wrap").boundingBox(), await card.locator("table").boundingBox()];
  if (wrap && table) expect(table.width).toBeLessThanOrEqual(wrap.width + 1);
});
