/**
 * Builds the dashboard into dashboard/dist (served by the gateway at `/`). `vite dashboard` runs a
 * dev server that proxies the API and the live stream to a gateway on 127.0.0.1:8080
 * (GATEWAY_URL to change it).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  server: {
    // Host stays the dev server's: the gateway checks a cookie-borne request's Origin against it.
    proxy: {
      '/api': { target: gateway, changeOrigin: false },
      '/live': { target: gateway.replace(/^http/, 'ws'), ws: true, changeOrigin: false },
    },
  },
});
