// Builds the browser app into dist/, which the node serves at `/` (same origin as /api and /vault).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 2048 },
  // `npm run dev` proxies the API to a node on :8080 (start one with `npm start`).
  server: { proxy: { '/api': 'http://localhost:8080', '/vault': 'http://localhost:8080' } },
});
