import { spawn } from 'node:child_process';
import { join } from 'node:path';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A stack process killed with SIGKILL (no cleanup runs) must not leave anvil or Azurite behind. */
describe('stack processes', () => {
  it('die with their parent even when the parent is SIGKILLed', async () => {
    const dist = join(__dirname, '../../dist/local/stack');
    const script = `
      const { startAnvil } = require(${JSON.stringify(join(dist, 'anvil.js'))});
      const { startAzurite } = require(${JSON.stringify(join(dist, 'azurite.js'))});
      Promise.all([startAnvil({ blockTimeSeconds: 0 }), startAzurite()]).then(([a, z]) => {
        console.log(JSON.stringify([a.process.child.pid, z.processes[0].child.pid]));
      });`;
    const parent = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pids = await new Promise<number[]>((resolve, reject) => {
      parent.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()) as number[]));
      parent.once('exit', (code) => reject(new Error(`parent exited early with ${code}`)));
    });
    expect(pids.every(alive)).toBe(true);
    parent.kill('SIGKILL');
    const deadline = Date.now() + 5_000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(pids.filter(alive)).toEqual([]);
  });
});
