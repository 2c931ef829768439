import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getConfig } from '../shared/config';
import { getServices } from '../shared/services';

/** Projects confirmed blocks into the read tables; a halted watcher throws here on every run until rebuilt. */
export async function watch(_timer: Timer, context: InvocationContext): Promise<void> {
  const result = await getServices().watcher.run();
  if (result.outcome !== 'up-to-date' || result.reorgDepth > 0)
    context.log(JSON.stringify({ event: 'watch', ...result }));
}

app.timer('watch', { schedule: getConfig().watch.schedule, handler: watch });
