// Vitest configuration for the React hook tests (web/test/*.test.jsx):
// jsdom, and the packages resolved from target/web-tools, where
// scripts/test installs the dev dependencies (web/ has no node_modules: the
// hub embeds it as it is). No imports, so it loads from any directory.
// Run: cd target/web-tools && npx vitest run --configLoader native --config ../../web/test/vitest.config.mjs
// (`native` imports this file as it is; the default loader would write a
// bundled copy to web/test/node_modules/.vite-temp).

// This file lives in web/test/ so the hub does not serve it.
const webDir = new URL('..', import.meta.url).pathname;
const tools = process.env.PRESENCE_WEB_TOOLS ?? new URL('../../target/web-tools', import.meta.url).pathname;
const modules = `${tools.replace(/\/$/, '')}/node_modules`;

export default {
  root: webDir,
  // Vite's cache would go to web/node_modules/.vite, inside the embedded tree.
  cacheDir: `${modules}/.vite`,
  resolve: {
    // A bare import from web/ finds nothing on its own: point it at the tools.
    alias: Object.fromEntries(
      ['react', 'react-dom', '@testing-library/react', '@testing-library/dom'].map((name) => [
        name,
        `${modules}/${name}`,
      ]),
    ),
  },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.jsx'],
    // Only web/: never the repository's other files.
    dir: webDir,
  },
};
