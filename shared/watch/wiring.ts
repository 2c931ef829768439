import { getRuntime } from '../runtime';
import { CreditRecordReader } from './read-model';
import { pseudonymizerFor } from './subject-lookup';
import { Watcher, watchSettingsOf } from './watcher';

/** Per-process instances for the functions (the watcher keeps its learnt log range between runs). */
let watcher: Watcher | undefined;
let reader: CreditRecordReader | undefined;
let pseudonymizer: ReturnType<typeof pseudonymizerFor> | undefined;

export function getWatcher(): Watcher {
  const runtime = getRuntime();
  watcher ??= new Watcher(runtime, watchSettingsOf(runtime.config));
  return watcher;
}

export function getCreditRecordReader(): CreditRecordReader {
  const runtime = getRuntime();
  reader ??= new CreditRecordReader(runtime.tables, runtime.chain, runtime.config.chain.registryAddress);
  return reader;
}

export function getPseudonymizer(): ReturnType<typeof pseudonymizerFor> {
  pseudonymizer ??= pseudonymizerFor(getRuntime());
  return pseudonymizer;
}
