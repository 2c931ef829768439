import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getConfig } from '../shared/config';
import { getServices } from '../shared/services';

/** Probes every validator, sends availability/metrics/events, evaluates alerts, keeps a sample for /api/status. */
export async function heartbeat(_timer: Timer, context: InvocationContext): Promise<void> {
  const result = await getServices().heartbeat.beat();
  const down = result.sample.validators.filter((v) => v.status === 'down').map((v) => v.name);
  const firing = result.alerts.filter((a) => a.state === 'firing').map((a) => `${a.rule}(${a.subject})`);
  context.log(
    `heartbeat: ${result.sample.validators.length} validator(s), head ${result.sample.chain.head ?? '?'}` +
      (down.length ? `, down: ${down.join(', ')}` : '') +
      (firing.length ? `, alerts firing: ${firing.join(', ')}` : '')
  );
}

app.timer('heartbeat', { schedule: getConfig().heartbeat.schedule, handler: heartbeat });
