// What both browser tests need: the cfmint binary, `cfmint demo` on free
// ports, and waiting on the page's state (window.demo).

import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const binary = process.env.CFMINT_BIN || resolve(root, "target/debug/cfmint");

/** Starts `cfmint demo` on free ports; resolves with the process and its URLs once it prints them. */
export function startDemo(extraArgs = []) {
  const args = ["demo", "--page-port", "0", "--api-port", "0", "--edge-port", "0", ...extraArgs];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CFMINT_LOG: "warn" } });
  child.stderr.on("data", (chunk) => process.stderr.write(chunk));
  return new Promise((resolvePromise, reject) => {
    const urls = {};
    let buffer = "";
    child.stdout.on("data", (chunk) => {
      buffer += chunk;
      for (const [key, label] of [["page", "open"], ["api", "mint API"], ["edge", "edge"]]) {
        const match = buffer.match(new RegExp(`^\\s+${label}\\s+(\\S+)`, "m"));
        if (match) urls[key] = match[1].replace(/\/$/, "");
      }
      if (urls.page && urls.api && urls.edge) resolvePromise({ child, urls });
    });
    child.on("exit", (code) => reject(new Error(`cfmint demo exited with ${code}`)));
    setTimeout(() => reject(new Error("cfmint demo did not start")), 60_000);
  });
}

/** Waits until `predicate` holds in the page; on timeout the error shows window.demo. */
export async function waitFor(page, predicate, what, timeout = 60_000) {
  try {
    await page.waitForFunction(predicate, null, { timeout, polling: 200 });
  } catch (error) {
    const state = await page.evaluate(() => JSON.stringify(window.demo));
    throw new Error(`timed out waiting for ${what}; page state: ${state}`);
  }
}
