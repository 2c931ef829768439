import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider } from 'ethers';
import { chromium, type BrowserContext } from 'playwright-core';
import { spawnFunctionHost, type RunningHost } from '../../local/host/spawn';
import { startAnvil, type Anvil } from '../../local/stack/anvil';
import { bankSettings, startStack, type Stack } from '../../local/stack/stack';
import type { HistoryReport, StatusReport } from '../../shared/ops/status';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../local/chromium';

/**
 * The real Function App in the local host against the embedded stack: the heartbeat is triggered through the
 * admin API, /api/status answers with the beats' figures, and the dashboard renders them in headless Chromium.
 */
describe('status endpoint and dashboard', () => {
  const appDir = join(__dirname, '../..');
  const screenshot = join(appDir, 'test-output', 'dashboard.png');
  let stack: Stack;
  let extra: Anvil;
  let host: RunningHost;
  let browser: BrowserContext | undefined;
  let profile: string;

  const beat = async (): Promise<void> => {
    const res = await fetch(`${host.url}/admin/functions/heartbeat?wait=true`, {
      method: 'POST',
      headers: { 'x-functions-key': host.masterKey },
    });
    expect(await res.json()).toEqual({ status: 'Succeeded' });
  };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  beforeAll(async () => {
    stack = await startStack({ banks: 1, blockTimeSeconds: 1 });
    // A second validator endpoint that will go down, so the heartbeat timeline shows a state change.
    extra = await startAnvil({ blockTimeSeconds: 1 });
    host = await spawnFunctionHost({
      name: 'BANK-A app',
      appDir,
      settings: {
        ...bankSettings(stack.info, 'BANK-A'),
        VALIDATOR_RPC_URLS: `${stack.info.chain.rpcUrl},${extra.rpcUrl}`,
        // Only the beats this test triggers: daily, twelve hours from now. (A yearly schedule would not do: the
        // local host arms one setTimeout per timer, and Node fires delays over 24.8 days at once.)
        HEARTBEAT_SCHEDULE: `0 0 ${(new Date().getHours() + 12) % 24} * * *`,
        HEARTBEAT_PROBE_TIMEOUT_MS: '2000',
      },
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await host?.stop();
    await extra?.stop();
    await stack?.stop();
  });

  it('serves the heartbeat status as JSON, behind the function key', async () => {
    // Some transactions, so transactions per minute is not zero.
    const provider = new JsonRpcProvider(stack.info.chain.rpcUrl, undefined, { staticNetwork: true });
    const from = await provider.getSigner(0);
    for (let i = 0; i < 5; i++) await from.sendTransaction({ to: from.address, value: 1n });
    provider.destroy();

    for (let i = 0; i < 4; i++) {
      await beat();
      await sleep(1000);
    }
    await extra.stop();
    for (let i = 0; i < 3; i++) {
      await beat();
      await sleep(1000);
    }

    expect((await fetch(`${host.url}/api/status`)).status).toBe(401);
    const res = await fetch(`${host.url}/api/status`, { headers: { 'x-functions-key': host.functionKey } });
    expect(res.status).toBe(200);
    const status = (await res.json()) as StatusReport;
    expect(status.validators.overall).toBe('degraded');
    expect(status.validators.nodes.map((n) => n.status)).toEqual(['up', 'down']);
    expect(status.chain).toMatchObject({ overall: 'ok', members: 1, consensusSource: 'miners' });
    expect(status.chain.head).toBeGreaterThan(0);
    expect(status.chain.txPerMinute).toBeGreaterThan(0);
    expect(status.pipeline).toMatchObject({ outboxDepth: 0, deadLetters: 0, rejections: 0 });
    expect(status.alerts).toEqual(
      expect.arrayContaining([expect.objectContaining({ rule: 'ValidatorSilent', state: 'firing' })])
    );
    const history = (await (
      await fetch(`${host.url}/api/status/history`, { headers: { 'x-functions-key': host.functionKey } })
    ).json()) as HistoryReport;
    expect(history.samples).toHaveLength(7);
    // Each sample carries its own beat's verdict, which the status judges it by.
    expect(history.samples.at(-1)!.firing).toEqual(['ValidatorSilent']);
  }, 60_000);

  it('renders the dashboard with charts and the validator list in headless Chromium', async () => {
    expect((await fetch(`${host.url}/api/dashboard`)).status).toBe(401);
    profile = mkdtempSync(join(tmpdir(), 'ledger-bridge-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 1000 },
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    const blocked: string[] = [];
    // Nothing but the Function App may be contacted (no CDN, works offline).
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1') return route.continue();
      blocked.push(url.href);
      return route.abort();
    });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });

    const response = await page.goto(`${host.url}/api/dashboard?code=${encodeURIComponent(host.functionKey)}`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toMatch(/script-src 'nonce-/);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });

    for (const chart of ['#c-height', '#c-blocktime', '#c-tpm', '#c-members', '#c-backlog', '#c-lag']) {
      expect(await page.locator(`${chart} svg path.series`).count()).toBeGreaterThan(0);
      expect(await page.locator(`${chart} svg circle.point`).count()).toBeGreaterThan(0);
    }
    expect(await page.locator('#c-height svg circle.point').count()).toBe(7);
    expect(await page.locator('#timeline rect.beat.up').count()).toBeGreaterThanOrEqual(7);
    expect(await page.locator('#timeline rect.beat.down').count()).toBe(3);
    const rows = await page.locator('#nodes tbody tr').allTextContents();
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain(new URL(stack.info.chain.rpcUrl).host);
    expect(rows[1]).toMatch(/down.*ECONNREFUSED/);
    expect(await page.locator('#alerts .alert.firing').allTextContents()).toEqual([
      expect.stringContaining('ValidatorSilent'),
    ]);

    mkdirSync(join(appDir, 'test-output'), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`dashboard screenshot: ${screenshot}`);
    expect(errors).toEqual([]);
    expect(blocked).toEqual([]);
  }, 60_000);
});
