import { defineConfig } from "vitest/config";

export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "safari15" },
  test: { environment: "jsdom" },
});
