import { defineConfig } from 'vitest/config';

// Django serves dist/ under /static/viewer/ and renders the page itself; the
// manifest tells its templates which hashed entry and CSS to include, and the
// compare page its chunks (spinereview/core/frontend.py; as modulepreload links).
export default defineConfig({
  base: '/static/viewer/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    manifest: true,
    target: 'es2022',
    // Cornerstone + vtk.js are large by nature; the warning is noise here.
    chunkSizeWarningLimit: 6000,
    rolldownOptions: {
      input: 'src/main.ts',
    },
  },
  // The DICOM image loader decodes in module web workers.
  worker: { format: 'es' },
  optimizeDeps: {
    exclude: ['@cornerstonejs/dicom-image-loader'],
    include: ['dicom-parser'],
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
