// `npm test` builds the Worker (`npm run build`), then runs test/*.test.js inside the Workers
// runtime (workerd, through Miniflare) with the bundle and bindings that wrangler.toml describes.
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" } })],
});
