import { createServer } from 'node:net';

/** Asks the OS for a free loopback port. Another process may still take it before we bind: callers bind promptly. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))
      );
    });
  });
}

/** Fails with a message naming the component when a requested port is already taken. */
export async function assertPortFree(component: string, port: number, host = '127.0.0.1'): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `${component}: port ${port} on ${host} is already in use; choose another port or stop the process using it`
            : `${component}: cannot listen on ${host}:${port}: ${err.message}`
        )
      )
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/**
 * Starts a server on ports from freePort(), again on new ones (up to 3 times) when another process bound one
 * first: suites start stacks in parallel, and a free port is only free until someone binds it.
 */
export async function retryOnPortRace<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!/EADDRINUSE|address already in use/i.test((err as Error).message) || attempt >= 3) throw err;
    }
  }
}
