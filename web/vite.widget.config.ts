// The live-chat widget: one small self-contained script, dist/widget.js, served at /widget.js.
import { defineConfig } from 'vite';

export default defineConfig({
  publicDir: false, // the app's public files are copied by the app's build
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    target: 'es2019',
    sourcemap: false,
    lib: { entry: 'src/widget/widget.ts', name: 'SwitchboardWidget', formats: ['iife'], fileName: () => 'widget.js' },
  },
});
