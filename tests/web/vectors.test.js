// The shared validation vectors (tests/vectors/*.json), on the phone's validator: the same problems,
// at the same places, with the same keys and params as the server reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { problems } from '../../src/web/js/schema/validate.js';

const root = new URL('../../', import.meta.url);
const files = readdirSync(new URL('tests/vectors/', root)).filter((f) => f.endsWith('.json'));

const sorted = (list) => list.map((p) => JSON.stringify([p.path, p.key, p.params ?? null])).sort();

for (const file of files) {
  const vectors = JSON.parse(readFileSync(new URL(`tests/vectors/${file}`, root)));
  // A vector file names a shipped form, or a fixture schema by its path.
  const schema = JSON.parse(readFileSync(new URL(vectors.schema ?? `schemas/${vectors.form}.json`, root)));
  for (const vector of vectors.cases) {
    test(`${file}: ${vector.name}`, () => {
      const found = problems(schema, vector.data);
      assert.equal(found.length === 0, vector.valid, JSON.stringify(found));
      assert.deepEqual(sorted(found), sorted(vector.errors));
    });
  }
}
