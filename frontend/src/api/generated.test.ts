/// <reference types="node" />
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

describe('generated API types', () => {
  it('match the committed OpenAPI schema (run `npm run schema && npm run gen:api` after an API change)', () => {
    const cli = here('../../node_modules/openapi-typescript/bin/cli.js');
    const fresh = execFileSync(process.execPath, [cli, here('./schema.json')], { encoding: 'utf8' });
    const committed = readFileSync(here('./generated.ts'), 'utf8');
    expect(committed).toBe(fresh);
  });

  it('the committed schema describes the reading endpoints', () => {
    const schema = JSON.parse(readFileSync(here('./schema.json'), 'utf8')) as { paths: Record<string, unknown> };
    expect(Object.keys(schema.paths)).toEqual(
      expect.arrayContaining(['/api/v1/assignments/{id}/', '/api/v1/assignments/{id}/read/', '/api/v1/assignments/{id}/read/submit/']),
    );
  });
});
