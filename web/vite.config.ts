// The agent app: index.html → dist/ (the binary embeds dist/ and serves it at /).
import { defineConfig } from 'vite';

export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2020', sourcemap: false, reportCompressedSize: false, modulePreload: { polyfill: false } },
});
