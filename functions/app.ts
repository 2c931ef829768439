import { app } from '@azure/functions';
import { getConfig } from '../shared/config';
import { errorMessage, redactedError } from '../shared/redact';

// Validate every setting when the worker loads the app: a misconfigured app fails to start, naming each problem,
// instead of failing later inside some invocation.
getConfig();

// A function's failure leaves the app as the host logs it and sends it to Application Insights: short and
// redacted, as every error text the app writes itself (an ethers error's message quotes its whole request).
app.hook.postInvocation((context) => {
  const { error } = context;
  if (error === undefined || error === null) return;
  context.error = error instanceof Error ? redactedError(error) : new Error(errorMessage(error));
});
