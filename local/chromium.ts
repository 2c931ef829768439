/**
 * Debian's Chromium for the dashboard test and the bench chart (playwright-core never downloads a browser here).
 * Headless, and without the background traffic that this machine's closed network would refuse.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
];
