import type { RawSubject } from '../domain/credit-update';
import { loadPseudonymizationKey, subjectRef } from '../domain/pseudonymize';
import type { Runtime } from '../runtime';

/** The lookup's pseudonymizer: the same consortium key and derivation as ingest (shared/domain/pseudonymize). */
export function pseudonymizerFor(runtime: Runtime): (subject: RawSubject) => Promise<string> {
  return async (subject) => subjectRef(await loadPseudonymizationKey(runtime.config, runtime.credential), subject);
}
