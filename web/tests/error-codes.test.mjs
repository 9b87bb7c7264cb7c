// Every error code the server can answer has a plain message in English and Vietnamese in the
// agent app's table (web/src/app/i18n.ts), so no raw code or English technical text reaches staff.
// The codes are read from the server's and the core's sources, as written there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

function rustFiles(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? rustFiles(p) : p.endsWith('.rs') ? [p] : [];
  });
}

function serverCodes() {
  const codes = new Set();
  for (const f of rustFiles(path.join(root, 'crates/server/src'))) {
    const src = readFileSync(f, 'utf8');
    for (const re of [/ApiError::new\(\s*[A-Za-z:_]+,\s*"([a-z_0-9]+)"/g, /Refusal::new\(\s*"([a-z_0-9]+)"/g, /bad_request\(\s*"([a-z_0-9]+)"/g]) {
      for (const m of src.matchAll(re)) codes.add(m[1]);
    }
  }
  // The core's typed errors: their `code()` tables.
  for (const f of ['crates/core/src/conversation.rs', 'crates/core/src/policy.rs', 'crates/core/src/media_limits.rs']) {
    const src = readFileSync(path.join(root, f), 'utf8');
    for (const block of src.matchAll(/pub const fn code\(&self\)[\s\S]*?\n {4}\}/g)) {
      for (const m of block[0].matchAll(/=> "([a-z_0-9]+)"/g)) codes.add(m[1]);
    }
  }
  return codes;
}

function table(lang) {
  const src = readFileSync(path.join(root, 'web/src/app/i18n.ts'), 'utf8');
  const at = src.indexOf('const serverErrors');
  const start = src.indexOf(`  ${lang}: {`, at);
  const body = src.slice(start, src.indexOf('\n  },', start));
  return new Set([...body.matchAll(/^\s+([a-z_0-9]+):/gm)].map((m) => m[1]));
}

test('every server error code has an English and a Vietnamese message', () => {
  const codes = serverCodes();
  assert.ok(codes.size > 40, `only ${codes.size} codes found: the scan is broken`);
  for (const lang of ['en', 'vi']) {
    const have = table(lang);
    const missing = [...codes].filter((c) => !have.has(c)).sort();
    assert.deepEqual(missing, [], `${lang}: no message for ${missing.join(', ')}`);
  }
});
