'use strict';
// Makes sure Debian's headless Chromium is there for the dashboard test and the bench chart (playwright-core never
// downloads a browser, and this machine's network reaches only the npm registry and Debian's packages). Part of
// `npm test`, so the README's two commands are all a new machine needs. Installs with apt when missing (as root);
// otherwise says exactly what to run.
const { existsSync } = require('node:fs');
const { execFileSync } = require('node:child_process');

const CHROMIUM_PATH = '/usr/bin/chromium';

function apt(args) {
  execFileSync('apt-get', args, {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

if (!existsSync(CHROMIUM_PATH)) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(`no Chromium at ${CHROMIUM_PATH}: run  sudo apt-get update && sudo apt-get install -y chromium`);
    process.exit(1);
  }
  console.log(`no Chromium at ${CHROMIUM_PATH}: installing Debian's chromium package (once)`);
  try {
    apt(['update', '-qq']);
    apt(['install', '-y', '-qq', '--no-install-recommends', 'chromium']);
  } catch (error) {
    console.error(`installing chromium with apt-get failed (${error.message}); install it by hand and rerun`);
    process.exit(1);
  }
  if (!existsSync(CHROMIUM_PATH)) {
    console.error(`apt-get installed chromium but ${CHROMIUM_PATH} is still missing`);
    process.exit(1);
  }
}
