import { request } from "@playwright/test";
import { ADMIN } from "./support";

// The first account on a fresh server becomes its admin: create it before any test, so
// which test runs first never matters.
export default async function globalSetup() {
  const baseURL = process.env.BASE_URL ?? "http://127.0.0.1:3000";
  const ctx = await request.newContext({ baseURL, extraHTTPHeaders: { Origin: baseURL } });
  const res = await ctx.post("/api/auth/register", {
    form: { email: ADMIN.email, password: ADMIN.password, display_name: "Admin" },
  });
  if (!res.ok() && res.status() !== 422) {
    throw new Error(`could not create the admin account: ${res.status()} ${await res.text()}`);
  }
  await ctx.dispose();
}
