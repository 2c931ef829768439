'use strict';
/**
 * Compiles contracts/CreditRegistry.sol with the installed solc-js (offline) and writes the checked-in artifact
 * contracts/CreditRegistry.json. Settings are fixed and the output is byte-stable, so a rebuild of an unchanged source
 * gives an identical file. `--check` compiles without writing and exits 1 when the artifact is out of date (CI).
 */
const { createHash } = require('node:crypto');
const { readFileSync, writeFileSync, existsSync } = require('node:fs');
const path = require('node:path');
const solc = require('solc');

const CONTRACT = 'CreditRegistry';
const ROOT = path.resolve(__dirname, '..');
const SOURCE_KEY = `contracts/${CONTRACT}.sol`; // the name baked into the metadata hash: keep it path-independent
const ARTIFACT = path.join(ROOT, 'contracts', `${CONTRACT}.json`);

// london: no PUSH0, so the bytecode also runs on private PoA chains that never activated Shanghai.
const SETTINGS = {
  evmVersion: 'london',
  optimizer: { enabled: true, runs: 200 },
};

function compile(source) {
  const input = {
    language: 'Solidity',
    sources: { [SOURCE_KEY]: { content: source } },
    settings: {
      ...SETTINGS,
      outputSelection: { [SOURCE_KEY]: { [CONTRACT]: ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) process.stderr.write(d.formattedMessage ?? `${d.severity}: ${d.message}\n`);
  if (diagnostics.some((d) => d.severity === 'error')) throw new Error(`solc failed to compile ${SOURCE_KEY}`);
  return output.contracts[SOURCE_KEY][CONTRACT];
}

function artifactText(source) {
  const compiled = compile(source);
  // Literal key order here is the file's key order.
  const artifact = {
    contractName: CONTRACT,
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
    compiler: { version: solc.version(), settings: SETTINGS },
    sourceSha256: createHash('sha256').update(source).digest('hex'),
  };
  return { text: `${JSON.stringify(artifact, null, 2)}\n`, runtimeBytes: (artifact.deployedBytecode.length - 2) / 2 };
}

function main() {
  const check = process.argv.includes('--check');
  const source = readFileSync(path.join(ROOT, SOURCE_KEY), 'utf8');
  const { text, runtimeBytes } = artifactText(source);
  const current = existsSync(ARTIFACT) ? readFileSync(ARTIFACT, 'utf8') : undefined;
  const relative = path.relative(ROOT, ARTIFACT);
  const summary = `${CONTRACT}, solc ${solc.version()}, evm ${SETTINGS.evmVersion}, ${runtimeBytes}-byte runtime`;
  if (check) {
    if (current !== text) {
      console.error(`build-contract: ${relative} is out of date (${summary}); run npm run build:contract`);
      process.exit(1);
    }
    console.log(`build-contract: ${relative} is up to date (${summary})`);
    return;
  }
  if (current !== text) writeFileSync(ARTIFACT, text);
  console.log(`build-contract: ${current === text ? 'unchanged' : 'wrote'} ${relative} (${summary})`);
}

main();
