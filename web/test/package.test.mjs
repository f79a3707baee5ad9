// The npm package `web/` is: its version follows the hub's, `npm pack`
// ships only the client, the React hook and their declarations, and every
// entry of `exports` resolves to a file that ships. Run with
// `node --test web/test/*.test.mjs` (needs npm on PATH).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const webDir = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** The `version` of the `[package]` table of the hub's Cargo.toml. */
function hubVersion() {
  const cargo = readFileSync(new URL('../../Cargo.toml', import.meta.url), 'utf8');
  const table = cargo.split(/^\[/m).find((t) => t.startsWith('package]'));
  const match = table?.match(/^version\s*=\s*"([^"]+)"/m);
  assert.ok(match, 'Cargo.toml has a [package] version');
  return match[1];
}

/** The files `npm pack` would put in the tarball, sorted. */
function packedFiles() {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: webDir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [report] = JSON.parse(out);
  return report.files.map((f) => f.path).sort();
}

/** Every file an `exports` entry points at (conditions flattened). */
function exportTargets(exports) {
  if (typeof exports === 'string') return [exports];
  return Object.values(exports).flatMap(exportTargets);
}

test('the package version is the hub version', () => {
  assert.equal(pkg.version, hubVersion());
  const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'));
  assert.equal(lock.version, pkg.version, 'package-lock.json is in step');
  assert.equal(lock.name, pkg.name);
});

test('npm pack ships only the client, the hook, their declarations, README and LICENSE', () => {
  assert.deepEqual(packedFiles(), [
    'LICENSE',
    'README.md',
    'package.json',
    'presence-client.d.ts',
    'presence-client.js',
    'react.d.ts',
    'react.js',
  ]);
});

test('every export resolves to a file that ships', () => {
  const shipped = new Set(packedFiles());
  for (const target of exportTargets(pkg.exports)) {
    const file = target.replace(/^\.\//, '');
    assert.ok(shipped.has(file), `${target} is packed`);
    assert.ok(existsSync(new URL(`../${file}`, import.meta.url)), `${target} exists`);
  }
  assert.ok(shipped.has(pkg.main.replace(/^\.\//, '')));
  assert.ok(shipped.has(pkg.types.replace(/^\.\//, '')));
});

test('the package name resolves to the client module (self-reference)', async () => {
  assert.equal(
    import.meta.resolve(pkg.name),
    new URL('../presence-client.js', import.meta.url).href,
  );
  const byName = await import(pkg.name);
  const byPath = await import('../presence-client.js');
  assert.equal(byName.connect, byPath.connect);
  // Resolved, not loaded: react.js needs React, which web/ does not have.
  assert.equal(
    import.meta.resolve(`${pkg.name}/react`),
    new URL('../react.js', import.meta.url).href,
  );
});

test('React is an optional peer dependency, pinned for the tests only', () => {
  assert.equal(pkg.peerDependencies.react, '>=18');
  assert.equal(pkg.peerDependenciesMeta.react.optional, true);
  assert.equal(pkg.dependencies, undefined, 'the package itself has no dependencies');
  assert.match(pkg.devDependencies.react, /^\d+\.\d+\.\d+$/, 'exact pin');
});

test('the panel, the demo and the self-service page never load the React module', () => {
  const dir = new URL('../', import.meta.url);
  const pages = readdirSync(dir).filter((f) => /\.(js|html)$/.test(f) && f !== 'react.js');
  assert.ok(pages.includes('index.html') && pages.includes('app.js'));
  for (const file of pages) {
    const text = readFileSync(new URL(file, dir), 'utf8');
    assert.doesNotMatch(text, /react\.js|from\s+['"]react['"]/, `${file} loads React`);
  }
});

test('web/ has no node_modules: the hub embeds the directory as it is', () => {
  assert.equal(
    existsSync(new URL('../node_modules', import.meta.url)),
    false,
    'install the dev tools in target/web-tools (scripts/test does), never in web/',
  );
});

test('the package LICENSE is the repository LICENSE', () => {
  assert.equal(
    readFileSync(new URL('../LICENSE', import.meta.url), 'utf8'),
    readFileSync(new URL('../../LICENSE', import.meta.url), 'utf8'),
  );
});
