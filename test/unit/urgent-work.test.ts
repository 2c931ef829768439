import { UrgentWork } from '../../shared/urgent-work';

/** Resolves after `ms`; the order of events is what these tests check, not how long anything took. */
const after = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('UrgentWork: bulk work waits for urgent work in the same process', () => {
  it('lets bulk work go at once when nothing urgent runs', async () => {
    const urgent = new UrgentWork();
    const events: string[] = [];
    const bulk = urgent.settled(10_000).then(() => events.push('bulk'));
    const later = after(0).then(() => events.push('next tick'));
    await Promise.all([bulk, later]);
    expect(events).toEqual(['bulk', 'next tick']);
  });

  it('holds bulk work until every urgent work that overlaps it is done', async () => {
    const urgent = new UrgentWork();
    const events: string[] = [];
    const first = urgent.run(async () => {
      await after(30);
      events.push('first done');
    });
    const second = urgent.run(async () => {
      await after(60);
      events.push('second done');
    });
    const bulk = urgent.settled(10_000).then(() => events.push('bulk'));
    await Promise.all([first, second, bulk]);
    expect(events).toEqual(['first done', 'second done', 'bulk']);
  });

  it('gives the work its result or its error, and an error still lets bulk work go', async () => {
    const urgent = new UrgentWork();
    await expect(urgent.run(async () => 42)).resolves.toBe(42);
    const failing = urgent.run(async () => {
      await after(20);
      throw new Error('claim failed');
    });
    const bulk = urgent.settled(10_000);
    await expect(failing).rejects.toThrow('claim failed');
    await expect(bulk).resolves.toBeUndefined();
  });

  it('holds bulk work back at most maxWaitMs: urgent work that hangs does not stall it', async () => {
    const urgent = new UrgentWork();
    const events: string[] = [];
    let release: () => void = () => undefined;
    const hanging = urgent.run(() => new Promise<void>((resolve) => (release = resolve)));
    await urgent.settled(20).then(() => events.push('bulk'));
    release();
    await hanging.then(() => events.push('urgent done'));
    expect(events).toEqual(['bulk', 'urgent done']);
  });
});
