import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getConfig } from '../shared/config';
import { getServices } from '../shared/services';

/**
 * Projects confirmed blocks into the read tables, then follows the head for WATCH_FOLLOW_MS to project each block
 * as it arrives; a halted watcher throws here on every run until rebuilt.
 */
export async function watch(_timer: Timer, context: InvocationContext): Promise<void> {
  await getServices().watcher.follow(getConfig().watch.followMs, (result) => {
    if (result.outcome !== 'up-to-date' || result.reorgDepth > 0)
      context.log(JSON.stringify({ event: 'watch', ...result }));
  });
}

app.timer('watch', { schedule: getConfig().watch.schedule, handler: watch });
