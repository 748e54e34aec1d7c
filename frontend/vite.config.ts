import { defineConfig, type Plugin } from 'vitest/config';

/**
 * Writes the files of the reading workspace's chunk graph (src/app.ts and
 * every chunk it imports statically) into the entry chunk, in place of the
 * placeholder `__SR_APP_CHUNKS__` (main.ts), so the entry can have the
 * browser download and compile them (modulepreload) at once but evaluate them
 * only after the previews are drawn. Comma-separated paths under `base`.
 */
function appChunkList(): Plugin {
  return {
    name: 'sr-app-chunk-list',
    apply: 'build',
    generateBundle(_options, bundle) {
      const chunks = Object.values(bundle).flatMap((c) => (c.type === 'chunk' ? [c] : []));
      const app = chunks.find((c) => c.facadeModuleId?.endsWith('/src/app.ts'));
      if (!app) this.error('src/app.ts is not a chunk of this build');
      const files: string[] = [];
      const visit = (fileName: string): void => {
        const chunk = bundle[fileName];
        if (!chunk || chunk.type !== 'chunk' || chunk.isEntry || files.includes(fileName)) return;
        files.push(fileName);
        chunk.imports.forEach(visit);
      };
      visit(app.fileName);
      let replaced = 0;
      for (const chunk of chunks) {
        if (!chunk.code.includes('__SR_APP_CHUNKS__')) continue;
        chunk.code = chunk.code.replaceAll('__SR_APP_CHUNKS__', files.join(','));
        replaced += 1;
      }
      if (replaced === 0) this.error('no chunk holds the __SR_APP_CHUNKS__ placeholder (src/main.ts)');
    },
  };
}

// Django serves dist/ under /static/viewer/ and renders the page itself; the
// manifest tells its template which hashed entry and CSS files to include.
export default defineConfig({
  base: '/static/viewer/',
  plugins: [appChunkList()],
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
