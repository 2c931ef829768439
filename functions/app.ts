import { getConfig } from '../shared/config';

// Validate every setting when the worker loads the app: a misconfigured app fails to start, naming each problem,
// instead of failing later inside some invocation.
getConfig();
