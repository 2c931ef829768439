#!/usr/bin/env node
'use strict';
// The command-line tool runs the compiled TypeScript (npm run build writes dist/).
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(
    `ledger-bridge needs Node.js 22 or later (this is ${process.version}); run it through npm (npx ledger-bridge) to use the project's Node 22`
  );
  process.exit(1);
}
const cli = join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!existsSync(cli)) {
  console.error('ledger-bridge is not built yet: run `npm run build` first');
  process.exit(1);
}
require(cli).runCli();
