/**
 * How a started host gets its keys: through the environment, never the command line, which every user on the
 * machine can read (`ps`, /proc/<pid>/cmdline); a process's environment is readable by its owner only.
 */
export const MASTER_KEY_VARIABLE = 'LOCAL_HOST_MASTER_KEY';
export const FUNCTION_KEY_VARIABLE = 'LOCAL_HOST_FUNCTION_KEY';

/** Reads a host key from the environment and removes it there: it is the host's, not one of the app's settings. */
export function takeKey(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[name];
  delete env[name];
  return value || undefined;
}
